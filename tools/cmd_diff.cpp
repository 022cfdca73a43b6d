// tracetorch diff A B [--key K] [--rtol R] [--atol A] [--json]: keys only in one side, shape or
// dtype differences, max absolute and relative difference per key.
// Exit 0 equal (within rtol/atol), 1 different, 2 error (unreadable file, bad argument).
#include <cstdio>
#include <iostream>
#include <memory>

#include "commands.h"
#include "tracetorch/io/state_dict_tools.h"

namespace tt_cli {

namespace {

struct DiffArgs {
  Input a, b;
  double rtol = 1e-5, atol = 1e-8;
  bool json = false;
};

int diff(const DiffArgs& args) {
  tt::io::DictDifference d;
  try {
    Input b = args.b;
    b.entry = args.a.entry;
    d = tt::io::diff(args.a.read(), b.read(), args.rtol, args.atol);
  } catch (const std::exception& e) {
    std::string message = e.what();
    std::fprintf(stderr, "tracetorch: error: %s\n", message.substr(0, message.find('\n')).c_str());
    return 2;
  }
  const bool equal = d.equal();
  if (args.json) {
    nlohmann::ordered_json keys = nlohmann::ordered_json::array();
    for (const auto& c : d.common) {
      nlohmann::ordered_json k = {{"key", c.key}, {"close", c.close}, {"max_abs", c.max_abs}, {"max_rel", c.max_rel}};
      if (!c.problem.empty()) k["problem"] = c.problem;
      keys.push_back(k);
    }
    print_json({{"equal", equal}, {"rtol", args.rtol}, {"atol", args.atol}, {"only_in_a", d.only_in_a},
                {"only_in_b", d.only_in_b}, {"keys", keys}});
    return equal ? 0 : 1;
  }
  for (const auto& k : d.only_in_a) std::printf("only in %s: %s\n", args.a.path.c_str(), k.c_str());
  for (const auto& k : d.only_in_b) std::printf("only in %s: %s\n", args.b.path.c_str(), k.c_str());
  for (const auto& c : d.common) {
    if (c.close) continue;
    if (!c.problem.empty() && c.problem.compare(0, 5, "shape") == 0) {
      std::printf("%s: %s\n", c.key.c_str(), c.problem.c_str());
    } else {
      std::printf("%s: max abs %.6g, max rel %.6g%s%s\n", c.key.c_str(), c.max_abs, c.max_rel,
                  c.problem.empty() ? "" : ", ", c.problem.c_str());
    }
  }
  std::printf("%s (%zu common keys, rtol %g, atol %g)\n", equal ? "equal" : "different", d.common.size(), args.rtol,
              args.atol);
  return equal ? 0 : 1;
}

}  // namespace

Command add_diff(CLI::App& app) {
  auto args = std::make_shared<DiffArgs>();
  auto* cmd = app.add_subcommand("diff", "compare two tensor dicts (exit 0 equal, 1 different, 2 error)");
  add_input(*cmd, args->a, "a");
  cmd->add_option("b", args->b.path, "the second file")->required();
  cmd->add_option("--rtol", args->rtol, "relative tolerance (default 1e-5)");
  cmd->add_option("--atol", args->atol, "absolute tolerance (default 1e-8)");
  cmd->add_flag("--json", args->json, "one JSON document instead of text");
  return [args] { return diff(*args); };
}

}  // namespace tt_cli
