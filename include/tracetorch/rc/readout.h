#pragma once
// tt::rc::Readout: a linear layer trained by ridge regression (torch_rc's CGReadoutLayer, an
// nn.Linear with parameters `weight` [out, in] and `bias` [out]).
//
// Contract:
// - forward: y = x W^T + b on [batch, in], [batch, time, in] or any [..., in].
// - Training minimises  sum_samples |W x + b - y|^2 + alpha |W|^2  (the bias is not penalised,
//   which is what torch_rc's centring does). The bias is handled by augmentation: each sample
//   x becomes [x, 1], the normal equations are accumulated as
//       A = sum [x,1]^T [x,1]   (in+1 x in+1),   B = sum [x,1]^T y   (in+1 x out)
//   in float64, alpha is added to A's first `in` diagonal entries, and A w = B is solved by
//     Solver::Cholesky  closed form (Cholesky factorisation; LU solve if A is only semi-definite)
//     Solver::CG        Jacobi-preconditioned conjugate gradient on A (all outputs at once),
//                       cheaper than a factorisation for large reservoirs; stops when every
//                       output's residual is below cg_tol relative to |B| or after cg_max_iter.
// - accumulate(x, y) adds a batch to A and B, so training data never has to be in memory at once;
//   solve() writes the weights; fit(x, y) = reset_fit() + accumulate + solve. Accumulating the
//   batches of a data set then solving gives the same weights as one fit on all of it.
// - Weights are frozen (requires_grad = false) unless `trainable`.
#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>

namespace tt::rc {

enum class Solver { Cholesky, CG };

struct ReadoutOptions {
  ReadoutOptions(int64_t in_features, int64_t out_features) : in_features_(in_features), out_features_(out_features) {}

  TORCH_ARG(int64_t, in_features);
  TORCH_ARG(int64_t, out_features);
  TORCH_ARG(bool, bias) = true;
  TORCH_ARG(double, alpha) = 1e-6;  // torch_rc's default ridge strength
  TORCH_ARG(Solver, solver) = Solver::Cholesky;
  TORCH_ARG(int64_t, cg_max_iter) = 1000;
  TORCH_ARG(double, cg_tol) = 1e-10;
  TORCH_ARG(bool, trainable) = false;
  // Seed of the initial (untrained) weights, drawn as nn.Linear does; nullopt = default generator.
  TORCH_ARG(std::optional<uint64_t>, seed) = std::nullopt;
  TORCH_ARG(torch::Dtype, dtype) = torch::kFloat32;
};

// What the last solve did.
struct SolveInfo {
  Solver solver = Solver::Cholesky;
  int64_t samples = 0;      // rows accumulated
  int64_t iterations = 0;   // CG iterations (0 for Cholesky)
  double residual = 0.0;    // max over outputs of |A w - B| / |B|
  bool converged = true;    // CG reached cg_tol (always true for Cholesky)
};

class ReadoutImpl : public torch::nn::Module {
 public:
  explicit ReadoutImpl(ReadoutOptions options);
  ReadoutImpl(int64_t in_features, int64_t out_features) : ReadoutImpl(ReadoutOptions(in_features, out_features)) {}

  void reset();
  torch::Tensor forward(const torch::Tensor& x);

  // ---- ridge regression ----
  void reset_fit();
  // x [..., in], y [..., out] with the same leading shape (the rows are the samples).
  void accumulate(const torch::Tensor& x, const torch::Tensor& y);
  SolveInfo solve();
  SolveInfo fit(const torch::Tensor& x, const torch::Tensor& y);
  int64_t accumulated_samples() const { return samples_; }
  bool is_fitted() const { return fitted_; }
  const SolveInfo& last_solve() const { return info_; }
  // The accumulated normal-equation terms (float64), for inspection and tests.
  const torch::Tensor& xtx() const { return xtx_; }
  const torch::Tensor& xty() const { return xty_; }

  const ReadoutOptions& options() const { return options_; }
  ReadoutOptions& options() { return options_; }  // alpha / solver may change between solves

  torch::Tensor weight, bias;

  void pretty_print(std::ostream& stream) const override;

 private:
  ReadoutOptions options_;
  torch::Tensor xtx_, xty_;
  int64_t samples_ = 0;
  bool fitted_ = false;
  SolveInfo info_;
};

TORCH_MODULE(Readout);

// Solves (A + alpha * I_reg) w = B for the augmented system described above: the first
// `regularised` diagonal entries get alpha. Float64 in, float64 out. Exposed for tests / tools.
torch::Tensor solve_ridge_cholesky(const torch::Tensor& A, const torch::Tensor& B, double alpha, int64_t regularised);
torch::Tensor solve_ridge_cg(const torch::Tensor& A, const torch::Tensor& B, double alpha, int64_t regularised,
                             int64_t max_iter, double tol, SolveInfo* info = nullptr);

}  // namespace tt::rc
