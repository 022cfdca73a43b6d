#pragma once
// The state_dict subcommands of `tracetorch` (one tools/cmd_*.cpp each). Each adds itself to the
// app and returns the function to run when it is the chosen subcommand; that function returns the
// exit code and throws for errors (main prints one line and exits 1; diff exits 2 itself).
#include <CLI/CLI.hpp>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "tracetorch/io/pt_file.h"

namespace tt_cli {

using Command = std::function<int()>;

Command add_inspect(CLI::App& app);
Command add_diff(CLI::App& app);
Command add_filter(CLI::App& app);
Command add_rename(CLI::App& app);
Command add_convert(CLI::App& app);

// Shared by the commands: the input file and the entry to read from it.
struct Input {
  std::string path;
  std::string entry;
  tt::io::TensorDict read() const;
};
void add_input(CLI::App& cmd, Input& input, const std::string& name = "file");

// Prints `doc` (--json) with NaN as null; one document per run.
void print_json(const nlohmann::ordered_json& doc);
std::string shape_text(const std::vector<int64_t>& shape);

}  // namespace tt_cli
