#pragma once
// Whole-sequence (multi-step) execution of a module tree, next to the one-step forward().
//
// tt::forward_sequence(module, x) takes a time-major input [T, batch, ...] and returns
// [T, batch, ...]. It leaves every layer's states exactly as T single steps would, so step and
// sequence calls mix freely and save / load / detach / zero work between them.
// - a tt layer runs its own forward_sequence (a fused pass where the family has one);
// - a Sequential (torch::nn::Sequential or tt::Sequential) runs its children in order, each over
//   the whole sequence;
// - any other module without tt layers below it is stateless here: it is applied once to the
//   T x batch rows flattened into one batch (needs to be reachable as a Sequential child);
// - a custom module holding tt layers cannot be run generically: it throws tt::Error naming it;
//   write its sequence forward by calling forward_sequence on its parts.
// Thread safety: as forward(), it mutates the layers' states; one model per thread.
#include <torch/torch.h>

namespace tt {

torch::Tensor forward_sequence(torch::nn::Module& module, const torch::Tensor& x);

// Holder form: tt::forward_sequence(net, x) for a torch::nn::Sequential, tt::snn::LIB, ...
template <typename ModuleType>
torch::Tensor forward_sequence(torch::nn::ModuleHolder<ModuleType>& holder, const torch::Tensor& x) {
  return forward_sequence(*holder, x);
}

}  // namespace tt
