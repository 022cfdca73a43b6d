#include "tracetorch/core/model.h"

#include <map>
#include <sstream>

#include "text.h"
#include "tracetorch/core/error.h"

namespace tt {

namespace {

using detail::join_keys;
using detail::join_path;
using detail::shape_string;

template <typename ModuleT, typename LayerT>
void collect_layers(ModuleT& module, const std::string& path, std::vector<std::pair<std::string, LayerT*>>& out) {
  if (auto* layer = dynamic_cast<LayerT*>(&module)) out.emplace_back(path, layer);
  for (const auto& child : module.named_children()) collect_layers<ModuleT, LayerT>(*child.value(), join_path(path, child.key()), out);
}

// Every spelling Python traceTorch gives the path of a module: each edge from the root is
// either ".name" (registered child) or "._modules[name]" (the same child reached through
// the `_modules` dict attribute); a leading "." stays when the first edge is an alias.
std::vector<std::string> python_path_spellings(const std::string& canonical_path) {
  std::vector<std::string> spellings = {""};
  if (canonical_path.empty()) return spellings;
  std::stringstream parts(canonical_path);
  std::string part;
  while (std::getline(parts, part, '.')) {
    std::vector<std::string> next;
    for (const auto& p : spellings) {
      next.push_back(join_path(p, part));
      next.push_back(p + "._modules[" + part + "]");
    }
    spellings = std::move(next);
  }
  return spellings;
}

void put(io::TensorDict& dict, const std::string& key, const torch::Tensor& value) {
  if (dict.contains(key)) {
    dict[key] = value;
  } else {
    dict.insert(key, value);
  }
}

torch::optional<torch::Device> module_device(const torch::nn::Module& module) {
  for (const auto& p : module.parameters(/*recurse=*/true))
    if (p.defined()) return p.device();
  for (const auto& b : module.buffers(/*recurse=*/true))
    if (b.defined()) return b.device();
  return torch::nullopt;
}

}  // namespace

std::vector<std::pair<std::string, Layer*>> named_layers(torch::nn::Module& root) {
  std::vector<std::pair<std::string, Layer*>> out;
  collect_layers<torch::nn::Module, Layer>(root, "", out);
  return out;
}

std::vector<std::pair<std::string, const Layer*>> named_layers(const torch::nn::Module& root) {
  std::vector<std::pair<std::string, const Layer*>> out;
  collect_layers<const torch::nn::Module, const Layer>(root, "", out);
  return out;
}

void zero_states(torch::nn::Module& root) {
  for (auto& [path, layer] : named_layers(root)) layer->zero_states();
}

void detach_states(torch::nn::Module& root) {
  for (auto& [path, layer] : named_layers(root)) layer->detach_states();
}

void compile(torch::nn::Module& root) {
  for (auto& [path, layer] : named_layers(root)) layer->compile();
}

void set_exact(torch::nn::Module& root, bool exact) {
  for (auto& [path, layer] : named_layers(root)) layer->set_exact(exact);
}

void decompile(torch::nn::Module& root) {
  // All or nothing across layers: when a layer cannot decompile, the ones already decompiled are
  // compiled again, so that no tree is left half compiled.
  auto layers = named_layers(root);
  std::vector<Layer*> done;
  try {
    for (auto& [path, layer] : layers) {
      if (!layer->is_compiled()) continue;
      layer->decompile();
      done.push_back(layer);
    }
  } catch (...) {
    for (Layer* layer : done) layer->compile();
    throw;
  }
}

std::string canonical_state_key(const std::string& key) {
  std::stringstream parts(key);
  std::string part;
  std::string out;
  while (std::getline(parts, part, '.')) {
    if (part.empty()) continue;  // the leading "." of an alias spelling
    const std::string prefix = "_modules[";
    if (part.size() > prefix.size() + 1 && part.compare(0, prefix.size(), prefix) == 0 && part.back() == ']')
      part = part.substr(prefix.size(), part.size() - prefix.size() - 1);
    out = join_path(out, part);
  }
  return out;
}

io::TensorDict save_states(const torch::nn::Module& root, const SaveStatesOptions& options) {
  io::TensorDict out;
  for (const auto& [path, layer] : named_layers(root)) {
    const auto& names = layer->state_names();
    for (const auto& name : names) {
      const torch::Tensor& value = layer->state(name);
      if (!value.defined()) continue;
      torch::Tensor copy = value.detach().clone();
      if (options.python_aliases()) {
        for (const auto& spelling : python_path_spellings(path)) put(out, join_path(spelling, name), copy);
      } else {
        put(out, join_path(path, name), copy);
      }
    }
  }
  return out;
}

LoadReport load_states(torch::nn::Module& root, const io::TensorDict& states, const LoadOptions& options) {
  LoadReport report;
  detail::ProblemList errors;

  // Fold the input onto canonical keys; alias spellings must agree with the canonical value.
  std::map<std::string, torch::Tensor> provided;
  std::vector<std::string> provided_order;
  const std::string& prefix = options.strip_prefix();
  for (const auto& item : states) {
    const bool prefixed = !prefix.empty() && item.key().compare(0, prefix.size(), prefix) == 0;
    const std::string canonical = canonical_state_key(prefixed ? item.key().substr(prefix.size()) : item.key());
    if (canonical != item.key()) report.aliases.push_back(item.key());
    auto found = provided.find(canonical);
    if (found == provided.end()) {
      provided.emplace(canonical, item.value());
      provided_order.push_back(canonical);
    } else if (!found->second.sizes().equals(item.value().sizes()) ||
               !torch::equal(found->second.to(item.value().device()), item.value())) {
      errors.add("alias key " + item.key() + " disagrees with " + canonical);
    }
  }

  struct Target {
    std::string key;
    Layer* layer;
    std::string name;
    size_t index;
    torch::Tensor value;
  };
  std::vector<Target> targets;
  std::map<std::string, bool> expected;
  for (auto& [path, layer] : named_layers(root)) {
    const auto& names = layer->state_names();
    for (size_t i = 0; i < names.size(); ++i) {
      const std::string key = join_path(path, names[i]);
      expected[key] = true;
      auto found = provided.find(key);
      if (found == provided.end()) {
        report.missing.push_back(key);
        continue;
      }
      const torch::Tensor& incoming = found->second;
      const torch::Tensor& current = layer->state(names[i]);
      if (current.defined()) {
        if (!current.sizes().equals(incoming.sizes()))
          errors.add("Shape mismatch for " + key + ": expected " + shape_string(current.sizes()) + ", got " +
                           shape_string(incoming.sizes()));
      } else if (auto problem = layer->check_state_shape(i, incoming.sizes())) {
        errors.add("Shape mismatch for " + key + ": " + *problem);
      }
      targets.push_back({key, layer, names[i], i, incoming});
    }
  }
  for (const auto& key : provided_order)
    if (!expected.count(key)) report.unexpected.push_back(key);

  if (options.strict() && !report.missing.empty()) errors.add("Missing states for: " + join_keys(report.missing));
  if (options.strict() && !report.unexpected.empty()) errors.add("Unexpected states: " + join_keys(report.unexpected));
  errors.throw_if_any("load_states");

  // Resolve devices before the first assignment so that a failing move changes nothing.
  std::vector<torch::Tensor> moved;
  moved.reserve(targets.size());
  for (const auto& t : targets) {
    const auto& map_location = options.map_location();
    torch::optional<torch::Device> target_device = map_location ? torch::optional<torch::Device>(*map_location) : module_device(*t.layer);
    moved.push_back(target_device ? detail::to_device(t.value, *target_device, t.key, "load_states") : t.value);
  }
  for (size_t i = 0; i < targets.size(); ++i) {
    targets[i].layer->set_state(targets[i].name, moved[i]);
    report.loaded.push_back(targets[i].key);
  }
  return report;
}

void save_states(const torch::nn::Module& root, const std::string& path, const SaveStatesOptions& options) {
  io::save_tensor_dict(save_states(root, options), path);
}

LoadReport load_states(torch::nn::Module& root, const std::string& path, const LoadOptions& options) {
  io::TensorDict states = io::load_tensor_dict(path, options);
  try {
    return load_states(root, states, options);
  } catch (const LoadError& e) {
    throw LoadError(path + ": " + e.what());
  }
}

}  // namespace tt
