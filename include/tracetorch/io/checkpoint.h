#pragma once
// Training checkpoints: one Python-compatible .pt file holding what a resumed run needs, under
// the key names Python users write by hand, so that files cross between Python and C++:
//
//   {'epoch': 3, 'model_state_dict': {...}, 'optimizer_state_dict': {...}, 'loss': 0.25,
//    'model_states': {...},            hidden states (when include_states)
//    'rng_state': ByteTensor,          torch's default CPU generator (when include_rng_state)
//    'architecture': {...},            the tt-arch/1 document, when the model can be described
//    'metadata': {...},                the user's own values
//    'versions': {'tracetorch': '0.1.0', 'torch': '1.13.0'}, 'timestamp': '2026-...Z',
//    'format': 'tt-checkpoint/1'}
//
//   tt::Checkpoint ckpt;  ckpt.epoch = 3;  ckpt.loss = 0.25;  ckpt.metadata["run"] = "a";
//   tt::save_checkpoint(*net, optimizer, ckpt, "ckpt.pt");
//   tt::Checkpoint back = tt::load_checkpoint(*net, optimizer, "ckpt.pt");
//
// Python: ck = torch.load("ckpt.pt"); model.load_state_dict(ck['model_state_dict']);
// optimizer.load_state_dict(ck['optimizer_state_dict']) — and the other way round, any dict that
// Python saved with these keys loads here ('state_dict' is accepted for 'model_state_dict'; other
// top-level keys that JSON can hold land in `metadata`).
//
// Loads are transactional: the model's parameters, its hidden states and the optimizer are all
// checked before any of them changes. options.strict() and strip_prefix() apply to the model's
// keys, options.map_location() to reading the file (the model keeps its own device; optimizer
// state goes to its parameter's device), options.load_states() loads 'model_states'.
// The RNG state is returned, not applied: call tt::set_cpu_rng_state(*ckpt.rng_state) to resume.
//
// Throws: tt::FileError (file), tt::LoadError (contents that do not fit the model or optimizer),
// tt::ValueError (an unsupported optimizer, metadata JSON cannot store). Thread safety: as for
// load_state_dict; do not run or step the model meanwhile. RNG functions lock the generator.
#include <torch/torch.h>

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "tracetorch/core/load_options.h"
#include "tracetorch/core/load_report.h"

namespace tt {

struct Checkpoint {
  int64_t epoch = 0;
  double loss = std::numeric_limits<double>::quiet_NaN();
  // The user's values (strings, numbers, bools, null, arrays, objects), saved as Python objects.
  nlohmann::ordered_json metadata = nlohmann::ordered_json::object();
  // Save: also the model's hidden states. Load: whether the file held them.
  bool include_states = false;
  // Save: also torch's default CPU generator state (take it with tt::cpu_rng_state()).
  bool include_rng_state = false;
  // Load: the generator state the file held.
  std::optional<torch::Tensor> rng_state;
  // Save: when unset, the model's own tt-arch/1 document if it can be described.
  std::optional<nlohmann::ordered_json> architecture;
  // Load only (save writes the current values): what wrote the file, and when.
  std::string tracetorch_version, torch_version, timestamp;
  // Load only: what was loaded, skipped, or worth a warning.
  LoadReport report;
};

void save_checkpoint(const torch::nn::Module& module, const torch::optim::Optimizer& optimizer,
                     const Checkpoint& checkpoint, const std::string& path);
void save_checkpoint(const torch::nn::Module& module, const Checkpoint& checkpoint, const std::string& path);

Checkpoint load_checkpoint(torch::nn::Module& module, torch::optim::Optimizer& optimizer, const std::string& path,
                           const LoadOptions& options = {});
Checkpoint load_checkpoint(torch::nn::Module& module, const std::string& path, const LoadOptions& options = {});

// torch's default CPU generator state (Python's torch.get_rng_state()) and its restore.
torch::Tensor cpu_rng_state();
void set_cpu_rng_state(const torch::Tensor& state);

// Library and LibTorch versions as written into checkpoints ("0.1.0", "1.13.0").
std::string tracetorch_version();
std::string torch_version();

}  // namespace tt
