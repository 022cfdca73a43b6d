#pragma once
// State management for whole models (spec section 3), for ANY module tree: torch::nn::Sequential,
// ModuleList, ModuleDict and custom modules holding tt layers as registered children. One walk
// (named_layers) finds the layers; zero / detach / save / load / compile act on each.
//
// Ownership: named_layers returns raw pointers into the tree; they are valid while the root lives.
// Throws: tt::LoadError (load_states: keys or shapes that do not fit, a device move that fails),
// tt::FileError (files). Thread safety: these functions read or write every layer's states; do not
// run them while another thread runs the model. Distinct models may be used on distinct threads.
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
#include "tracetorch/core/load_options.h"
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
// Layer::set_exact for every layer: true forces the reference path (bit parity with Python).
void set_exact(torch::nn::Module& root, bool exact);

struct SaveStatesOptions {
  // Also write Python traceTorch's alias keys, so that Python's load_states(strict=True)
  // accepts the file (spec 11.6). Off by default: canonical keys only.
  SaveStatesOptions& python_aliases(bool value) {
    python_aliases_ = value;
    return *this;
  }
  bool python_aliases() const { return python_aliases_; }

 private:
  bool python_aliases_ = false;
};

// Detached clones of every defined state under canonical keys (undefined states are skipped).
io::TensorDict save_states(const torch::nn::Module& root, const SaveStatesOptions& options = {});
// The same, written to a Python-compatible .pt file (atomically).
void save_states(const torch::nn::Module& root, const std::string& path, const SaveStatesOptions& options = {});

// Loads states. All checks run before anything changes (a failing load changes nothing):
// - a shape mismatch with a defined state, or a tensor that cannot be the state (wrong size on
//   the feature axis), is always an error naming the key and both shapes;
// - with options.strict() (the default), missing keys and unexpected keys are errors listing
//   every one of them; otherwise they are listed in the report;
// - options.strip_prefix() is removed from keys that start with it.
// Tensors go to options.map_location() if given, else to the layer's parameter/buffer device,
// else stay where they are. dtypes are kept (as in Python). Throws tt::LoadError.
LoadReport load_states(torch::nn::Module& root, const io::TensorDict& states, const LoadOptions& options = {});
// The same from a file (read onto options.map_location() when given).
LoadReport load_states(torch::nn::Module& root, const std::string& path, const LoadOptions& options = {});

// The canonical form of a Python alias key: "._modules[net]._modules[1].mem" -> "net.1.mem".
std::string canonical_state_key(const std::string& key);

// Convenience base class for user models: `struct Net : tt::Model { ... }`, with the functions
// above as members.
class Model : public torch::nn::Module {
 public:
  using torch::nn::Module::Module;

  void zero_states() { tt::zero_states(*this); }
  void detach_states() { tt::detach_states(*this); }
  void compile() { tt::compile(*this); }
  void decompile() { tt::decompile(*this); }
  io::TensorDict save_states(const SaveStatesOptions& options = {}) const { return tt::save_states(*this, options); }
  void save_states(const std::string& path, const SaveStatesOptions& options = {}) const {
    tt::save_states(*this, path, options);
  }
  LoadReport load_states(const io::TensorDict& states, const LoadOptions& options = {}) {
    return tt::load_states(*this, states, options);
  }
  LoadReport load_states(const std::string& path, const LoadOptions& options = {}) {
    return tt::load_states(*this, path, options);
  }
};

}  // namespace tt
