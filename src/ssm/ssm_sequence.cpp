// Whole-sequence forwards of the SSM layers (ssm.h): every projection and every input-dependent
// discretisation runs once over all T steps, then the linear recurrence s_t = a_t*s_{t-1} + b_t
// runs either as T recurrence steps or as a log-depth scan. The equations are ssm/equations.h's,
// shared with the step forwards; autograd records everything.
#include <algorithm>

#include "core/text.h"
#include "ssm/equations.h"
#include "tracetorch/core/error.h"
#include "tracetorch/ssm/ssm.h"

namespace tt::ssm {

namespace {

// Below this many state elements per step (batch x features x d_state) the scan is taken: there
// the loop's cost is per-operation overhead. A first estimate, not yet measured (docs/rnn_ssm.md).
constexpr int64_t kScanBelowElements = 4096;

// Hillis-Steele inclusive scan of (a, b) pairs under (a1, b1) then (a2, b2) = (a1*a2, a2*b1 + b2):
// log2(T) passes over [T, ...] tensors instead of T small steps.
torch::Tensor scan(const torch::Tensor& a_in, bool per_step, const torch::Tensor& b_in, const torch::Tensor& s0) {
  const int64_t T = b_in.size(0);
  torch::Tensor b = b_in;
  // a over the steps: the per-step values, or for a constant a its powers a^offset (all a window
  // of `offset` steps multiplies by).
  torch::Tensor a = per_step ? a_in.expand_as(b_in) : a_in;
  for (int64_t offset = 1; offset < T; offset *= 2) {
    const torch::Tensor a_late = per_step ? a.slice(0, offset) : a;
    const torch::Tensor combined = b.slice(0, offset).add(a_late.mul(b.slice(0, 0, T - offset)));
    b = torch::cat({b.slice(0, 0, offset), combined});
    a = per_step ? torch::cat({a.slice(0, 0, offset), a_late.mul(a.slice(0, 0, T - offset))}) : a.mul(a);
  }
  // s_t = (a_0 ... a_t) * s0 + b_t.
  const torch::Tensor prefix = per_step ? a : torch::cumprod(a_in.expand_as(b_in), 0);
  return b.add(prefix.mul(s0));
}

torch::Tensor loop(const torch::Tensor& a, bool per_step, const torch::Tensor& b, const torch::Tensor& s0) {
  std::vector<torch::Tensor> states;
  states.reserve(static_cast<size_t>(b.size(0)));
  torch::Tensor s = s0;
  for (int64_t t = 0; t < b.size(0); ++t) {
    s = recurrence_step(s, per_step ? a[t] : a, b[t]);
    states.push_back(s);
  }
  return torch::stack(states);
}

// x [T, ...] with the step's feature axis last, and back.
torch::Tensor features_last(const torch::Tensor& x, int64_t step_axis) {
  return step_axis == x.dim() - 2 ? x : x.movedim(step_axis + 1, -1);
}
torch::Tensor features_back(const torch::Tensor& y, int64_t step_axis) {
  return step_axis == y.dim() - 2 ? y : y.movedim(-1, step_axis + 1);
}

}  // namespace

torch::Tensor linear_recurrence(const torch::Tensor& a, bool per_step, const torch::Tensor& b, const torch::Tensor& s0) {
  const int64_t per_step_elements = b.numel() / std::max<int64_t>(1, b.size(0));
  if (b.size(0) > 2 && per_step_elements < kScanBelowElements) return scan(a, per_step, b, s0);
  return loop(a, per_step, b, s0);
}

void SSMLayer::begin_sequence(const torch::Tensor& x) {
  if (!x.defined() || x.dim() < 2 || x.size(0) == 0)
    throw ValueError(describe() + ": forward_sequence takes a time-major input [T, ...] with T >= 1 and a step of "
                     "rank >= 1, got " + (x.defined() ? detail::shape_string(x.sizes()) : std::string("undefined")));
  ensure_states(x[0]);
}

torch::Tensor S4Impl::forward_sequence(const torch::Tensor& xs) {
  begin_sequence(xs);
  const FeatureAxis axis = feature_axis(xs[0]);
  const torch::Tensor x = features_last(xs, axis.axis);
  const Discretised ab = s4_discretise(A_log, B, log_dt);
  const torch::Tensor states =
      linear_recurrence(ab.A_bar, false, ab.B_bar.mul(x.unsqueeze(-1)), working_state(axis, state_at(state_)));
  state_at(state_) = stored_state(axis, states[-1].clone());
  return features_back(diagonal_readout(states, C, x, D), axis.axis);
}

torch::Tensor S5Impl::forward_sequence(const torch::Tensor& xs) {
  begin_sequence(xs);
  const FeatureAxis axis = feature_axis(xs[0]);
  const torch::Tensor x = features_last(xs, axis.axis);
  const Discretised ab = s5_discretise(A_log, log_dt);
  const torch::Tensor states =
      linear_recurrence(ab.A_bar, false, ab.B_bar.mul(torch::matmul(x, B)), axis.in(state_at(global_state_)));
  state_at(global_state_) = axis.out(states[-1].clone());
  return features_back(torch::matmul(states, C).add(x.mul(D)), axis.axis);
}

torch::Tensor S6Impl::forward_sequence(const torch::Tensor& xs) {
  begin_sequence(xs);
  const FeatureAxis axis = feature_axis(xs[0]);
  const torch::Tensor x = features_last(xs, axis.axis);
  const Selective sel = selective_inputs(x, torch::linear(x, x_proj->weight), dt_rank_, d_state_, dt_proj, A_log);
  const torch::Tensor states = linear_recurrence(sel.A_bar, true, sel.Bx, working_state(axis, state_at(state_)));
  state_at(state_) = stored_state(axis, states[-1].clone());
  return features_back(diagonal_readout(states, sel.C, x, D), axis.axis);
}

torch::Tensor MambaImpl::forward_sequence(const torch::Tensor& xs) {
  begin_sequence(xs);
  const FeatureAxis axis = feature_axis(xs[0]);
  const int64_t T = xs.size(0);
  const torch::Tensor x = features_last(xs, axis.axis);
  const std::vector<torch::Tensor> main_gate = torch::linear(x, in_proj->weight).chunk(2, -1);
  torch::Tensor u = main_gate[0];  // [T, ..., N]
  if (has_conv()) {
    // The buffer's K inputs, then the T new ones, along a last time axis: the window after step
    // t is entries t+1 .. t+K, and the last K entries are the final buffer.
    const int64_t K = options_.conv_kernel();
    const torch::Tensor history =
        torch::cat({working_state(axis, state_at(conv_buffer_)), u.movedim(0, -1)}, -1);  // [..., N, K + T]
    const torch::Tensor windows = history.unfold(-1, K, 1).slice(-2, 1);                  // [..., N, T, K]
    u = conv_readout(windows, conv_weights.unsqueeze(-2), conv_bias.unsqueeze(-1)).movedim(-1, 0);
    state_at(conv_buffer_) = stored_state(axis, history.slice(-1, T).clone());
  }
  u = torch::silu(u);
  const Selective sel = selective_inputs(u, torch::linear(u, ssm_proj->weight), dt_rank_, d_state_, dt_proj, A_log);
  const torch::Tensor states = linear_recurrence(sel.A_bar, true, sel.Bx, working_state(axis, state_at(ssm_state_)));
  state_at(ssm_state_) = stored_state(axis, states[-1].clone());
  const torch::Tensor y = diagonal_readout(states, sel.C, u, D);
  return features_back(torch::linear(y.mul(torch::silu(main_gate[1])), out_proj->weight).add(x), axis.axis);
}

}  // namespace tt::ssm
