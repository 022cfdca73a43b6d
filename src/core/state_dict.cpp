#include "tracetorch/core/state_dict.h"

#include <map>

#include "text.h"
#include "tracetorch/core/error.h"

namespace tt {

namespace {

using detail::join_keys;
using detail::join_path;
using detail::shape_string;

void collect(const torch::nn::Module& module, const std::string& path, io::TensorDict& out) {
  for (const auto& p : module.named_parameters(/*recurse=*/false))
    if (p.value().defined()) out.insert(join_path(path, p.key()), p.value());
  for (const auto& b : module.named_buffers(/*recurse=*/false))
    if (b.value().defined()) out.insert(join_path(path, b.key()), b.value());
  for (const auto& child : module.named_children()) collect(*child.value(), join_path(path, child.key()), out);
}

}  // namespace

io::TensorDict state_dict(const torch::nn::Module& module) {
  io::TensorDict out;
  collect(module, "", out);
  return out;
}

LoadReport load_state_dict(torch::nn::Module& module, const io::TensorDict& dict, const LoadOptions& options) {
  LoadReport report;
  detail::ProblemList errors;
  std::map<std::string, torch::Tensor> provided;
  std::vector<std::string> order;
  for (const auto& item : dict) {
    std::string key = item.key();
    const std::string& prefix = options.strip_prefix();
    if (!prefix.empty() && key.compare(0, prefix.size(), prefix) == 0) key = key.substr(prefix.size());
    if (provided.count(key)) {
      errors.add("duplicate key " + key);
      continue;
    }
    provided.emplace(key, item.value());
    order.push_back(key);
  }

  io::TensorDict own = state_dict(module);
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;  // (target, source)
  for (const auto& item : own) {
    auto found = provided.find(item.key());
    if (found == provided.end()) {
      report.missing.push_back(item.key());
      continue;
    }
    if (!item.value().sizes().equals(found->second.sizes())) {
      errors.add("size mismatch for " + item.key() + ": copying a param with shape " +
                       shape_string(found->second.sizes()) + " from checkpoint, the shape in current model is " +
                       shape_string(item.value().sizes()));
      continue;
    }
    copies.emplace_back(item.value(), found->second);
    report.loaded.push_back(item.key());
  }
  for (const auto& key : order)
    if (!own.contains(key)) report.unexpected.push_back(key);
  if (options.strict() && !report.missing.empty()) errors.add("Missing key(s) in state_dict: " + join_keys(report.missing));
  if (options.strict() && !report.unexpected.empty())
    errors.add("Unexpected key(s) in state_dict: " + join_keys(report.unexpected));
  errors.throw_if_any("load_state_dict");
  // Convert everything first so that a failing conversion cannot leave a half-loaded module.
  std::vector<torch::Tensor> converted;
  converted.reserve(copies.size());
  for (size_t i = 0; i < copies.size(); ++i) {
    const auto& [target, source] = copies[i];
    converted.push_back(detail::to_device(source, target.device(), report.loaded[i], "load_state_dict", target.scalar_type()));
  }
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < copies.size(); ++i) copies[i].first.copy_(converted[i]);
  return report;
}

void save_state_dict(const torch::nn::Module& module, const std::string& path) {
  io::save_tensor_dict(state_dict(module), path);
}

LoadReport load_state_dict(torch::nn::Module& module, const std::string& path, const LoadOptions& options) {
  io::TensorDict dict = io::load_tensor_dict(path, options);
  try {
    return load_state_dict(module, dict, options);
  } catch (const LoadError& e) {
    throw LoadError(path + ": " + e.what());
  }
}

}  // namespace tt
