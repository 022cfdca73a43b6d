#pragma once
// Small helpers shared by the GoogleTest suites: locations, temporary folders, running Python,
// stepping layers through a sequence, finite-difference gradient checks.
#include <torch/torch.h>

#include <string>
#include <vector>

namespace tt_test {

// ../shared (spec and golden data) as configured by CMake.
std::string shared_dir();
// The build directory (where the `tracetorch` program lives, in tools/).
std::string binary_dir();
std::string source_dir();
// Debian's python3 with torch; empty when none was found at configure time.
std::string python();

// A fresh empty directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Runs a shell command, returns its exit code; stdout+stderr are captured into `output`.
int run_command(const std::string& command, std::string* output = nullptr);

// Runs a Python snippet with Debian's python3 (torch importable). Returns its exit code and
// captures stdout+stderr.
int run_python(const std::string& code, std::string* output = nullptr);

// Writes `text` to `path` (used by tests to make broken files).
void write_text(const std::string& path, const std::string& text);
std::string read_text(const std::string& path);

// Counts the CPU allocator's allocations (every tensor storage LibTorch creates on the CPU) while
// it lives: installs a counting wrapper around the current CPU allocator, restores it on
// destruction. One at a time; not thread-safe.
class CpuAllocationCounter {
 public:
  CpuAllocationCounter();
  ~CpuAllocationCounter();
  CpuAllocationCounter(const CpuAllocationCounter&) = delete;
  CpuAllocationCounter& operator=(const CpuAllocationCounter&) = delete;
  int64_t count() const;
  void clear();
};

// Runs inputs[t] through m for t in [begin, end) (end -1: to the last step), stacks the outputs.
torch::Tensor run_steps(torch::nn::AnyModule& m, const torch::Tensor& inputs, int64_t begin = 0, int64_t end = -1);

// Central finite differences against autograd in float64 over a `steps`-step sequence of inputs
// shaped `step_shape`, for every parameter element and every input element (the loss is a fixed
// random weighting of all outputs; states are zeroed before each evaluation). Converts m to
// float64. Reports failures through GoogleTest.
void gradient_check(torch::nn::AnyModule m, const std::vector<int64_t>& step_shape, int64_t steps = 4);

}  // namespace tt_test
