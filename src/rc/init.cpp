#include "tracetorch/rc/init.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <set>
#include <sstream>
#include <vector>

#include "tracetorch/core/error.h"

namespace tt::rc {

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

// Uniform [0, 1) numbers drawn from a generator in blocks, consumed in order (scalar draws
// through one-element tensors would be slow for graphs with many edges).
class UniformStream {
 public:
  explicit UniformStream(torch::Generator& generator) : generator_(generator) {}
  double next() {
    if (pos_ >= block_.size()) refill();
    return block_[pos_++];
  }
  // An integer in [0, bound).
  int64_t below(int64_t bound) {
    auto value = static_cast<int64_t>(next() * static_cast<double>(bound));
    return value < bound ? value : bound - 1;
  }

 private:
  void refill() {
    torch::Tensor t = torch::rand({4096}, generator_, kF64);
    block_.assign(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
    pos_ = 0;
  }
  torch::Generator& generator_;
  std::vector<double> block_;
  size_t pos_ = 0;
};

torch::Tensor uniform_pm1(torch::IntArrayRef shape, torch::Generator& generator) {
  return torch::rand(shape, generator, kF64).mul_(2.0).sub_(1.0);
}

torch::Tensor erdos_renyi(int64_t n, double density, torch::Generator& generator) {
  if (!(density > 0.0 && density <= 1.0))
    throw ValueError("erdos_renyi: density must be in (0, 1], got " + std::to_string(density));
  const int64_t total = n * n;
  const auto count = static_cast<int64_t>(std::llround(density * static_cast<double>(total)));
  torch::Tensor w = torch::zeros({total}, kF64);
  if (count > 0) {
    torch::Tensor positions = torch::randperm(total, generator, torch::TensorOptions().dtype(torch::kLong)).slice(0, 0, count);
    w.index_put_({positions}, uniform_pm1({count}, generator));
  }
  return w.view({n, n});
}

// networkx-style Watts-Strogatz: ring lattice, then each lattice edge (i, i+j) is rewired to
// (i, w) with probability p, w uniform among the units that are neither i nor linked to i.
torch::Tensor watts_strogatz(int64_t n, int64_t k, double p, torch::Generator& generator) {
  if (k <= 0 || k % 2 != 0 || k >= n)
    throw ValueError("watts_strogatz: k must be even, positive and smaller than the reservoir size " +
                     std::to_string(n) + ", got " + std::to_string(k));
  if (!(p >= 0.0 && p <= 1.0)) throw ValueError("watts_strogatz: p must be in [0, 1], got " + std::to_string(p));
  std::vector<std::set<int64_t>> adj(static_cast<size_t>(n));
  auto link = [&](int64_t a, int64_t b) {
    adj[a].insert(b);
    adj[b].insert(a);
  };
  auto unlink = [&](int64_t a, int64_t b) {
    adj[a].erase(b);
    adj[b].erase(a);
  };
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 1; j <= k / 2; ++j) link(i, (i + j) % n);
  UniformStream u(generator);
  for (int64_t j = 1; j <= k / 2; ++j) {
    for (int64_t i = 0; i < n; ++i) {
      if (u.next() >= p) continue;
      const int64_t old = (i + j) % n;
      if (!adj[i].count(old)) continue;  // already rewired away by an earlier step
      if (static_cast<int64_t>(adj[i].size()) >= n - 1) continue;
      int64_t w = u.below(n);
      while (w == i || adj[i].count(w)) w = u.below(n);
      unlink(i, old);
      link(i, w);
    }
  }
  torch::Tensor out = torch::zeros({n, n}, kF64);
  auto a = out.accessor<double, 2>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j : adj[i]) a[i][j] = 2.0 * u.next() - 1.0;
  return out;
}

torch::Tensor ring(int64_t n) {
  torch::Tensor out = torch::zeros({n, n}, kF64);
  auto a = out.accessor<double, 2>();
  for (int64_t i = 0; i < n; ++i) a[(i + 1) % n][i] = 1.0;  // unit i feeds unit i+1
  return out;
}

}  // namespace

std::string Topology::to_string() const {
  std::ostringstream out;
  switch (kind) {
    case Kind::Dense: return "dense";
    case Kind::ErdosRenyi: out << "erdos_renyi(density=" << density << ")"; break;
    case Kind::WattsStrogatz: out << "watts_strogatz(k=" << k << ", p=" << p << ")"; break;
    case Kind::Ring: return "ring";
  }
  return out.str();
}

std::string InputInit::to_string() const {
  std::ostringstream out;
  switch (kind) {
    case Kind::Uniform: out << "uniform(" << scale << ")"; break;
    case Kind::Binary: out << "binary(" << scale << ")"; break;
    case Kind::Zero: return "zero";
  }
  return out.str();
}

torch::Generator make_generator(std::optional<uint64_t> seed) {
  if (seed) return at::make_generator<at::CPUGeneratorImpl>(*seed);
  return at::detail::getDefaultCPUGenerator();
}

double spectral_radius(const torch::Tensor& matrix) {
  if (matrix.dim() != 2 || matrix.size(0) != matrix.size(1))
    throw ValueError("spectral_radius: expected a square matrix, got " + std::to_string(matrix.dim()) + " dims");
  if (matrix.numel() == 0) return 0.0;
  torch::NoGradGuard no_grad;
  torch::Tensor m = matrix.detach().to(torch::kCPU, torch::kFloat64);
  if (m.is_sparse() || m.layout() != torch::kStrided) m = m.to_dense();
  return torch::linalg_eigvals(m).abs().max().item<double>();
}

double density(const torch::Tensor& matrix) {
  if (matrix.numel() == 0) return 0.0;
  torch::NoGradGuard no_grad;
  return static_cast<double>(matrix.ne(0).sum().item<int64_t>()) / static_cast<double>(matrix.numel());
}

torch::Tensor make_recurrent(int64_t n, const Topology& topology, std::optional<double> target,
                             torch::Generator& generator, torch::Dtype dtype) {
  if (n <= 0) throw ValueError("reservoir size must be positive, got " + std::to_string(n));
  torch::NoGradGuard no_grad;
  torch::Tensor w;
  switch (topology.kind) {
    case Topology::Kind::Dense: w = uniform_pm1({n, n}, generator); break;
    case Topology::Kind::ErdosRenyi: w = erdos_renyi(n, topology.density, generator); break;
    case Topology::Kind::WattsStrogatz: w = watts_strogatz(n, topology.k, topology.p, generator); break;
    case Topology::Kind::Ring: w = ring(n); break;
  }
  if (target) {
    if (*target < 0.0) throw ValueError("spectral_radius must be non-negative, got " + std::to_string(*target));
    const double radius = spectral_radius(w);
    if (!(radius > 1e-12))
      throw ValueError("cannot scale the recurrent matrix (" + topology.to_string() + ", size " + std::to_string(n) +
                       ") to spectral radius " + std::to_string(*target) +
                       ": its spectral radius is 0 (too sparse; raise the density)");
    w.mul_(*target / radius);
  }
  return w.to(dtype);
}

torch::Tensor make_input(torch::IntArrayRef shape, const InputInit& init, torch::Generator& generator,
                         torch::Dtype dtype) {
  torch::NoGradGuard no_grad;
  torch::Tensor out;
  switch (init.kind) {
    case InputInit::Kind::Uniform: out = uniform_pm1(shape, generator).mul_(init.scale); break;
    case InputInit::Kind::Binary: {
      torch::Tensor coin = torch::rand(shape, generator, kF64);
      out = torch::where(coin < 0.5, torch::full({}, -init.scale, kF64), torch::full({}, init.scale, kF64));
      break;
    }
    case InputInit::Kind::Zero: out = torch::zeros(shape, kF64); break;
  }
  return out.to(dtype);
}

}  // namespace tt::rc
