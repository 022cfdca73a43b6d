// tracetorch filter FILE (--arch A.json | --like REF.pt) --output OUT [--key K] [--json]: keeps the
// entries whose key and shape fit the target model (transfer learning) and reports every skipped
// key with the reason. Exit 0, or 1 for an error.
#include <cstdio>
#include <memory>

#include "commands.h"
#include "tracetorch/core/arch.h"
#include "tracetorch/core/state_dict.h"
#include "tracetorch/io/state_dict_tools.h"

namespace tt_cli {

namespace {

struct FilterArgs {
  Input input;
  std::string arch, like, output;
  bool json = false;
};

int filter(const FilterArgs& a) {
  tt::io::TensorDict target;
  if (!a.arch.empty()) {
    target = tt::state_dict(*tt::arch::load(a.arch));
  } else {
    target = tt::io::load_tensor_dict_entry(a.like);
  }
  const tt::io::FilterResult result = tt::io::filter_for(a.input.read(), target);
  if (!a.output.empty()) tt::io::save_tensor_dict(result.kept, a.output);
  if (a.json) {
    nlohmann::ordered_json skipped = nlohmann::ordered_json::array();
    for (const auto& [key, reason] : result.skipped) skipped.push_back({{"key", key}, {"reason", reason}});
    nlohmann::ordered_json kept = nlohmann::ordered_json::array();
    for (const auto& item : result.kept) kept.push_back(item.key());
    print_json({{"kept", kept}, {"skipped", skipped}, {"missing", result.missing}});
    return 0;
  }
  for (const auto& [key, reason] : result.skipped) std::printf("skipped %s: %s\n", key.c_str(), reason.c_str());
  for (const auto& key : result.missing) std::printf("missing %s (the model keeps its own value)\n", key.c_str());
  std::printf("kept %zu of %zu entries\n", result.kept.size(), result.kept.size() + result.skipped.size());
  return 0;
}

}  // namespace

Command add_filter(CLI::App& app) {
  auto args = std::make_shared<FilterArgs>();
  auto* cmd = app.add_subcommand("filter", "keep the entries that fit a target model, report the others");
  add_input(*cmd, args->input);
  auto* arch = cmd->add_option("--arch", args->arch, "the target model's architecture JSON (tt-arch/1)");
  auto* like = cmd->add_option("--like", args->like, "a state_dict or checkpoint of the target model");
  arch->excludes(like);
  cmd->add_option("--output,-o", args->output, "where to write the kept entries (a plain state_dict .pt)");
  cmd->add_flag("--json", args->json, "one JSON document instead of text");
  cmd->callback([arch, like] {
    if (arch->count() + like->count() == 0) throw CLI::ValidationError("filter", "needs --arch or --like");
  });
  return [args] { return filter(*args); };
}

}  // namespace tt_cli
