#include "tracetorch/distributed/ridge.h"

namespace tt::distributed {

namespace {

// |(A + alpha I_reg) w - B| / |B|, the largest over outputs (as rc::Readout reports it).
double relative_residual(const torch::Tensor& A, const torch::Tensor& B, const torch::Tensor& w, double alpha,
                         int64_t regularised) {
  torch::Tensor M = A.clone();
  M.diagonal().slice(0, 0, regularised).add_(alpha);
  torch::Tensor r = torch::linalg_vector_norm(torch::mm(M, w) - B, 2, {0});
  torch::Tensor b = torch::linalg_vector_norm(B, 2, {0}).clamp_min(1e-300);
  return (r / b).max().item<double>();
}

}  // namespace

rc::SolveInfo solve_readout(rc::Readout& readout, ProcessGroup& group) {
  auto& r = *readout;
  const auto& o = r.options();
  const int64_t in = o.in_features(), out = o.out_features();
  const int64_t n = o.bias() ? in + 1 : in;
  torch::NoGradGuard no_grad;
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(r.weight.device());
  torch::Tensor A = r.xtx().defined() ? r.xtx().clone() : torch::zeros({n, n}, f64);
  torch::Tensor B = r.xty().defined() ? r.xty().clone() : torch::zeros({n, out}, f64);
  // float64 holds sample counts exactly up to 2^53.
  torch::Tensor samples = torch::full({1}, static_cast<double>(r.accumulated_samples()), f64);
  group.all_reduce(A);
  group.all_reduce(B);
  group.all_reduce(samples);
  rc::SolveInfo info;
  info.solver = o.solver();
  info.samples = static_cast<int64_t>(samples.item<double>());
  if (info.samples == 0)
    throw ValueError("tt::distributed::solve_readout: nothing to solve, no rank accumulated any samples");

  // Rank 0 solves; the others receive its weights, so every replica is bit-identical.
  torch::Tensor summary = torch::zeros({3}, f64);  // iterations, residual, converged
  if (group.is_main()) {
    torch::Tensor w;
    if (o.solver() == rc::Solver::CG) {
      w = rc::solve_ridge_cg(A, B, o.alpha(), in, o.cg_max_iter(), o.cg_tol(), &info);
    } else {
      w = rc::solve_ridge_cholesky(A, B, o.alpha(), in);
      info.residual = relative_residual(A, B, w, o.alpha(), in);
    }
    r.weight.copy_(w.slice(0, 0, in).t());
    if (o.bias()) r.bias.copy_(w[in]);
    summary[0] = static_cast<double>(info.iterations);
    summary[1] = info.residual;
    summary[2] = info.converged ? 1.0 : 0.0;
  }
  std::vector<torch::Tensor> result{r.weight, summary};
  if (o.bias()) result.push_back(r.bias);
  group.broadcast(result, 0);
  info.iterations = static_cast<int64_t>(summary[0].item<double>());
  info.residual = summary[1].item<double>();
  info.converged = summary[2].item<double>() != 0.0;
  info.samples = static_cast<int64_t>(samples.item<double>());
  return info;
}

rc::SolveInfo fit_esn(rc::ESNModel& model, const torch::Tensor& inputs, const torch::Tensor& targets,
                      int64_t warmup_steps, ProcessGroup& group) {
  if (!model->has_readout()) throw ValueError("tt::distributed::fit_esn: the model has no readout to fit");
  rc::ESNTrainer trainer(model);
  trainer.begin();
  if (inputs.defined() && inputs.dim() == 3 && inputs.size(0) == 0) return solve_readout(model->readout, group);
  if (!inputs.defined() || inputs.dim() != 3 || warmup_steps < 0 || warmup_steps >= inputs.size(1))
    throw ValueError("tt::distributed::fit_esn: inputs must be [batch, warmup_steps + T, features] with "
                     "0 <= warmup_steps < total length");
  trainer.warmup(inputs.slice(1, 0, warmup_steps));
  trainer.accumulate(inputs.slice(1, warmup_steps), targets);
  return solve_readout(model->readout, group);
}

}  // namespace tt::distributed
