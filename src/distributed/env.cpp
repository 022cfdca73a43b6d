// InitOptions from the variables torchrun (and most cluster launchers) set for each process.
#include <cerrno>
#include <cstdlib>
#include <string>

#include "tracetorch/distributed/process_group.h"

namespace tt::distributed {

namespace {

const char* get(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

int64_t integer(const char* name, const char* text, int64_t lo, int64_t hi) {
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi)
    throw ValueError("tt::distributed: environment variable " + std::string(name) + "=\"" + text +
                     "\" is not an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return v;
}

}  // namespace

InitOptions options_from_env(InitOptions o) {
  constexpr int64_t kMaxRanks = 1 << 24;
  if (const char* v = get("WORLD_SIZE")) o.world_size(integer("WORLD_SIZE", v, 1, kMaxRanks));
  if (const char* v = get("RANK")) o.rank(integer("RANK", v, 0, kMaxRanks - 1));
  if (const char* v = get("LOCAL_RANK")) o.local_rank(integer("LOCAL_RANK", v, 0, kMaxRanks - 1));
  if (const char* v = get("MASTER_ADDR")) o.master_addr(v);
  if (const char* v = get("MASTER_PORT")) o.master_port(integer("MASTER_PORT", v, 1, 65535));
  if (const char* v = get("GLOO_SOCKET_IFNAME")) o.interface(v);
  if (const char* v = get("TT_DIST_TIMEOUT"))
    o.timeout(std::chrono::milliseconds(integer("TT_DIST_TIMEOUT", v, 1, 7 * 24 * 3600) * 1000));
  if (const char* v = get("TORCHELASTIC_USE_AGENT_STORE")) o.agent_store(std::string(v) == "True" || std::string(v) == "1");
  if (const char* v = get("TORCHELASTIC_RESTART_COUNT"))
    o.store_prefix(o.store_prefix() + "/restart" + std::to_string(integer("TORCHELASTIC_RESTART_COUNT", v, 0, kMaxRanks)));
  if (o.rank() >= o.world_size())
    throw ValueError("tt::distributed: RANK " + std::to_string(o.rank()) + " is not below WORLD_SIZE " +
                     std::to_string(o.world_size()));
  return o;
}

ProcessGroup init_from_env(InitOptions defaults) { return init(options_from_env(std::move(defaults))); }

}  // namespace tt::distributed
