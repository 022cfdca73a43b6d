#pragma once
// Reservoir computing (the C++ side of torch_rc / resdag): one include for all of it.
#include "tracetorch/rc/datasets.h"
#include "tracetorch/rc/esn.h"
#include "tracetorch/rc/init.h"
#include "tracetorch/rc/readout.h"
#include "tracetorch/rc/reservoir.h"
