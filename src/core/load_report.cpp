#include "tracetorch/core/load_report.h"

namespace tt {

std::string join_keys(const std::vector<std::string>& keys) {
  std::string out = "[";
  for (size_t i = 0; i < keys.size(); ++i) out += (i ? ", " : "") + keys[i];
  return out + "]";
}

std::string LoadReport::summary(const std::string& what) const {
  std::string out = "Loaded " + std::to_string(loaded.size()) + " " + what;
  if (!missing.empty()) out += "; missing: " + join_keys(missing);
  if (!unexpected.empty()) out += "; unexpected: " + join_keys(unexpected);
  for (const auto& w : warnings) out += "; " + w;
  return out;
}

}  // namespace tt
