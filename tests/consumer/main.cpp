// Builds a small stateful network with the installed library and checks one step runs.
#include <tracetorch/tracetorch.h>

#include <iostream>

int main() {
  torch::nn::Sequential net(torch::nn::Linear(4, 3), tt::snn::LIB(3));
  const auto y = net->forward(torch::ones({2, 4}));
  const auto states = tt::save_states(*net);
  if (y.sizes() != torch::IntArrayRef({2, 3}) || !states.contains("1.mem")) {
    std::cerr << "unexpected result\n";
    return 1;
  }
  std::cout << "consumer ok: " << states.size() << " state\n";
  return 0;
}
