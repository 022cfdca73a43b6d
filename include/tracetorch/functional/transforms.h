#pragma once
// Parameter transforms and the decay <-> half-life <-> timesteps conversions (spec section 4).
//
// A constrained parameter is stored raw (`raw_beta`) and read through an activation
// (`beta = sigmoid(raw_beta)`); the init / inverse functions map a value back to its raw form.
// Pure functions; the checked inverses throw tt::ValueError naming the first out-of-range value.
#include <torch/torch.h>

#include <string>

namespace tt {

// How a constrained parameter maps between its stored raw tensor and its value.
enum class Transform {
  Identity,   // value = raw                     (rec_weight, scales)
  Decay,      // value = sigmoid(raw), in (0, 1) (alpha, beta, gamma)
  Threshold,  // value = softplus(raw), > 0      (thresholds)
  Bias,       // value = asinh(raw)              (bias)
};

const char* transform_name(Transform transform);

namespace functional {

// Checked inverses: throw tt::ValueError when a value is outside the activation's range.
torch::Tensor sigmoid_inverse(const torch::Tensor& value);   // logit(v), needs 0 < v < 1
torch::Tensor softplus_inverse(const torch::Tensor& value);  // log(expm1(v)), needs v > 0
torch::Tensor mamba_scale(const torch::Tensor& value);       // log(-log(v) / ln 2), needs 0 < v < 1

// raw -> value
torch::Tensor activate(Transform transform, const torch::Tensor& raw);
// value -> raw (used at construction and by decompile); checked as above.
torch::Tensor to_raw(Transform transform, const torch::Tensor& value);

// Plain-number helpers (double in, double out).
double halflife_to_decay(double num_steps);   // exp(-ln 2 / num_steps)
double decay_to_halflife(double decay);       // -ln 2 / ln(decay)
double timesteps_to_decay(double time);       // 1 - 1 / time
double decay_to_timesteps(double decay);      // 1 / (1 - decay)

}  // namespace functional
}  // namespace tt
