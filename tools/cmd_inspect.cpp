// tracetorch inspect FILE [--key K] [--json]: per key shape, dtype, count, bytes, device,
// min / max / mean and NaN / Inf counts, then totals. Exit 0, or 1 for an unreadable file.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>

#include "commands.h"
#include "tracetorch/io/state_dict_tools.h"

namespace tt_cli {

namespace {

struct InspectArgs {
  Input input;
  bool json = false;
};

nlohmann::ordered_json number(double v) { return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(nullptr); }

int inspect(const InspectArgs& a) {
  const auto summaries = tt::io::summarize(a.input.read());
  int64_t numel = 0, bytes = 0, nan = 0, inf = 0;
  for (const auto& s : summaries) {
    numel += s.numel;
    bytes += s.bytes;
    nan += s.nan_count;
    inf += s.inf_count;
  }
  if (a.json) {
    nlohmann::ordered_json keys = nlohmann::ordered_json::array();
    for (const auto& s : summaries)
      keys.push_back({{"key", s.key}, {"shape", s.shape}, {"dtype", s.dtype}, {"numel", s.numel}, {"bytes", s.bytes},
                      {"device", s.device}, {"min", number(s.min)}, {"max", number(s.max)}, {"mean", number(s.mean)},
                      {"nan", s.nan_count}, {"inf", s.inf_count}});
    print_json({{"file", a.input.path}, {"keys", keys},
                {"total", {{"tensors", summaries.size()}, {"numel", numel}, {"bytes", bytes}, {"nan", nan}, {"inf", inf}}}});
    return 0;
  }
  std::printf("%-40s %-16s %-9s %10s %12s %-6s %12s %12s %12s %5s %5s\n", "key", "shape", "dtype", "numel", "bytes",
              "device", "min", "max", "mean", "nan", "inf");
  for (const auto& s : summaries)
    std::printf("%-40s %-16s %-9s %10lld %12lld %-6s %12.5g %12.5g %12.5g %5lld %5lld\n", s.key.c_str(),
                shape_text(s.shape).c_str(), s.dtype.c_str(), static_cast<long long>(s.numel),
                static_cast<long long>(s.bytes), s.device.c_str(), s.min, s.max, s.mean,
                static_cast<long long>(s.nan_count), static_cast<long long>(s.inf_count));
  std::printf("total: %zu tensors, %lld elements, %lld bytes, %lld NaN, %lld Inf\n", summaries.size(),
              static_cast<long long>(numel), static_cast<long long>(bytes), static_cast<long long>(nan),
              static_cast<long long>(inf));
  return 0;
}

}  // namespace

Command add_inspect(CLI::App& app) {
  auto args = std::make_shared<InspectArgs>();
  auto* cmd = app.add_subcommand("inspect", "per-key shape, dtype, size and value statistics of a tensor dict");
  add_input(*cmd, args->input);
  cmd->add_flag("--json", args->json, "one JSON document instead of a table");
  return [args] { return inspect(*args); };
}

}  // namespace tt_cli
