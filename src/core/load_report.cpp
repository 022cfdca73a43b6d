#include "tracetorch/core/load_report.h"

#include "text.h"

namespace tt {

using detail::join_keys;

std::string LoadReport::summary(const std::string& what) const {
  std::string out = "Loaded " + std::to_string(loaded.size()) + " " + what;
  if (!missing.empty()) out += "; missing: " + join_keys(missing);
  if (!unexpected.empty()) out += "; unexpected: " + join_keys(unexpected);
  for (const auto& w : warnings) out += "; " + w;
  return out;
}

}  // namespace tt
