#pragma once
// The SSM equations of spec section 7, shape-generic so that the step forward (one x_t) and the
// sequence forward (all T steps at once) evaluate them with the same operations in the same
// order. Internal header; definitions in ssm.cpp. The fast steps (ssm_fast.cpp) evaluate the
// same formulas element by element.
#include <torch/torch.h>

namespace tt::ssm {

// Input-independent discretisation: S4 with per-neuron steps ([N, d] each), S5 with one step ([d]).
struct Discretised {
  torch::Tensor A_bar, B_bar;
};
Discretised s4_discretise(const torch::Tensor& A_log, const torch::Tensor& B, const torch::Tensor& log_dt);
Discretised s5_discretise(const torch::Tensor& A_log, const torch::Tensor& log_dt);

// The selective (S6 / Mamba) inputs of the recurrence for u [..., N] and its projection
// p [..., dt_rank + 2d]: A_bar [..., N, d], Bx = B_bar * u [..., N, d], C [..., 1, d].
struct Selective {
  torch::Tensor A_bar, Bx, C;
};
Selective selective_inputs(const torch::Tensor& u, const torch::Tensor& p, int64_t dt_rank, int64_t d_state,
                           const torch::nn::Linear& dt_proj, const torch::Tensor& A_log);

// state * a + b: one step of every SSM recurrence.
torch::Tensor recurrence_step(const torch::Tensor& state, const torch::Tensor& a, const torch::Tensor& b);
// sum_d(state * C) + x * D (S4, S6, Mamba).
torch::Tensor diagonal_readout(const torch::Tensor& state, const torch::Tensor& C, const torch::Tensor& x,
                               const torch::Tensor& D);
// Mamba's depthwise convolution of a window [..., N, K] (newest last): sum_K(window * w) + bias.
torch::Tensor conv_readout(const torch::Tensor& window, const torch::Tensor& weights, const torch::Tensor& bias);

// All states of s_t = a_t * s_{t-1} + b_t for t = 0..T-1 from s0 ([T, ...]; b is [T, ...], a is
// [T, ...] when per_step, else one value for every step broadcasting against s0). Runs the
// sequential loop (recurrence_step, bit-identical to T steps) or a log-depth scan, chosen
// by the state's size by the state's size (ssm_sequence.cpp). Differentiable.
torch::Tensor linear_recurrence(const torch::Tensor& a, bool per_step, const torch::Tensor& b, const torch::Tensor& s0);

}  // namespace tt::ssm
