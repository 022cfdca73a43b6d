// Training a spiking network with full backpropagation through time (BPTT).
//
// Task (evidence accumulation): every sequence is T steps of two noisy input channels; the target
// is +1 if channel 0 summed to more than channel 1 over the whole sequence, else -1. The answer
// is read from the membrane of a leaky integrator (LI) at the last step.
//
// The loop, per sequence:
//   zero_states      every layer starts from zero (states are created lazily at the first step)
//   forward x[0..T)  one call per timestep; the layers keep their own hidden states
//   loss, backward   the gradient flows back through all T steps
//   optimizer step
//
//   ./train_bptt [iterations]
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>

#include "tracetorch/tracetorch.h"

namespace {

struct Batch {
  torch::Tensor x;  // [T, batch, 2]
  torch::Tensor y;  // [batch, 1]
};

Batch make_batch(int64_t batch, int64_t steps) {
  Batch b;
  b.x = torch::randn({steps, batch, 2});
  b.y = torch::sign((b.x.select(2, 0) - b.x.select(2, 1)).sum(0)).unsqueeze(1);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 200;
  const int64_t steps = 16, batch = 32;
  torch::manual_seed(0);

  // Linear -> synaptic LIB (binary-ish spikes) -> Linear -> LI readout
  tt::Sequential net;
  net->push_back(torch::nn::Linear(2, 32));
  net->push_back(tt::snn::SLIB(32));
  net->push_back(torch::nn::Linear(32, 1));
  net->push_back(tt::snn::LI(tt::snn::LIOptions(1).beta(0.95)));
  torch::optim::Adam optimizer(net->parameters(), torch::optim::AdamOptions(0.01));

  // Runs one batch of sequences from zero states; returns the last output.
  auto run = [&](const torch::Tensor& x) {
    tt::zero_states(*net);
    torch::Tensor y;
    for (int64_t t = 0; t < x.size(0); ++t) y = net->forward(x[t]);
    return y;
  };

  const Batch test = make_batch(512, steps);
  auto evaluate = [&](double* accuracy) {
    torch::NoGradGuard no_grad;
    const auto y = run(test.x);
    *accuracy = (torch::sign(y) == test.y).to(torch::kFloat32).mean().item<double>();
    return torch::mse_loss(y, test.y).item<double>();
  };

  double accuracy = 0;
  double loss = evaluate(&accuracy);
  std::printf("iteration %4d  test loss %.4f  accuracy %.3f\n", 0, loss, accuracy);
  double running = 0;
  for (int it = 1; it <= iterations; ++it) {
    const Batch b = make_batch(batch, steps);
    const auto train_loss = torch::mse_loss(run(b.x), b.y);
    optimizer.zero_grad();
    train_loss.backward();
    optimizer.step();
    running += train_loss.item<double>();
    if (it % 20 == 0) {
      loss = evaluate(&accuracy);
      std::printf("iteration %4d  train loss %.4f  test loss %.4f  accuracy %.3f\n", it, running / 20, loss, accuracy);
      running = 0;
    }
  }
  // The learned membrane decay of the readout, as a half-life in steps.
  const auto layers = tt::named_layers(*net);
  const double beta = layers.back().second->get("beta").item<double>();
  std::printf("readout beta %.4f (half-life %.1f steps)\n", beta, tt::functional::decay_to_halflife(beta));
  return 0;
}
