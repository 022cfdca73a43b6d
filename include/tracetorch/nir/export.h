#pragma once
// tt::nir::export_graph: a model as a NIR graph, its parameters mapped for a time step dt so that
// importing the graph with the same dt and discretisation reproduces the model's steps.
//
//   auto net = tt::Sequential(torch::nn::Linear(4, 8), tt::snn::LIB(lib_options), torch::nn::Linear(8, 2), tt::snn::LI(2));
//   tt::io::save_nir(tt::nir::export_graph(*net, tt::nir::ExportOptions(1e-3)), "net.nir");
//
// What exports (docs/nir.md has the parameter mapping and the reasons for what does not):
// - chains: torch::nn::Sequential / tt::Sequential (nested ones are flattened, nodes named by their
//   path), or one module; a tt::nir::Graph exports its own graph with its current parameters;
// - torch::nn::Linear (Affine or Linear), Flatten, Conv1d, Conv2d (zero padding), AvgPool2d
//   (count_include_pad, no ceil_mode; divisor_override 1 is NIR's SumPool2d);
// - the tt::nir layers (Neuron, Scale, Threshold, Delay) as their primitives;
// - the traceTorch neurons that are not dual: LI, LIEMA -> LI; SLI, SLIEMA -> CubaLI; and, when
//   their spikes are Heaviside steps (spike_fn sigmoid4x with quant_fn round_ste(1.0)), the firing
//   ones (LIB, SLIB, RLIB, SRLIB, LIT, ..., SRLITS) as a nested graph of LI, Threshold and Scale
//   nodes whose recurrent edges carry the subtractive reset (and the R trace).
// Throws tt::ValueError naming the module path and the reason for anything else (dual neurons,
// continuous spikes, a feature axis other than the last, unknown modules).
// Thread safety: reads the model; do not run it concurrently with a forward that changes parameters.
#include <torch/torch.h>

#include <string>
#include <vector>

#include "tracetorch/io/nir_file.h"
#include "tracetorch/nir/neuron.h"

namespace tt::nir {

struct ExportOptions {
  explicit ExportOptions(double dt) : dt_(dt) {}
  // The time step one forward() of the model stands for, in the unit the graph's time constants
  // get (seconds, as snnTorch and Norse write them).
  TORCH_ARG(double, dt);
  // The rule the reader will use; traceTorch decays are mapped so that it reproduces them
  // (Euler: tau = dt / (1 - beta); Exact: tau = -dt / ln(beta)).
  TORCH_ARG(Discretisation, discretisation) = Discretisation::Euler;
  // Per-sample input shape, for models whose first module does not tell (e.g. a convolution).
  TORCH_ARG(std::vector<int64_t>, input_shape) = {};
};

io::NirGraph export_graph(const torch::nn::Module& model, const ExportOptions& options);
// export_graph + io::save_nir (atomic).
void save(const torch::nn::Module& model, const std::string& path, const ExportOptions& options);

}  // namespace tt::nir
