#pragma once
// State management for whole models (spec section 3), for ANY module tree: torch::nn::Sequential,
// ModuleList, ModuleDict and custom modules holding tt layers as registered children.
//
// State keys are path-like: the registered child names from the root joined by '.', then the
// state name (`net.2.mem`). Python traceTorch also writes alias keys (`._modules[net].2.mem`,
// spec Quirk Q1); load_states accepts them and cross-checks them against the canonical key.
#include <torch/torch.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tracetorch/core/layer.h"
#include "tracetorch/core/load_report.h"
#include "tracetorch/io/pt_file.h"

namespace tt {

// Every tt layer in the tree with its path ("" for the root itself), depth first.
std::vector<std::pair<std::string, Layer*>> named_layers(torch::nn::Module& root);
std::vector<std::pair<std::string, const Layer*>> named_layers(const torch::nn::Module& root);

void zero_states(torch::nn::Module& root);
void detach_states(torch::nn::Module& root);
void compile(torch::nn::Module& root);
void decompile(torch::nn::Module& root);

struct SaveStatesOptions {
  // Also write Python traceTorch's alias keys, so that Python's load_states(strict=True)
  // accepts the file (spec 11.6). Off by default: canonical keys only.
  bool python_aliases = false;
};

// Detached clones of every defined state under canonical keys (undefined states are skipped).
io::TensorDict save_states(const torch::nn::Module& root, const SaveStatesOptions& options = {});

// Loads states. All checks run before anything changes (a failing load changes nothing):
// - a shape mismatch with a defined state, or a tensor that cannot be the state (wrong size on
//   the feature axis), is always an error naming the key and both shapes;
// - with `strict`, missing keys and unexpected keys are errors listing every one of them.
// Tensors go to `device` if given, else to the layer's parameter/buffer device, else stay where
// they are. dtypes are kept (as in Python). Throws tt::LoadError.
LoadReport load_states(torch::nn::Module& root, const io::TensorDict& states, bool strict = true,
                       std::optional<torch::Device> device = std::nullopt);

// The canonical form of a Python alias key: "._modules[net]._modules[1].mem" -> "net.1.mem".
std::string canonical_state_key(const std::string& key);

// Convenience base class for user models: `struct Net : tt::Model { ... }`.
class Model : public torch::nn::Module {
 public:
  using torch::nn::Module::Module;

  void zero_states() { tt::zero_states(*this); }
  void detach_states() { tt::detach_states(*this); }
  void compile() { tt::compile(*this); }
  void decompile() { tt::decompile(*this); }
  io::TensorDict save_states(const SaveStatesOptions& options = {}) const { return tt::save_states(*this, options); }
  LoadReport load_states(const io::TensorDict& states, bool strict = true,
                         std::optional<torch::Device> device = std::nullopt) {
    return tt::load_states(*this, states, strict, device);
  }
  // File versions (Python-compatible .pt, written atomically).
  void save_states(const std::string& path, const SaveStatesOptions& options = {}) const;
  LoadReport load_states(const std::string& path, bool strict = true,
                         std::optional<torch::Device> device = std::nullopt);
};

// File helpers usable with any module.
void save_states_file(const torch::nn::Module& root, const std::string& path, const SaveStatesOptions& options = {});
LoadReport load_states_file(torch::nn::Module& root, const std::string& path, bool strict = true,
                            std::optional<torch::Device> device = std::nullopt);

}  // namespace tt
