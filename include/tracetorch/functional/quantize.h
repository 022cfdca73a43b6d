#pragma once
// Quantizers with straight-through gradients (spec 4), as custom autograd functions.
//
// Pure functions of their inputs, except that the stochastic ones draw from torch's default
// generator (seed it with torch::manual_seed for reproducible runs; the generator is shared, so
// concurrent calls from several threads interleave their draws). Throws tt::ValueError for a
// step size that is not a finite number > 0.
#include <torch/torch.h>

#include "tracetorch/functional/tensor_fn.h"

namespace tt::functional {

// round(x / step) * step, round half to even; gradient passes unchanged.
torch::Tensor round_ste(const torch::Tensor& x, double step_size = 1.0);
// (floor(x/step) + (u < frac)) * step with u ~ U[0,1) from the default generator (one
// rand_like per call); gradient passes unchanged. Unbiased: E[q] = x.
torch::Tensor stochastic_round_ste(const torch::Tensor& x, double step_size = 1.0);
// x * bernoulli(x) (x in [0,1]); gradient is grad * 2x.
torch::Tensor probabilistic_ste(const torch::Tensor& x);

// Named versions for layer options and architecture JSON.
TensorFn round_ste_fn(double step_size = 1.0);
TensorFn stochastic_round_ste_fn(double step_size = 1.0);
TensorFn probabilistic_ste_fn();

}  // namespace tt::functional
