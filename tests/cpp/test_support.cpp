#include "test_support.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "tracetorch/core/model.h"

#include <c10/core/CPUAllocator.h>
#include <torch/version.h>

#include <atomic>

namespace tt_test {

std::string shared_dir() { return TT_SHARED_DIR; }
std::string binary_dir() { return TT_BINARY_DIR; }
std::string source_dir() { return TT_SOURCE_DIR; }
std::string python() { return TT_PYTHON; }

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "tt_test_XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

int run_command(const std::string& command, std::string* output) {
  std::string full = command + " 2>&1";
  FILE* pipe = popen(full.c_str(), "r");
  if (pipe == nullptr) return -1;
  std::array<char, 4096> buffer{};
  std::string text;
  size_t n = 0;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) text.append(buffer.data(), n);
  int status = pclose(pipe);
  if (output != nullptr) *output = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int run_python(const std::string& code, std::string* output) {
  TempDir dir;
  std::string script = dir.file("snippet.py");
  write_text(script, code);
  return run_command("OMP_NUM_THREADS=1 " + python() + " " + script, output);
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {

// Forwards to the allocator it replaced and counts.
class CountingAllocator : public c10::Allocator {
 public:
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  c10::DataPtr allocate(size_t n) override {
    ++count;
    return inner_->allocate(n);
  }
  void copy_data(void* dest, const void* src, std::size_t n) const override { inner_->copy_data(dest, src, n); }
#else
  c10::DataPtr allocate(size_t n) const override {
    ++count;
    return inner_->allocate(n);
  }
#endif
  c10::DeleterFnPtr raw_deleter() const override { return inner_->raw_deleter(); }
  c10::Allocator* inner_ = nullptr;
  mutable std::atomic<int64_t> count{0};
};

// High enough to win over LibTorch's own registration; restoring uses the same priority.
constexpr uint8_t kCounterPriority = 200;
// One wrapper for the whole process (static storage: storages allocated through it keep the
// inner allocator's deleter, so nothing refers to it once it is uninstalled).
CountingAllocator counting_allocator;
bool counting = false;

}  // namespace

CpuAllocationCounter::CpuAllocationCounter() {
  if (counting) throw std::runtime_error("CpuAllocationCounter: one at a time");
  counting = true;
  counting_allocator.inner_ = c10::GetCPUAllocator();
  counting_allocator.count = 0;
  c10::SetCPUAllocator(&counting_allocator, kCounterPriority);
}

CpuAllocationCounter::~CpuAllocationCounter() {
  c10::SetCPUAllocator(counting_allocator.inner_, kCounterPriority);
  counting = false;
}

int64_t CpuAllocationCounter::count() const { return counting_allocator.count.load(); }
void CpuAllocationCounter::clear() { counting_allocator.count = 0; }

torch::Tensor run_steps(torch::nn::AnyModule& m, const torch::Tensor& inputs, int64_t begin, int64_t end) {
  if (end < 0) end = inputs.size(0);
  std::vector<torch::Tensor> outs;
  for (int64_t t = begin; t < end; ++t) outs.push_back(m.forward(inputs[t]));
  return torch::stack(outs);
}

void gradient_check(torch::nn::AnyModule m, const std::vector<int64_t>& step_shape, int64_t steps) {
  m.ptr()->to(torch::kFloat64);
  std::vector<int64_t> shape = {steps};
  shape.insert(shape.end(), step_shape.begin(), step_shape.end());
  torch::Tensor x = torch::randn(shape, torch::kFloat64).requires_grad_(true);
  torch::Tensor y0;
  {
    torch::NoGradGuard no_grad;
    tt::zero_states(*m.ptr());
    y0 = run_steps(m, x.detach());
  }
  const torch::Tensor weights = torch::randn(y0.sizes(), torch::kFloat64);
  auto loss = [&]() {
    tt::zero_states(*m.ptr());
    return run_steps(m, x).mul(weights).sum();
  };
  std::vector<torch::Tensor> targets;
  std::vector<std::string> names;
  for (const auto& p : m.ptr()->named_parameters()) {
    targets.push_back(p.value());
    names.push_back(p.key());
  }
  targets.push_back(x);
  names.push_back("input");
  for (auto& t : targets) t.mutable_grad() = torch::Tensor();
  loss().backward();
  const double eps = 1e-6;
  for (size_t i = 0; i < targets.size(); ++i) {
    torch::Tensor t = targets[i];
    ASSERT_TRUE(t.grad().defined()) << names[i];
    const torch::Tensor g = t.grad().reshape({-1});
    torch::Tensor flat = t.detach().view({-1});
    for (int64_t k = 0; k < flat.numel(); ++k) {
      torch::NoGradGuard no_grad;
      const double original = flat[k].item<double>();
      flat[k] = original + eps;
      const double plus = loss().item<double>();
      flat[k] = original - eps;
      const double minus = loss().item<double>();
      flat[k] = original;
      const double numeric = (plus - minus) / (2 * eps);
      EXPECT_NEAR(g[k].item<double>(), numeric, 1e-7 + 1e-6 * std::abs(numeric)) << names[i] << "[" << k << "]";
    }
  }
}

}  // namespace tt_test
