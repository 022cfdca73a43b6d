// One-file models: a checkpoint without optimizer whose architecture is required.
#include "tracetorch/io/model_file.h"

#include "checkpoint_detail.h"
#include "json_value.h"
#include "tracetorch/core/error.h"
#include "tracetorch/io/pt_file.h"

namespace tt {

void save_model(const torch::nn::Module& module, const std::string& path, const SaveModelOptions& options) {
  Checkpoint checkpoint;
  checkpoint.architecture = arch::to_json(module);  // tt::ArchError when the module cannot be described
  checkpoint.include_states = options.include_states();
  checkpoint.metadata = options.metadata();
  io::save_pt(detail::checkpoint_value(module, nullptr, checkpoint, path), path);
}

tt::Sequential load_model(const std::string& path, const LoadOptions& options) {
  return load_model(path, arch::default_registry(), options);
}

tt::Sequential load_model(const std::string& path, const arch::Registry& registry, const LoadOptions& options) {
  const c10::IValue file = io::load_pt(path, options);
  if (!file.isGenericDict()) throw FileError(path + ": not a model file: expected a dict at the top level");
  std::optional<nlohmann::ordered_json> document;
  for (const auto& entry : file.toGenericDict())
    if (entry.key().isString() && entry.key().toStringRef() == "architecture") document = io::detail::ivalue_to_json(entry.value());
  if (!document)
    throw FileError(path + ": not a model file: no 'architecture' (a checkpoint of a model that was not built from "
                           "tt-arch/1; load it into a model with tt::load_checkpoint)");
  tt::Sequential model;
  try {
    model = arch::build(*document, registry);
  } catch (const ArchError& e) {
    throw ArchError(path + ": 'architecture': " + e.what());
  }
  if (options.map_location()) model->to(*options.map_location());
  detail::load_checkpoint_value(*model, nullptr, file, path, options);
  return model;
}

}  // namespace tt
