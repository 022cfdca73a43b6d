#pragma once
// tt::LoadReport: what a load did, returned instead of printed (the library never prints).
// Every load returns one: keys applied, keys missing or unexpected (a non-strict load goes on
// without them; a strict one throws before this is made), Python alias keys that were
// cross-checked, and warnings. A plain value type; throws nothing.
#include <string>
#include <vector>

namespace tt {

struct LoadReport {
  std::vector<std::string> loaded;      // keys applied to the model
  std::vector<std::string> missing;     // keys the model expects that the input lacks
  std::vector<std::string> unexpected;  // keys in the input that the model does not have
  std::vector<std::string> aliases;     // Python alias keys that were cross-checked and skipped
  std::vector<std::string> warnings;    // anything else worth telling the caller

  bool complete() const { return missing.empty() && unexpected.empty(); }
  // One line, e.g. "Loaded 3 states; missing: [a]; unexpected: [b]".
  std::string summary(const std::string& what = "states") const;
};

}  // namespace tt
