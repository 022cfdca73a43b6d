// tracetorch rename FILE --from P --to Q --output OUT [--key K] [--json]: replaces the key prefix
// P by Q ("module." -> "" strips DataParallel's prefix, "" -> "encoder." adds one).
// Exit 0, or 1 for an error (also for keys that would collide).
#include <cstdio>
#include <memory>

#include "commands.h"
#include "tracetorch/io/state_dict_tools.h"

namespace tt_cli {

namespace {

struct RenameArgs {
  Input input;
  std::string from, to, output;
  bool json = false;
};

int rename(const RenameArgs& a) {
  const tt::io::TensorDict in = a.input.read();
  const tt::io::TensorDict out = tt::io::rename_prefix(in, a.from, a.to);
  tt::io::save_tensor_dict(out, a.output);
  size_t changed = 0;
  nlohmann::ordered_json renamed = nlohmann::ordered_json::array();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i].key() == out[i].key()) continue;
    ++changed;
    renamed.push_back({{"from", in[i].key()}, {"to", out[i].key()}});
  }
  if (a.json) {
    print_json({{"renamed", renamed}, {"unchanged", in.size() - changed}});
  } else {
    std::printf("renamed %zu of %zu keys\n", changed, in.size());
  }
  return 0;
}

}  // namespace

Command add_rename(CLI::App& app) {
  auto args = std::make_shared<RenameArgs>();
  auto* cmd = app.add_subcommand("rename", "replace a key prefix (strip 'module.', add 'encoder.', ...)");
  add_input(*cmd, args->input);
  cmd->add_option("--from", args->from, "the prefix to replace (\"\" matches every key)")->required();
  cmd->add_option("--to", args->to, "its replacement (\"\" strips it)")->required();
  cmd->add_option("--output,-o", args->output, "where to write the result (a plain state_dict .pt)")->required();
  cmd->add_flag("--json", args->json, "one JSON document instead of text");
  return [args] { return rename(*args); };
}

}  // namespace tt_cli
