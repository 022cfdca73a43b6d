#pragma once
// One-file models: the tt-arch/1 architecture, the weights and optionally the hidden states in one
// Python-compatible .pt, so that a model loads with no code and no second file:
//
//   tt::save_model(*net, "net.pt", tt::SaveModelOptions().include_states(true));
//   tt::Sequential net = tt::load_model("net.pt");          // ready to run
//   $ tracetorch run --model net.pt --inputs x.pt --outputs y.pt
//
// The file is a checkpoint without an optimizer (include/tracetorch/io/checkpoint.h) whose
// 'architecture' is required: Python's torch.load finds 'model_state_dict' there, and
// tt::load_checkpoint reads it too.
//
// Throws: tt::ArchError when the module cannot be described as tt-arch/1 (save) or the stored
// document does not build (load), tt::FileError (file), tt::LoadError (weights or states that do
// not fit the architecture). Thread safety: as for save_checkpoint / load_checkpoint.
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>

#include "tracetorch/core/arch.h"
#include "tracetorch/core/load_options.h"

namespace tt {

struct SaveModelOptions {
  // Also write the hidden states ('model_states'); load_model restores them with
  // LoadOptions().load_states(true).
  SaveModelOptions& include_states(bool value) {
    include_states_ = value;
    return *this;
  }
  bool include_states() const { return include_states_; }
  // The user's values, stored as the checkpoint's 'metadata'.
  SaveModelOptions& metadata(nlohmann::ordered_json value) {
    metadata_ = std::move(value);
    return *this;
  }
  const nlohmann::ordered_json& metadata() const { return metadata_; }

 private:
  bool include_states_ = false;
  nlohmann::ordered_json metadata_ = nlohmann::ordered_json::object();
};

void save_model(const torch::nn::Module& module, const std::string& path, const SaveModelOptions& options = {});

// Builds the stored architecture, then loads weights (and states with options.load_states()).
// options.map_location() moves the built model there.
tt::Sequential load_model(const std::string& path, const LoadOptions& options = {});
tt::Sequential load_model(const std::string& path, const arch::Registry& registry, const LoadOptions& options = {});

}  // namespace tt
