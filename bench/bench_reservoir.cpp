// Reservoir computing benchmarks (Google Benchmark).
//
//   ./build/bench/bench_reservoir --benchmark_filter=Step
//
// - ReservoirStep / ReservoirSequence: one streaming step ([1, F] in, [1, R] out) and a 1,000-step
//   sequence, with the recurrent term dense (addmm) or sparse (our CSR kernel), over reservoir
//   sizes and densities. This is the measurement behind sparse_density_threshold
//   (include/tracetorch/rc/reservoir.h): Auto picks the sparse kernel at or below it.
// - TorchSparseCsrStep: LibTorch's own sparse CSR x dense product for the same recurrent term,
//   as a baseline for our kernel.
// - RidgeSolve: the readout's closed form (Cholesky) against conjugate gradient.
// - SpectralRadius: the eigenvalue computation done once per initialisation.
// Run with OMP_NUM_THREADS=1 for single-core figures.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "tracetorch/rc/rc.h"

using namespace tt::rc;

namespace {

Topology topology_for(int64_t permille) {
  return permille >= 1000 ? Topology::dense() : Topology::erdos_renyi(static_cast<double>(permille) / 1000.0);
}

// Arguments: reservoir size, density in permille, kernel (0 dense, 1 sparse).
void ReservoirStep(benchmark::State& state) {
  const int64_t n = state.range(0);
  const auto kernel = state.range(2) == 0 ? RecurrentKernel::Dense : RecurrentKernel::Sparse;
  Reservoir r(ReservoirOptions(n, 1).topology(topology_for(state.range(1))).spectral_radius(0.9).seed(0).kernel(kernel));
  torch::NoGradGuard no_grad;
  torch::Tensor x = torch::randn({1, 1});
  r->forward(x);  // first step creates the state and the CSR copy
  for (auto _ : state) benchmark::DoNotOptimize(r->forward(x));
  state.SetItemsProcessed(state.iterations());
}

void ReservoirSequence(benchmark::State& state) {
  const int64_t n = state.range(0);
  const auto kernel = state.range(2) == 0 ? RecurrentKernel::Dense : RecurrentKernel::Sparse;
  Reservoir r(ReservoirOptions(n, 1).topology(topology_for(state.range(1))).spectral_radius(0.9).seed(0).kernel(kernel));
  torch::NoGradGuard no_grad;
  torch::Tensor x = torch::randn({1, 1000, 1});
  r->forward(x);
  for (auto _ : state) benchmark::DoNotOptimize(r->forward(x));
  state.SetItemsProcessed(state.iterations() * 1000);
}

void TorchSparseCsrStep(benchmark::State& state) {
  const int64_t n = state.range(0);
  auto gen = make_generator(0);
  torch::Tensor w = make_recurrent(n, topology_for(state.range(1)), 0.9, gen, torch::kFloat32);
  torch::Tensor csr = w.to_sparse_csr();
  torch::Tensor h = torch::randn({n, 1}) * 0.1;
  torch::Tensor d = torch::randn({n, 1});
  torch::NoGradGuard no_grad;
  for (auto _ : state) {
    h = torch::tanh(torch::addmm(d, csr, h));
    benchmark::DoNotOptimize(h);
  }
  state.SetItemsProcessed(state.iterations());
}

void SizesAndDensities(benchmark::internal::Benchmark* b) {
  for (int64_t n : {200, 500, 1000, 2000})
    for (int64_t permille : {10, 50, 100, 200, 1000})
      for (int64_t kernel : {0, 1}) b->Args({n, permille, kernel});
}

void CsrSizes(benchmark::internal::Benchmark* b) {
  for (int64_t n : {200, 500, 1000, 2000})
    for (int64_t permille : {10, 50, 100}) b->Args({n, permille});
}

// Arguments: features, solver (0 Cholesky, 1 CG). 10,000 samples, one output.
void RidgeSolve(benchmark::State& state) {
  const int64_t f = state.range(0);
  torch::manual_seed(0);
  Readout r(ReadoutOptions(f, 1).alpha(1e-4).solver(state.range(1) == 0 ? Solver::Cholesky : Solver::CG));
  r->accumulate(torch::tanh(torch::randn({10000, f})), torch::randn({10000, 1}));
  int64_t iterations = 0;
  for (auto _ : state) iterations = r->solve().iterations;
  state.counters["cg_iterations"] = static_cast<double>(iterations);
}

void SpectralRadius(benchmark::State& state) {
  auto gen = make_generator(0);
  torch::Tensor w = make_recurrent(state.range(0), Topology::dense(), std::nullopt, gen);
  for (auto _ : state) benchmark::DoNotOptimize(spectral_radius(w));
}

}  // namespace

BENCHMARK(ReservoirStep)->Apply(SizesAndDensities)->Unit(benchmark::kMicrosecond);
BENCHMARK(ReservoirSequence)->Apply(SizesAndDensities)->Unit(benchmark::kMillisecond);
BENCHMARK(TorchSparseCsrStep)->Apply(CsrSizes)->Unit(benchmark::kMicrosecond);
BENCHMARK(RidgeSolve)->ArgsProduct({{250, 500, 1000, 2000}, {0, 1}})->Unit(benchmark::kMillisecond);
BENCHMARK(SpectralRadius)->Arg(200)->Arg(500)->Arg(1000)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
