#include "tracetorch/rc/readout.h"

#include <cmath>
#include <sstream>

#include "core/text.h"
#include "tracetorch/core/error.h"
#include "tracetorch/rc/init.h"

namespace tt::rc {

namespace {

using detail::shape_string;

// A + alpha on the first `regularised` diagonal entries (a copy).
torch::Tensor regularise(const torch::Tensor& A, double alpha, int64_t regularised) {
  torch::Tensor M = A.clone();
  if (alpha != 0.0 && regularised > 0) M.diagonal().slice(0, 0, regularised).add_(alpha);
  return M;
}

double relative_residual(const torch::Tensor& M, const torch::Tensor& w, const torch::Tensor& B) {
  torch::Tensor r = torch::linalg_vector_norm(torch::mm(M, w) - B, 2, {0});
  torch::Tensor b = torch::linalg_vector_norm(B, 2, {0}).clamp_min(1e-300);
  return (r / b).max().item<double>();
}

void check_system(const torch::Tensor& A, const torch::Tensor& B, double alpha, int64_t regularised) {
  if (A.dim() != 2 || A.size(0) != A.size(1) || B.dim() != 2 || B.size(0) != A.size(0))
    throw ValueError("ridge: expected A [n, n] and B [n, m], got " + shape_string(A.sizes()) + " and " +
                     shape_string(B.sizes()));
  if (!(alpha >= 0.0)) throw ValueError("ridge: alpha must be non-negative, got " + std::to_string(alpha));
  if (regularised < 0 || regularised > A.size(0))
    throw ValueError("ridge: regularised count " + std::to_string(regularised) + " out of range");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// solvers

torch::Tensor solve_ridge_cholesky(const torch::Tensor& A, const torch::Tensor& B, double alpha, int64_t regularised) {
  check_system(A, B, alpha, regularised);
  torch::NoGradGuard no_grad;
  torch::Tensor M = regularise(A.to(torch::kFloat64), alpha, regularised);
  torch::Tensor rhs = B.to(torch::kFloat64);
  auto [L, info] = torch::linalg_cholesky_ex(M);
  if (info.item<int64_t>() == 0) return torch::cholesky_solve(rhs, L);
  // Only semi-definite (alpha = 0 with collinear features): the minimum-norm least-squares answer.
  return std::get<0>(torch::linalg_lstsq(M, rhs, c10::nullopt, std::string("gelsd")));
}

torch::Tensor solve_ridge_cg(const torch::Tensor& A, const torch::Tensor& B, double alpha, int64_t regularised,
                             int64_t max_iter, double tol, SolveInfo* info) {
  check_system(A, B, alpha, regularised);
  torch::NoGradGuard no_grad;
  torch::Tensor M = regularise(A.to(torch::kFloat64), alpha, regularised);
  torch::Tensor rhs = B.to(torch::kFloat64);
  // Jacobi preconditioner: the diagonal of M (feature scales differ a lot: the bias row is n).
  torch::Tensor diag = M.diagonal().clone();
  torch::Tensor dinv = torch::where(diag > 0, 1.0 / diag, torch::ones_like(diag)).unsqueeze(1);

  torch::Tensor X = torch::zeros_like(rhs);
  torch::Tensor R = rhs.clone();
  torch::Tensor Z = dinv * R;
  torch::Tensor P = Z.clone();
  torch::Tensor rz = (R * Z).sum(0);
  const torch::Tensor target = torch::linalg_vector_norm(rhs, 2, {0}) * tol;
  int64_t it = 0;
  bool converged = false;
  for (; it <= max_iter; ++it) {
    if ((torch::linalg_vector_norm(R, 2, {0}) <= target).all().item<bool>()) {
      converged = true;
      break;
    }
    if (it == max_iter) break;
    torch::Tensor AP = torch::mm(M, P);
    torch::Tensor pap = (P * AP).sum(0);
    torch::Tensor step = torch::where(pap > 0, rz / pap, torch::zeros_like(pap));
    X.add_(P * step);
    R.sub_(AP * step);
    Z = dinv * R;
    torch::Tensor rz_new = (R * Z).sum(0);
    torch::Tensor beta = torch::where(rz > 0, rz_new / rz, torch::zeros_like(rz));
    P = Z + P * beta;
    rz = rz_new;
  }
  if (info) {
    info->solver = Solver::CG;
    info->iterations = it;
    info->converged = converged;
    info->residual = relative_residual(M, X, rhs);
  }
  return X;
}

// ---------------------------------------------------------------------------------------------
// layer

ReadoutImpl::ReadoutImpl(ReadoutOptions options) : torch::nn::Module("rc.Readout"), options_(std::move(options)) {
  if (options_.in_features() < 0 || options_.out_features() <= 0)
    throw ValueError("rc.Readout: in_features must be >= 0 and out_features > 0, got " +
                     std::to_string(options_.in_features()) + " and " + std::to_string(options_.out_features()));
  if (!(options_.alpha() >= 0.0))
    throw ValueError("rc.Readout: Alpha must be non-negative, got " + std::to_string(options_.alpha()));
  reset();
}

void ReadoutImpl::reset() {
  const int64_t in = options_.in_features(), out = options_.out_features();
  torch::Generator gen = make_generator(options_.seed());
  // nn.Linear's default: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias.
  const double bound = in > 0 ? 1.0 / std::sqrt(static_cast<double>(in)) : 0.0;
  torch::Tensor w = make_input({out, in}, InputInit::uniform(bound), gen, options_.dtype());
  torch::Tensor b;
  if (options_.bias()) b = make_input({out}, InputInit::uniform(bound), gen, options_.dtype());
  if (!weight.defined()) {
    weight = register_parameter("weight", w, options_.trainable());
    if (b.defined()) bias = register_parameter("bias", b, options_.trainable());
  } else {
    torch::NoGradGuard no_grad;
    weight.copy_(w);
    if (b.defined()) bias.copy_(b);
  }
  fitted_ = false;
  reset_fit();
}

torch::Tensor ReadoutImpl::forward(const torch::Tensor& x) {
  if (!x.defined() || x.dim() < 1 || x.size(-1) != options_.in_features())
    throw ValueError("rc.Readout: expected input [..., " + std::to_string(options_.in_features()) + "], got " +
                     (x.defined() ? shape_string(x.sizes()) : std::string("undefined")));
  return torch::nn::functional::linear(x.to(weight.scalar_type()), weight, bias.defined() ? bias : torch::Tensor());
}

void ReadoutImpl::reset_fit() {
  xtx_ = torch::Tensor();
  xty_ = torch::Tensor();
  samples_ = 0;
}

void ReadoutImpl::accumulate(const torch::Tensor& x, const torch::Tensor& y) {
  const int64_t in = options_.in_features(), out = options_.out_features();
  if (!x.defined() || !y.defined() || x.dim() < 1 || y.dim() < 1)
    throw ValueError("rc.Readout: accumulate needs defined inputs and targets");
  if (x.size(-1) != in)
    throw ValueError("rc.Readout: inputs have " + std::to_string(x.size(-1)) + " features, expected " +
                     std::to_string(in));
  if (y.size(-1) != out)
    throw ValueError("rc.Readout: Target output dimension (" + std::to_string(y.size(-1)) +
                     ") must match out_features (" + std::to_string(out) + ")");
  torch::NoGradGuard no_grad;
  const auto opts = torch::TensorOptions().dtype(torch::kFloat64).device(weight.device());
  torch::Tensor X = x.detach().reshape({-1, in}).to(opts);
  torch::Tensor Y = y.detach().reshape({-1, out}).to(opts);
  if (X.size(0) != Y.size(0))
    throw ValueError("rc.Readout: Number of samples must match: inputs have " + std::to_string(X.size(0)) +
                     ", targets have " + std::to_string(Y.size(0)) + " (shapes " + shape_string(x.sizes()) + " and " +
                     shape_string(y.sizes()) + ")");
  const int64_t n = options_.bias() ? in + 1 : in;
  if (!xtx_.defined()) {
    xtx_ = torch::zeros({n, n}, opts);
    xty_ = torch::zeros({n, out}, opts);
  }
  // Augmented with a constant-1 column, without materialising it.
  torch::Tensor top_left = xtx_.slice(0, 0, in).slice(1, 0, in);
  top_left.addmm_(X.t(), X);
  xty_.slice(0, 0, in).addmm_(X.t(), Y);
  if (options_.bias()) {
    torch::Tensor sx = X.sum(0);
    xtx_.select(0, in).slice(0, 0, in).add_(sx);
    xtx_.select(1, in).slice(0, 0, in).add_(sx);
    xtx_[in][in].add_(static_cast<double>(X.size(0)));
    xty_.select(0, in).add_(Y.sum(0));
  }
  samples_ += X.size(0);
}

SolveInfo ReadoutImpl::solve() {
  if (samples_ == 0) throw ValueError("rc.Readout: nothing to solve, no samples were accumulated");
  const int64_t in = options_.in_features();
  if (!(options_.alpha() >= 0.0))
    throw ValueError("rc.Readout: Alpha must be non-negative, got " + std::to_string(options_.alpha()));
  SolveInfo info;
  torch::Tensor w;
  if (options_.solver() == Solver::CG) {
    w = solve_ridge_cg(xtx_, xty_, options_.alpha(), in, options_.cg_max_iter(), options_.cg_tol(), &info);
  } else {
    w = solve_ridge_cholesky(xtx_, xty_, options_.alpha(), in);
    info.solver = Solver::Cholesky;
    info.residual = relative_residual(regularise(xtx_, options_.alpha(), in), w, xty_);
  }
  info.samples = samples_;
  torch::NoGradGuard no_grad;
  weight.copy_(w.slice(0, 0, in).t());
  if (options_.bias()) bias.copy_(w[in]);
  fitted_ = true;
  info_ = info;
  return info;
}

SolveInfo ReadoutImpl::fit(const torch::Tensor& x, const torch::Tensor& y) {
  reset_fit();
  accumulate(x, y);
  return solve();
}

void ReadoutImpl::pretty_print(std::ostream& stream) const {
  stream << "tt::rc::Readout(in_features=" << options_.in_features() << ", out_features=" << options_.out_features()
         << ", bias=" << (options_.bias() ? "true" : "false") << ", alpha=" << options_.alpha()
         << ", solver=" << (options_.solver() == Solver::CG ? "cg" : "cholesky") << ")";
}

}  // namespace tt::rc
