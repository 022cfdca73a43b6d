// Helpers shared by the state_dict subcommands.
#include <cmath>
#include <iostream>

#include "commands.h"
#include "tracetorch/io/state_dict_tools.h"

namespace tt_cli {

tt::io::TensorDict Input::read() const { return tt::io::load_tensor_dict_entry(path, entry); }

void add_input(CLI::App& cmd, Input& input, const std::string& name) {
  cmd.add_option(name, input.path, "a .pt file: state_dict, states, checkpoint or torch_rc model")->required();
  if (cmd.get_option_no_throw("--key") == nullptr)
    cmd.add_option("--key", input.entry, "the file's entry to use (default: the file itself, else model_state_dict)");
}

void print_json(const nlohmann::ordered_json& doc) {
  // nlohmann writes NaN and infinities as null already; keep the output one line per document.
  std::cout << doc.dump(1) << "\n";
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

}  // namespace tt_cli
