#include "tracetorch/rc/datasets.h"

#include <cmath>
#include <vector>

#include "tracetorch/core/error.h"

namespace tt::rc {

torch::Tensor mackey_glass(int64_t samples, const MackeyGlassOptions& o) {
  if (samples < 0) throw ValueError("mackey_glass: samples must be non-negative");
  if (!(o.dt() > 0.0) || !(o.tau() > 0.0) || !(o.sample_every() > 0.0) || o.discard() < 0.0)
    throw ValueError("mackey_glass: dt, tau and sample_every must be positive, discard non-negative");
  const auto delay = static_cast<int64_t>(std::llround(o.tau() / o.dt()));
  const auto every = static_cast<int64_t>(std::llround(o.sample_every() / o.dt()));
  const auto skip = static_cast<int64_t>(std::llround(o.discard() / o.dt()));
  if (std::abs(static_cast<double>(delay) * o.dt() - o.tau()) > 1e-9 * o.tau() ||
      std::abs(static_cast<double>(every) * o.dt() - o.sample_every()) > 1e-9 * o.sample_every())
    throw ValueError("mackey_glass: tau and sample_every must be multiples of dt");

  const double beta = o.beta(), gamma = o.gamma(), power = o.n(), dt = o.dt();
  auto f = [&](double x, double xd) { return beta * xd / (1.0 + std::pow(xd, power)) - gamma * x; };

  // x[i] is the value at time (i - delay) * dt: the first delay + 1 entries are the history.
  const int64_t steps = skip + (samples > 0 ? (samples - 1) * every : 0);
  std::vector<double> x(static_cast<size_t>(delay + 1 + steps), 0.0);
  for (int64_t i = 0; i <= delay; ++i) x[i] = o.x0();
  for (int64_t s = 0; s < steps; ++s) {
    const int64_t now = delay + s;
    const double xn = x[now];
    const double d0 = x[now - delay], d1 = x[now - delay + 1], dh = 0.5 * (d0 + d1);
    const double k1 = f(xn, d0);
    const double k2 = f(xn + 0.5 * dt * k1, dh);
    const double k3 = f(xn + 0.5 * dt * k2, dh);
    const double k4 = f(xn + dt * k3, d1);
    x[now + 1] = xn + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4);
  }
  torch::Tensor out = torch::empty({samples}, torch::kFloat64);
  auto a = out.accessor<double, 1>();
  for (int64_t k = 0; k < samples; ++k) a[k] = x[delay + skip + k * every];
  return out;
}

double nrmse(const torch::Tensor& prediction, const torch::Tensor& target) {
  if (!prediction.sizes().equals(target.sizes()))
    throw ValueError("nrmse: prediction and target shapes differ");
  torch::NoGradGuard no_grad;
  torch::Tensor p = prediction.detach().to(torch::kCPU, torch::kFloat64);
  torch::Tensor t = target.detach().to(torch::kCPU, torch::kFloat64);
  const double rmse = std::sqrt((p - t).pow(2).mean().item<double>());
  const double sd = t.std(/*unbiased=*/false).item<double>();
  return rmse / sd;
}

int64_t valid_prediction_horizon(const torch::Tensor& prediction, const torch::Tensor& target, double threshold,
                                 int64_t time_dim) {
  if (!prediction.sizes().equals(target.sizes()))
    throw ValueError("valid_prediction_horizon: prediction and target shapes differ");
  torch::NoGradGuard no_grad;
  torch::Tensor p = prediction.detach().to(torch::kCPU, torch::kFloat64).movedim(time_dim, 0);
  torch::Tensor t = target.detach().to(torch::kCPU, torch::kFloat64).movedim(time_dim, 0);
  const int64_t steps = t.size(0);
  const double sd = t.std(/*unbiased=*/false).item<double>();
  torch::Tensor err = (p - t).pow(2).reshape({steps, -1}).mean(1).sqrt() / sd;
  torch::Tensor over = (err > threshold).nonzero();
  return over.size(0) > 0 ? over[0][0].item<int64_t>() : steps;
}

}  // namespace tt::rc
