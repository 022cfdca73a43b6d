#include "tracetorch/io/state_dict.h"

#include <map>

#include "../core/text.h"
#include "tracetorch/core/error.h"

namespace tt::io {

namespace {

using detail::join_path;
using detail::shape_string;

void collect(const torch::nn::Module& module, const std::string& path, TensorDict& out) {
  for (const auto& p : module.named_parameters(/*recurse=*/false))
    if (p.value().defined()) out.insert(join_path(path, p.key()), p.value());
  for (const auto& b : module.named_buffers(/*recurse=*/false))
    if (b.value().defined()) out.insert(join_path(path, b.key()), b.value());
  for (const auto& child : module.named_children()) collect(*child.value(), join_path(path, child.key()), out);
}

}  // namespace

TensorDict state_dict(const torch::nn::Module& module) {
  TensorDict out;
  collect(module, "", out);
  return out;
}

LoadReport load_state_dict(torch::nn::Module& module, const TensorDict& dict, const StateDictOptions& options) {
  LoadReport report;
  std::vector<std::string> errors;
  std::map<std::string, torch::Tensor> provided;
  std::vector<std::string> order;
  for (const auto& item : dict) {
    std::string key = item.key();
    if (options.strip_module_prefix && key.rfind("module.", 0) == 0) key = key.substr(7);
    if (provided.count(key)) {
      errors.push_back("duplicate key " + key);
      continue;
    }
    provided.emplace(key, item.value());
    order.push_back(key);
  }

  TensorDict own = state_dict(module);
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;  // (target, source)
  for (const auto& item : own) {
    auto found = provided.find(item.key());
    if (found == provided.end()) {
      report.missing.push_back(item.key());
      continue;
    }
    if (!item.value().sizes().equals(found->second.sizes())) {
      errors.push_back("size mismatch for " + item.key() + ": copying a param with shape " +
                       shape_string(found->second.sizes()) + " from checkpoint, the shape in current model is " +
                       shape_string(item.value().sizes()));
      continue;
    }
    copies.emplace_back(item.value(), found->second);
    report.loaded.push_back(item.key());
  }
  for (const auto& key : order)
    if (!own.contains(key)) report.unexpected.push_back(key);
  if (options.strict && !report.missing.empty()) errors.push_back("Missing key(s) in state_dict: " + join_keys(report.missing));
  if (options.strict && !report.unexpected.empty())
    errors.push_back("Unexpected key(s) in state_dict: " + join_keys(report.unexpected));
  if (!errors.empty()) {
    std::string message = "load_state_dict failed, nothing was changed: ";
    for (size_t i = 0; i < errors.size(); ++i) message += (i ? "; " : "") + errors[i];
    throw LoadError(message);
  }
  // Convert everything first so that a failing conversion cannot leave a half-loaded module.
  std::vector<torch::Tensor> converted;
  converted.reserve(copies.size());
  for (const auto& [target, source] : copies) converted.push_back(source.to(target.device(), target.scalar_type()));
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < copies.size(); ++i) copies[i].first.copy_(converted[i]);
  return report;
}

void save_state_dict(const torch::nn::Module& module, const std::string& path) {
  save_tensor_dict(path, state_dict(module));
}

LoadReport load_state_dict(torch::nn::Module& module, const std::string& path, const StateDictOptions& options) {
  TensorDict dict = load_tensor_dict(path);
  try {
    return load_state_dict(module, dict, options);
  } catch (const LoadError& e) {
    throw LoadError(path + ": " + e.what());
  }
}

}  // namespace tt::io
