// Training checkpoints (include/tracetorch/io/checkpoint.h): a dict of Python's key names, written
// with save_pt and read with load_pt; every part is checked before the model or optimizer changes.
#include "tracetorch/io/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/version.h>

#include <cmath>
#include <ctime>
#include <mutex>

#include "checkpoint_detail.h"
#include "core/text.h"
#include "json_value.h"
#include "optimizer_state_prepare.h"
#include "tracetorch/core/arch.h"
#include "tracetorch/core/error.h"
#include "tracetorch/core/model.h"
#include "tracetorch/core/state_dict.h"
#include "tracetorch/io/optimizer_state.h"
#include "tracetorch/io/pt_file.h"

#ifndef TT_VERSION_STRING
#error "TT_VERSION_STRING is set by CMakeLists.txt"
#endif

namespace tt {

namespace {

constexpr const char* kFormat = "tt-checkpoint/1";

// Keys this file format gives a meaning to; any other top-level key of a Python dict is metadata.
bool reserved_key(const std::string& key) {
  static const char* keys[] = {"format",   "epoch",        "loss",      "model_state_dict", "state_dict",
                               "optimizer_state_dict", "model_states", "rng_state", "architecture",
                               "metadata", "versions",     "timestamp"};
  for (const char* k : keys)
    if (key == k) return true;
  return false;
}

std::string utc_timestamp() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

c10::IValue detail::checkpoint_value(const torch::nn::Module& module, const torch::optim::Optimizer* optimizer,
                                     const Checkpoint& checkpoint, const std::string& path) {
  c10::impl::GenericDict out(c10::StringType::get(), c10::AnyType::get());
  out.insert("epoch", checkpoint.epoch);
  out.insert("model_state_dict", io::to_ivalue(state_dict(module)));
  if (optimizer != nullptr) out.insert("optimizer_state_dict", optimizer_state_dict(*optimizer));
  out.insert("loss", checkpoint.loss);
  if (checkpoint.include_states) out.insert("model_states", io::to_ivalue(save_states(module)));
  if (checkpoint.include_rng_state) out.insert("rng_state", cpu_rng_state());
  std::optional<nlohmann::ordered_json> architecture = checkpoint.architecture;
  if (!architecture) {
    try {
      architecture = arch::to_json(module);
    } catch (const tt::Error&) {
      // Not built from tt-arch/1 types: the checkpoint simply has no architecture.
    }
  }
  if (architecture) out.insert("architecture", io::detail::json_to_ivalue(*architecture, path + ": architecture"));
  if (!checkpoint.metadata.is_null() && !checkpoint.metadata.is_object())
    throw ValueError(path + ": checkpoint metadata must be a JSON object, got " + std::string(checkpoint.metadata.type_name()));
  out.insert("metadata", io::detail::json_to_ivalue(checkpoint.metadata.is_null() ? nlohmann::ordered_json::object()
                                                                                   : checkpoint.metadata,
                                                    path + ": metadata"));
  c10::impl::GenericDict versions(c10::StringType::get(), c10::AnyType::get());
  versions.insert("tracetorch", tracetorch_version());
  versions.insert("torch", torch_version());
  out.insert("versions", versions);
  out.insert("timestamp", utc_timestamp());
  out.insert("format", std::string(kFormat));
  return out;
}

namespace {

const c10::IValue* find(const c10::impl::GenericDict& dict, const std::string& key) {
  for (const auto& entry : dict)
    if (entry.key().isString() && entry.key().toStringRef() == key) return &entry.value();
  return nullptr;
}

std::string string_or_empty(const c10::IValue* v) { return v != nullptr && v->isString() ? v->toStringRef() : ""; }

}  // namespace

Checkpoint detail::load_checkpoint_value(torch::nn::Module& module, torch::optim::Optimizer* optimizer,
                                         const c10::IValue& file, const std::string& path, const LoadOptions& options) {
  if (!file.isGenericDict()) throw FileError(path + ": expected a checkpoint dict at the top level");
  const auto top = file.toGenericDict();
  for (const auto& entry : top)
    if (!entry.key().isString()) throw FileError(path + ": a checkpoint's keys must be strings");

  Checkpoint out;
  detail::ProblemList errors;

  // epoch and loss: Python often saves the loss as a 0-d tensor.
  if (const c10::IValue* epoch = find(top, "epoch")) {
    if (!epoch->isInt() || epoch->isBool()) throw FileError(path + ": 'epoch' is not an int");
    out.epoch = epoch->toInt();
  }
  if (const c10::IValue* loss = find(top, "loss")) {
    if (loss->isDouble() || (loss->isInt() && !loss->isBool())) {
      out.loss = loss->isDouble() ? loss->toDouble() : static_cast<double>(loss->toInt());
    } else if (loss->isTensor() && loss->toTensor().defined() && loss->toTensor().numel() == 1) {
      out.loss = loss->toTensor().detach().to(torch::kCPU, torch::kDouble).item<double>();
    } else if (!loss->isNone()) {
      throw FileError(path + ": 'loss' is not a number");
    }
  }

  const c10::IValue* weights = find(top, "model_state_dict");
  if (weights == nullptr) weights = find(top, "state_dict");
  if (weights == nullptr)
    throw FileError(path + ": not a checkpoint: no 'model_state_dict' (a plain state_dict loads with tt::load_state_dict)");
  const io::TensorDict model_state = io::to_tensor_dict(*weights, path + ": 'model_state_dict'");

  std::optional<io::TensorDict> states;
  if (const c10::IValue* saved_states = find(top, "model_states")) {
    out.include_states = true;
    if (options.load_states()) states = io::to_tensor_dict(*saved_states, path + ": 'model_states'");
  } else if (options.load_states()) {
    if (options.strict()) errors.add("the file has no 'model_states' (saved without include_states)");
    else out.report.warnings.push_back("the file has no 'model_states'; states left as they are");
  }

  std::optional<detail::PreparedOptimizerState> prepared;
  if (optimizer != nullptr) {
    if (const c10::IValue* saved = find(top, "optimizer_state_dict")) {
      prepared = detail::prepare_optimizer_state(*optimizer, *saved, path + ": 'optimizer_state_dict'");
    } else if (options.strict()) {
      errors.add("the file has no 'optimizer_state_dict'");
    } else {
      out.report.warnings.push_back("the file has no 'optimizer_state_dict'; the optimizer is left as it is");
    }
  }
  errors.throw_if_any(path + ": load_checkpoint");

  if (const c10::IValue* rng = find(top, "rng_state")) {
    if (!rng->isTensor() || rng->toTensor().scalar_type() != torch::kByte)
      throw FileError(path + ": 'rng_state' is not a uint8 tensor");
    out.rng_state = rng->toTensor().cpu();
  }
  if (const c10::IValue* architecture = find(top, "architecture")) {
    if (architecture->isString()) {
      try {
        out.architecture = nlohmann::ordered_json::parse(architecture->toStringRef());
      } catch (const nlohmann::json::exception& e) {
        throw FileError(path + ": 'architecture' is not valid JSON: " + e.what());
      }
    } else {
      out.architecture = io::detail::ivalue_to_json(*architecture);
      if (!out.architecture) throw FileError(path + ": 'architecture' is not a JSON document");
    }
  }
  if (const c10::IValue* versions = find(top, "versions"); versions != nullptr && versions->isGenericDict()) {
    out.tracetorch_version = string_or_empty(find(versions->toGenericDict(), "tracetorch"));
    out.torch_version = string_or_empty(find(versions->toGenericDict(), "torch"));
  }
  out.timestamp = string_or_empty(find(top, "timestamp"));
  if (const c10::IValue* metadata = find(top, "metadata")) {
    auto converted = io::detail::ivalue_to_json(*metadata);
    if (!converted || !converted->is_object()) throw FileError(path + ": 'metadata' is not a dict of JSON values");
    out.metadata = std::move(*converted);
  }
  for (const auto& entry : top) {
    const std::string& key = entry.key().toStringRef();
    if (reserved_key(key)) continue;
    if (auto converted = io::detail::ivalue_to_json(entry.value())) {
      out.metadata[key] = std::move(*converted);
    } else {
      out.report.warnings.push_back("'" + key + "' holds values JSON cannot (e.g. tensors); not in metadata");
    }
  }

  // Apply: states first (cheap to undo), then the parameters; a failure of the second puts the
  // old states back. The optimizer was checked above and its apply cannot fail.
  std::optional<io::TensorDict> old_states;
  if (states) {
    old_states = save_states(module);
    LoadReport r = load_states(module, *states, options);
    out.report.loaded.insert(out.report.loaded.end(), r.loaded.begin(), r.loaded.end());
    out.report.missing.insert(out.report.missing.end(), r.missing.begin(), r.missing.end());
    out.report.unexpected.insert(out.report.unexpected.end(), r.unexpected.begin(), r.unexpected.end());
    out.report.aliases = r.aliases;
  }
  try {
    LoadReport r = load_state_dict(module, model_state, options);
    out.report.loaded.insert(out.report.loaded.begin(), r.loaded.begin(), r.loaded.end());
    out.report.missing.insert(out.report.missing.begin(), r.missing.begin(), r.missing.end());
    out.report.unexpected.insert(out.report.unexpected.begin(), r.unexpected.begin(), r.unexpected.end());
  } catch (const LoadError& e) {
    if (old_states) {
      zero_states(module);
      load_states(module, *old_states, LoadOptions().strict(false));
    }
    throw LoadError(path + ": " + e.what());
  }
  if (prepared) {
    for (const auto& key : prepared->report.loaded) out.report.loaded.push_back("optimizer_state_dict." + key);
    for (const auto& w : prepared->report.warnings) out.report.warnings.push_back(w);
    prepared->apply(*optimizer);
  }
  return out;
}

void save_checkpoint(const torch::nn::Module& module, const torch::optim::Optimizer& optimizer,
                     const Checkpoint& checkpoint, const std::string& path) {
  io::save_pt(detail::checkpoint_value(module, &optimizer, checkpoint, path), path);
}

void save_checkpoint(const torch::nn::Module& module, const Checkpoint& checkpoint, const std::string& path) {
  io::save_pt(detail::checkpoint_value(module, nullptr, checkpoint, path), path);
}

Checkpoint load_checkpoint(torch::nn::Module& module, torch::optim::Optimizer& optimizer, const std::string& path,
                           const LoadOptions& options) {
  return detail::load_checkpoint_value(module, &optimizer, io::load_pt(path, options), path, options);
}

Checkpoint load_checkpoint(torch::nn::Module& module, const std::string& path, const LoadOptions& options) {
  return detail::load_checkpoint_value(module, nullptr, io::load_pt(path, options), path, options);
}

torch::Tensor cpu_rng_state() {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

void set_cpu_rng_state(const torch::Tensor& state) {
  if (!state.defined() || state.scalar_type() != torch::kByte || state.dim() != 1)
    throw ValueError("set_cpu_rng_state: expected a 1-d uint8 tensor (torch.get_rng_state()), got " +
                     (state.defined() ? std::string(c10::toString(state.scalar_type())) + " of " +
                                            std::to_string(state.dim()) + " dims"
                                      : std::string("an undefined tensor")));
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  try {
    generator.set_state(state.cpu().contiguous());
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    throw ValueError("set_cpu_rng_state: not a CPU generator state: " + what.substr(0, what.find('\n')));
  }
}

std::string tracetorch_version() { return TT_VERSION_STRING; }
std::string torch_version() { return TORCH_VERSION; }

}  // namespace tt
