#pragma once
// Text helpers shared by the state and state_dict code (private to the library).
#include <torch/torch.h>

#include <sstream>
#include <string>

namespace tt::detail {

// "net" + "1" -> "net.1"; the root has the empty path.
inline std::string join_path(const std::string& path, const std::string& name) {
  return path.empty() ? name : path + "." + name;
}

// [2, 4]
inline std::string shape_string(torch::IntArrayRef sizes) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < sizes.size(); ++i) out << (i ? ", " : "") << sizes[i];
  out << "]";
  return out.str();
}

}  // namespace tt::detail
