#pragma once
// Benchmark series and forecast metrics for reservoir computing.
//
// Mackey-Glass:  dx/dt = beta x(t - tau) / (1 + x(t - tau)^n) - gamma x(t)
// integrated with classic fourth-order Runge-Kutta at step `dt` (default 0.1); the delayed value at
// the half step is the mean of the two neighbouring stored samples (tau must be a multiple of dt).
// The history is x = x0 for t <= 0. The first `discard` time units are dropped (transient), then
// one value every `sample_every` time units is returned (default 1.0, the usual benchmark
// sampling), as float64 [n].
#include <torch/torch.h>

#include <cstdint>

namespace tt::rc {

struct MackeyGlassOptions {
  TORCH_ARG(double, tau) = 17.0;
  TORCH_ARG(double, beta) = 0.2;
  TORCH_ARG(double, gamma) = 0.1;
  TORCH_ARG(double, n) = 10.0;
  TORCH_ARG(double, x0) = 1.2;
  TORCH_ARG(double, dt) = 0.1;
  TORCH_ARG(double, sample_every) = 1.0;
  TORCH_ARG(double, discard) = 500.0;
};

torch::Tensor mackey_glass(int64_t samples, const MackeyGlassOptions& options = {});

// sqrt(mean((prediction - target)^2)) / std(target), over all elements (std over all elements,
// population form). Float64 result.
double nrmse(const torch::Tensor& prediction, const torch::Tensor& target);

// Number of leading steps (axis `time_dim`) whose error stays within `threshold`:
// the first t with sqrt(mean over the other axes of (prediction - target)^2) / std(target) >
// threshold ends the horizon. std over the whole `target` (population). Returns the full length
// when the error never exceeds the threshold.
int64_t valid_prediction_horizon(const torch::Tensor& prediction, const torch::Tensor& target, double threshold = 0.2,
                                 int64_t time_dim = 0);

}  // namespace tt::rc
