#pragma once
// A named tensor -> tensor function (spike functions, quantizers). The name is what the
// architecture JSON stores ("sigmoid4x", "round_ste(1.0)") and what pretty_print shows.
// A TensorFn is a value (copy it freely); calling it is as thread-safe as the function it wraps.
#include <torch/torch.h>

#include <functional>
#include <string>

namespace tt::functional {

struct TensorFn {
  std::string name;
  std::function<torch::Tensor(const torch::Tensor&)> fn;  // empty for identity (skipped in hot paths)

  bool is_identity() const { return !fn; }
  torch::Tensor operator()(const torch::Tensor& x) const { return fn ? fn(x) : x; }
};

TensorFn identity();
// sigma(4 x): the product first, then the sigmoid (spec 4). The default SNN spike function.
TensorFn sigmoid4x();
torch::Tensor sigmoid4x(const torch::Tensor& x);

// Parses a function name as written in architecture JSON: "identity", "sigmoid4x",
// "round_ste(S)", "stochastic_round_ste(S)", "probabilistic_ste()". Throws tt::ValueError.
TensorFn parse_tensor_fn(const std::string& text);

}  // namespace tt::functional
