#include "tracetorch/core/cloneable.h"

#include <map>

#include "tracetorch/core/model.h"

namespace tt::detail {

namespace {

// A copy that shares nothing with `t` (on `device` when given).
torch::Tensor deep_copy(const torch::Tensor& t, const c10::optional<torch::Device>& device) {
  if (!t.defined()) return t;
  return device ? t.to(*device, t.scalar_type(), /*non_blocking=*/false, /*copy=*/true) : t.clone();
}

void copy_tensors(const torch::OrderedDict<std::string, torch::Tensor>& from,
                  torch::OrderedDict<std::string, torch::Tensor> to, const std::string& kind,
                  const torch::nn::Module& module, const c10::optional<torch::Device>& device) {
  if (from.size() != to.size())
    throw Error(module.name() + ": clone: reset() created " + std::to_string(to.size()) + " " + kind + "s, the original has " +
                std::to_string(from.size()));
  for (const auto& item : from) {
    torch::Tensor* target = to.find(item.key());
    if (!target) throw Error(module.name() + ": clone: reset() did not recreate " + kind + " '" + item.key() + "'");
    target->set_data(deep_copy(item.value(), device));
    if (target->is_leaf()) target->requires_grad_(item.value().requires_grad());
  }
}

}  // namespace

void copy_into_clone(const torch::nn::Module& from, torch::nn::Module& to, const c10::optional<torch::Device>& device) {
  std::map<std::string, Layer*> targets;
  for (const auto& [path, layer] : named_layers(to)) targets[path] = layer;
  const auto sources = named_layers(from);
  auto target_of = [&](const std::string& path) {
    auto found = targets.find(path);
    if (found == targets.end()) throw Error(from.name() + ": clone: reset() did not recreate the layer at '" + path + "'");
    return found->second;
  };
  // Compiled forms first: compiling renames parameters (raw_beta -> beta).
  for (const auto& [path, layer] : sources) {
    Layer* target = target_of(path);
    if (layer->is_compiled()) target->compile();
    target->set_exact(layer->exact());
  }
  copy_tensors(from.named_parameters(), to.named_parameters(), "parameter", from, device);
  copy_tensors(from.named_buffers(), to.named_buffers(), "buffer", from, device);
  for (const auto& [path, layer] : sources) {
    Layer* target = target_of(path);
    for (const auto& name : layer->state_names()) target->set_state(name, deep_copy(layer->state(name), device));
  }
}

}  // namespace tt::detail
