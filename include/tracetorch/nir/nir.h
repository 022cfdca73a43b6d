#pragma once
// NIR interchange (the Neuromorphic Intermediate Representation): files (io/nir_file.h), the
// NIR neuron and node layers (nir/neuron.h, nir/nodes.h), graphs as models (nir/graph.h) and
// models as graphs (nir/export.h). docs/nir.md describes what is supported and how.
#include "tracetorch/io/nir_file.h"
#include "tracetorch/nir/export.h"
#include "tracetorch/nir/graph.h"
#include "tracetorch/nir/neuron.h"
#include "tracetorch/nir/nodes.h"
