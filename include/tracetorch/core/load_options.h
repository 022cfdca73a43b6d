#pragma once
// tt::LoadOptions: the one options type every load takes (states, state_dicts, checkpoints, echo
// state networks, plain .pt values), with chainable setters as LibTorch's options structs:
//
//   tt::load_state_dict(net, "weights.pt", tt::LoadOptions().strict(false).strip_prefix("module."));
//   tt::load_states(net, "states.pt", tt::LoadOptions().map_location(torch::kCPU));
//
// A load that does not use an option ignores it (a plain tensor file has no keys to strip).
// A plain value type: copy it freely; thread-safe as any value.
#include <torch/torch.h>

#include <optional>
#include <string>

namespace tt {

class LoadOptions {
 public:
  // Reject missing and unexpected keys (listing every one). Shape mismatches are always errors.
  LoadOptions& strict(bool value) {
    strict_ = value;
    return *this;
  }
  bool strict() const { return strict_; }

  // Where loaded tensors go, as torch.load's map_location: by default each tensor goes to the
  // device recorded in the file (plain values) or to the device of the module it fills.
  LoadOptions& map_location(std::optional<torch::Device> device) {
    map_location_ = device;
    return *this;
  }
  const std::optional<torch::Device>& map_location() const { return map_location_; }

  // Drops this prefix from every key that starts with it before matching, e.g. "module." for
  // checkpoints of DataParallel-wrapped models. Empty: keys are taken as they are.
  LoadOptions& strip_prefix(std::string prefix) {
    strip_prefix_ = std::move(prefix);
    return *this;
  }
  const std::string& strip_prefix() const { return strip_prefix_; }

  // Also load hidden states where the file can carry them (echo state networks, checkpoints),
  // torch_rc's `load_states` argument. Off by default, as in torch_rc.
  LoadOptions& load_states(bool value) {
    load_states_ = value;
    return *this;
  }
  bool load_states() const { return load_states_; }

 private:
  bool strict_ = true;
  std::optional<torch::Device> map_location_;
  std::string strip_prefix_;
  bool load_states_ = false;
};

}  // namespace tt
