#include "run_nir.h"

#include "tracetorch/tracetorch.h"

namespace tt_cli {

CLI::Option* add_nir_options(CLI::App& run, NirArgs& args) {
  CLI::Option* nir = run.add_option("--nir", args.path, "NIR graph (HDF5) to run instead of --arch / --weights");
  run.add_option("--dt", args.dt, "time step of one input row, in the file's time unit (NIR: seconds)")->needs(nir);
  run.add_option("--discretisation", args.discretisation, "how NIR neurons step: euler (default) or exact")
      ->check(CLI::IsMember({"euler", "exact"}))
      ->needs(nir);
  run.add_option("--dtype", args.dtype, "dtype of the graph's parameters and inputs: float32 (default) or float64")
      ->check(CLI::IsMember({"float32", "float64"}))
      ->needs(nir);
  return nir;
}

SteppedModel load_nir_model(const NirArgs& args) {
  if (!(args.dt > 0)) throw tt::ValueError("--nir needs --dt, the time step (> 0)");
  tt::nir::ImportOptions options(args.dt);
  options.discretisation(args.discretisation == "exact" ? tt::nir::Discretisation::Exact
                                                        : tt::nir::Discretisation::Euler);
  const torch::Dtype dtype = args.dtype == "float64" ? torch::kFloat64 : torch::kFloat32;
  options.dtype(dtype);
  tt::nir::Graph graph = tt::nir::load(args.path, options);
  auto module = graph.ptr();
  return {module, [module, dtype](const torch::Tensor& x) { return module->forward(x.to(dtype)); }};
}

}  // namespace tt_cli
