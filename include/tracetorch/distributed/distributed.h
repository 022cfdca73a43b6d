#pragma once
// Multi-process training and reservoir fits on PyTorch's c10d (docs/distributed.md).
#include "tracetorch/distributed/checkpoint.h"
#include "tracetorch/distributed/data_parallel.h"
#include "tracetorch/distributed/process_group.h"
#include "tracetorch/distributed/ridge.h"
#include "tracetorch/distributed/sampler.h"
