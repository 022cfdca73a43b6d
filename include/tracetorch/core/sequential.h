#pragma once
// tt::Sequential: torch::nn::Sequential with a plain `Tensor forward(Tensor)`, so that it can be
// nested inside another Sequential (LibTorch's templated forward cannot be held by AnyModule).
// Children are named "0", "1", ... exactly as in torch::nn::Sequential and PyTorch.
// Everything else (ownership of children, clone(), what forward throws) is torch::nn::Sequential's;
// like every module it is not thread-safe: one forward at a time.
#include <torch/torch.h>

namespace tt {

class SequentialImpl : public torch::nn::SequentialImpl {
 public:
  using torch::nn::SequentialImpl::SequentialImpl;
  torch::Tensor forward(const torch::Tensor& x) { return torch::nn::SequentialImpl::forward(x); }
  void pretty_print(std::ostream& stream) const override { stream << "tt::Sequential"; }
};

TORCH_MODULE(Sequential);

}  // namespace tt
