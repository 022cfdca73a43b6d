// Online (truncated) learning on an endless stream.
//
// The network runs on one long input stream and never goes back to zero states. Every k steps it
// takes an optimizer step on the loss of those k steps and then calls detach_states: the hidden
// states keep their values (the network remembers the past), but the autograd graph is cut there,
// so memory and time per update stay constant however long the stream runs.
//
// Task: predict a target that depends on the recent history of the inputs,
//   target_t = ema_0.9(x_t[0]) - ema_0.6(x_t[1])        (two exponential moving averages)
//
//   ./train_online [updates] [k]
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>

#include "tracetorch/tracetorch.h"

int main(int argc, char** argv) {
  const int updates = argc > 1 ? std::atoi(argv[1]) : 400;
  const int64_t k = argc > 2 ? std::atoi(argv[2]) : 20;  // truncation window (steps per update)
  const int64_t batch = 8;                               // 8 independent streams
  torch::manual_seed(0);

  // Linear -> dual synaptic LIT (signed spikes) -> Linear -> LI readout
  tt::Sequential net;
  net->push_back(torch::nn::Linear(2, 32));
  net->push_back(tt::snn::DSLIT(32));
  net->push_back(torch::nn::Linear(32, 1));
  net->push_back(tt::snn::LIEMA(1));
  torch::optim::Adam optimizer(net->parameters(), torch::optim::AdamOptions(0.005));

  // The stream and its target, generated step by step.
  torch::Tensor slow = torch::zeros({batch, 1}), fast = torch::zeros({batch, 1});
  auto next = [&](torch::Tensor* target) {
    const auto x = torch::randn({batch, 2});
    slow = slow * 0.9 + x.slice(1, 0, 1) * 0.1;
    fast = fast * 0.6 + x.slice(1, 1, 2) * 0.4;
    *target = (slow - fast) * 3;
    return x;
  };

  tt::zero_states(*net);  // once, at the start of the stream
  double running = 0;
  for (int update = 1; update <= updates; ++update) {
    torch::Tensor loss = torch::zeros({});
    for (int64_t t = 0; t < k; ++t) {
      torch::Tensor target;
      const auto x = next(&target);
      loss = loss + torch::mse_loss(net->forward(x), target);
    }
    loss = loss / static_cast<double>(k);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    tt::detach_states(*net);  // keep the values, cut the graph
    running += loss.item<double>();
    if (update % 40 == 0) {
      std::printf("step %6lld  loss %.4f\n", static_cast<long long>(update * k), running / 40);
      running = 0;
    }
  }
  return 0;
}
