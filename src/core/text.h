#pragma once
// Text helpers shared by the library's sources (private: not installed).
#include <torch/torch.h>

#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "tracetorch/core/error.h"

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

// "[a, b, c]"
inline std::string join_keys(const std::vector<std::string>& keys) {
  std::string out = "[";
  for (size_t i = 0; i < keys.size(); ++i) out += (i ? ", " : "") + keys[i];
  return out + "]";
}

// The first line of a LibTorch error (without the C++ backtrace LibTorch appends).
inline std::string first_line(const std::string& text) {
  const auto end = text.find('\n');
  return end == std::string::npos ? text : text.substr(0, end);
}

// tensor.to(device, dtype) whose failure (no CUDA on this machine, an unknown device) is a
// LoadError naming the key instead of a LibTorch dispatcher dump.
inline torch::Tensor to_device(const torch::Tensor& tensor, torch::Device device, const std::string& key,
                               const std::string& what, std::optional<torch::ScalarType> dtype = std::nullopt) {
  try {
    return tensor.to(device, dtype ? *dtype : tensor.scalar_type());
  } catch (const c10::Error& e) {
    throw LoadError(what + ": cannot move " + key + " to " + device.str() + ": " + first_line(e.what_without_backtrace()));
  }
}

// Loads check everything before changing anything: every problem is collected, then reported in
// one exception of type E ("<what> failed, nothing was changed: a; b").
class ProblemList {
 public:
  void add(std::string problem) { problems_.push_back(std::move(problem)); }
  bool empty() const { return problems_.empty(); }
  template <typename E = LoadError>
  void throw_if_any(const std::string& what) const {
    if (problems_.empty()) return;
    std::string message = what + " failed, nothing was changed: ";
    for (size_t i = 0; i < problems_.size(); ++i) message += (i ? "; " : "") + problems_[i];
    throw E(message);
  }

 private:
  std::vector<std::string> problems_;
};

}  // namespace tt::detail
