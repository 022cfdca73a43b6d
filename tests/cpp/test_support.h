#pragma once
// Small helpers shared by the GoogleTest suites: locations, temporary folders, running Python.
#include <torch/torch.h>

#include <string>

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

}  // namespace tt_test
