// Streaming inference, one timestep per call: the demo network and single layers.
// Run through scripts/bench.sh, which prints these next to the Python baseline.
#include <benchmark/benchmark.h>
#include <tracetorch/tracetorch.h>

namespace {

tt::Sequential demo_network() {
  return tt::Sequential(torch::nn::Linear(784, 128), tt::snn::LIB(128), torch::nn::Linear(128, 10), tt::snn::LI(10));
}

// args: batch, compiled (0/1)
void BM_DemoNetworkStep(benchmark::State& state) {
  torch::manual_seed(0);
  auto net = demo_network();
  if (state.range(1)) tt::compile(*net);
  const auto x = torch::rand({state.range(0), 784});
  torch::NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(net->forward(x));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DemoNetworkStep)->ArgNames({"batch", "compiled"})->Args({1, 0})->Args({1, 1})->Args({32, 0})->Args({32, 1});

// args: preset index in {LI, LIB, DSRLITS}, neurons, batch
void BM_LayerStep(benchmark::State& state) {
  static const char* names[] = {"LI", "LIB", "DSRLITS"};
  const std::string name = names[state.range(0)];
  tt::snn::Neuron layer(tt::snn::preset_options(name, state.range(1)));
  const auto x = torch::randn({state.range(2), state.range(1)});
  torch::NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(layer(x));
  state.SetLabel(name);
}
BENCHMARK(BM_LayerStep)->ArgNames({"layer", "neurons", "batch"})->Args({0, 1024, 1})->Args({1, 1024, 1})->Args({2, 1024, 1})->Args({1, 1024, 64});

}  // namespace

BENCHMARK_MAIN();
