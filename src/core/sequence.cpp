#include "tracetorch/core/sequence.h"

#include "text.h"
#include "tracetorch/core/error.h"
#include "tracetorch/core/layer.h"
#include "tracetorch/core/model.h"

namespace tt {

namespace {

using detail::shape_string;

void check_time_major(const torch::Tensor& x, const std::string& what) {
  if (!x.defined() || x.dim() < 2 || x.size(0) == 0)
    throw ValueError(what + ": forward_sequence takes a time-major input [T, batch, ...] with T >= 1, got " +
                     (x.defined() ? shape_string(x.sizes()) : std::string("undefined")));
}

bool holds_layers(torch::nn::Module& module) { return !named_layers(module).empty(); }

// A stateless module once over all T x batch rows.
torch::Tensor apply_flattened(torch::nn::AnyModule& child, const torch::Tensor& x) {
  const int64_t T = x.size(0), B = x.size(1);
  torch::Tensor y = child.forward(x.flatten(0, 1));
  if (y.dim() < 1 || y.size(0) != T * B)
    throw Error(child.ptr()->name() + ": a stateless module changed the number of rows in forward_sequence (" +
                std::to_string(T * B) + " in, " + (y.dim() ? std::to_string(y.size(0)) : "a scalar") + " out)");
  return y.unflatten(0, {T, B});
}

}  // namespace

torch::Tensor forward_sequence(torch::nn::Module& module, const torch::Tensor& x) {
  check_time_major(x, module.name());
  if (auto* layer = dynamic_cast<Layer*>(&module)) return layer->forward_sequence(x);
  if (auto* sequential = dynamic_cast<torch::nn::SequentialImpl*>(&module)) {
    torch::Tensor y = x;
    for (auto& child : *sequential) {
      torch::nn::Module& inner = *child.ptr();
      y = holds_layers(inner) ? forward_sequence(inner, y) : apply_flattened(child, y);
    }
    return y;
  }
  if (!holds_layers(module))
    throw Error(module.name() + ": forward_sequence runs a module without tt layers only as a child of a Sequential");
  throw Error(module.name() +
              ": forward_sequence cannot run a custom module that holds tt layers; call forward_sequence on its "
              "layers and Sequentials in its own sequence forward");
}

}  // namespace tt
