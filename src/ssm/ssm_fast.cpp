// The fast inference steps of the state-space layers (ssm.h, "Paths"). The equations are
// ssm.cpp's, in the same order of operations; the input-independent parts (S4's and S5's
// discretisation, -exp(A_log)) are cached until a parameter changes, the matrix products run as
// GEMV / GEMM into preallocated buffers, the exponentials run vectorised in place (ATen), the
// rest is one pass over the state per step, in place when nobody else holds the state.
#include <cmath>
#include <cstring>

#include "ssm/fast_state.h"
#include "tracetorch/ssm/ssm.h"

namespace tt::ssm {

namespace {

using detail::exclusively_held;
using detail::linear_into;
using detail::reuse_or_allocate;

// softplus with PyTorch's defaults (beta 1, threshold 20), in place.
template <typename T>
void softplus_in_place(T* v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) v[i] = v[i] > T(20) ? v[i] : std::log1p(std::exp(v[i]));
}

}  // namespace

void SSMLayer::begin_ssm_reset() {
  begin_reset();
  fast_ = std::make_shared<FastState>();
}

bool SSMLayer::fast_step_applies(const torch::Tensor& x, const torch::Tensor& parameter) const {
  if (!use_fast_path(x) || x.numel() == 0 || !x.is_contiguous() || resolve_dim(x.dim()) != x.dim() - 1) return false;
  const auto type = x.scalar_type();
  if ((type != torch::kFloat32 && type != torch::kFloat64) || parameter.scalar_type() != type) return false;
  for (size_t i = 0; i < state_names().size(); ++i)
    if (state_at(i).scalar_type() != type || !state_at(i).is_contiguous()) return false;
  return true;
}

torch::Tensor& SSMLayer::writable_state(size_t index, torch::Tensor& spare) {
  torch::Tensor& s = state_at(index);
  if (exclusively_held(s)) return s;
  return reuse_or_allocate(spare, s.sizes(), s.options());
}

void SSMLayer::commit_state(size_t index, torch::Tensor& written) {
  torch::Tensor& s = state_at(index);
  if (!written.is_same(s)) std::swap(s, written);
}

void SSMLayer::selective_fast(const torch::Tensor& state, torch::Tensor& new_state, const torch::Tensor& u,
                              const torch::Tensor& p, const torch::Tensor& dt, int64_t dt_rank, torch::Tensor& y,
                              const torch::Tensor& D) {
  const int64_t R = u.size(0), N = u.size(1), d = d_state_, P = p.size(1);
  torch::Tensor& abar = reuse_or_allocate(fast_->abar, {R, N, d}, u.options());
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "selective fast step", [&] {
    const scalar_t* A = fast_->A.data_ptr<scalar_t>();
    const scalar_t* dtp = dt.data_ptr<scalar_t>();
    scalar_t* ab = abar.data_ptr<scalar_t>();
    for (int64_t r = 0; r < R; ++r)
      for (int64_t n = 0; n < N; ++n) {
        const int64_t i = r * N + n;
        for (int64_t k = 0; k < d; ++k) ab[i * d + k] = dtp[i] * A[n * d + k];
      }
  });
  abar.exp_();
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "selective fast step", [&] {
    const scalar_t* A_eps = fast_->A_eps.data_ptr<scalar_t>();
    const scalar_t* ab = abar.data_ptr<scalar_t>();
    const scalar_t* up = u.data_ptr<scalar_t>();
    const scalar_t* pp = p.data_ptr<scalar_t>();
    const scalar_t* Dp = D.data_ptr<scalar_t>();
    const scalar_t* s = state.data_ptr<scalar_t>();
    scalar_t* sn = new_state.data_ptr<scalar_t>();
    scalar_t* yp = y.data_ptr<scalar_t>();
    for (int64_t r = 0; r < R; ++r) {
      const scalar_t* B = pp + r * P + dt_rank;
      const scalar_t* C = B + d;
      for (int64_t n = 0; n < N; ++n) {
        const int64_t i = r * N + n;
        const scalar_t un = up[i];
        scalar_t acc = 0;
        for (int64_t k = 0; k < d; ++k) {
          const scalar_t b_bar = (ab[i * d + k] - scalar_t(1)) / A_eps[n * d + k] * B[k];
          const scalar_t v = s[i * d + k] * ab[i * d + k] + b_bar * un;
          sn[i * d + k] = v;
          acc += v * C[k];
        }
        yp[i] = acc + un * Dp[n];
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// S4: state <- state*Abar + Bbar*x with Abar, Bbar cached.

torch::Tensor S4Impl::fast_step(const torch::Tensor& x_in) {
  const int64_t N = num_neurons(), d = d_state_, R = x_in.numel() / N;
  if (fast_->stamp.changed({&A_log, &B, &log_dt})) {
    const torch::Tensor dt = torch::exp(log_dt).unsqueeze(-1);
    const torch::Tensor A = torch::neg(torch::exp(A_log));
    fast_->abar_const = torch::exp(dt.mul(A));
    fast_->bbar_const = fast_->abar_const.sub(1).div(A).mul(B);
  }
  const torch::Tensor& state = state_at(state_);
  torch::Tensor& new_state = writable_state(state_, fast_->spare_state);
  torch::Tensor& y = fast_->outputs.next(x_in.sizes(), x_in.options());
  AT_DISPATCH_FLOATING_TYPES(x_in.scalar_type(), "S4 fast step", [&] {
    const scalar_t* ab = fast_->abar_const.data_ptr<scalar_t>();
    const scalar_t* bb = fast_->bbar_const.data_ptr<scalar_t>();
    const scalar_t* Cp = C.data_ptr<scalar_t>();
    const scalar_t* Dp = D.data_ptr<scalar_t>();
    const scalar_t* xp = x_in.data_ptr<scalar_t>();
    const scalar_t* s = state.data_ptr<scalar_t>();
    scalar_t* sn = new_state.data_ptr<scalar_t>();
    scalar_t* yp = y.data_ptr<scalar_t>();
    for (int64_t r = 0; r < R; ++r)
      for (int64_t n = 0; n < N; ++n) {
        const int64_t i = r * N + n;
        const scalar_t xn = xp[i];
        scalar_t acc = 0;
        for (int64_t k = 0; k < d; ++k) {
          const scalar_t v = s[i * d + k] * ab[n * d + k] + bb[n * d + k] * xn;
          sn[i * d + k] = v;
          acc += v * Cp[n * d + k];
        }
        yp[i] = acc + xn * Dp[n];
      }
  });
  commit_state(state_, new_state);
  return y;
}

// ---------------------------------------------------------------------------------------------
// S5: g <- g*Abar + Bbar*(x @ B); y = g @ C + x*D.

torch::Tensor S5Impl::fast_step(const torch::Tensor& x_in) {
  const int64_t N = num_neurons(), d = d_state_, R = x_in.numel() / N;
  if (fast_->stamp.changed({&A_log, &log_dt})) {
    const torch::Tensor dt = torch::exp(log_dt);
    const torch::Tensor A = torch::neg(torch::exp(A_log));
    fast_->abar_const = torch::exp(dt.mul(A));
    fast_->bbar_const = fast_->abar_const.sub(1).div(A);
  }
  const torch::Tensor x = x_in.view({R, N});
  torch::Tensor& xb = reuse_or_allocate(fast_->p, {R, d}, x_in.options());
  linear_into(xb, x, B.t());
  const torch::Tensor& g = state_at(global_state_);
  torch::Tensor& g_new = writable_state(global_state_, fast_->spare_state);
  AT_DISPATCH_FLOATING_TYPES(x_in.scalar_type(), "S5 fast step", [&] {
    const scalar_t* ab = fast_->abar_const.data_ptr<scalar_t>();
    const scalar_t* bb = fast_->bbar_const.data_ptr<scalar_t>();
    const scalar_t* xbp = xb.data_ptr<scalar_t>();
    const scalar_t* gp = g.data_ptr<scalar_t>();
    scalar_t* gn = g_new.data_ptr<scalar_t>();
    for (int64_t r = 0; r < R; ++r)
      for (int64_t k = 0; k < d; ++k) gn[r * d + k] = gp[r * d + k] * ab[k] + bb[k] * xbp[r * d + k];
  });
  commit_state(global_state_, g_new);
  torch::Tensor& y = fast_->outputs.next(x_in.sizes(), x_in.options());
  torch::Tensor y2 = y.view({R, N});
  linear_into(y2, state_at(global_state_).view({R, d}), C.t());
  AT_DISPATCH_FLOATING_TYPES(x_in.scalar_type(), "S5 fast step", [&] {
    const scalar_t* Dp = D.data_ptr<scalar_t>();
    const scalar_t* xp = x_in.data_ptr<scalar_t>();
    scalar_t* yp = y.data_ptr<scalar_t>();
    for (int64_t r = 0; r < R; ++r)
      for (int64_t n = 0; n < N; ++n) yp[r * N + n] = yp[r * N + n] + xp[r * N + n] * Dp[n];
  });
  return y;
}

// ---------------------------------------------------------------------------------------------
// S6 and Mamba: -exp(A_log) cached; dt, B, C from the input.

void SSMLayer::refresh_selective_constants(const torch::Tensor& A_log) {
  if (!fast_->stamp.changed({&A_log})) return;
  fast_->A = torch::neg(torch::exp(A_log));
  fast_->A_eps = fast_->A.add(1e-12);
}

torch::Tensor S6Impl::fast_step(const torch::Tensor& x_in) {
  const int64_t N = num_neurons(), d = d_state_, R = x_in.numel() / N, P = dt_rank_ + 2 * d;
  refresh_selective_constants(A_log);
  const auto options = x_in.options();
  const torch::Tensor x = x_in.view({R, N});
  torch::Tensor& p = reuse_or_allocate(fast_->p, {R, P}, options);
  linear_into(p, x, x_proj->weight);
  torch::Tensor& dt = reuse_or_allocate(fast_->dt, {R, N}, options);
  linear_into(dt, p.narrow(1, 0, dt_rank_), dt_proj->weight, dt_proj->bias);
  AT_DISPATCH_FLOATING_TYPES(x_in.scalar_type(), "S6 softplus", [&] { softplus_in_place(dt.data_ptr<scalar_t>(), R * N); });
  const torch::Tensor& state = state_at(state_);
  torch::Tensor& new_state = writable_state(state_, fast_->spare_state);
  torch::Tensor& y = fast_->outputs.next(x_in.sizes(), options);
  torch::Tensor y2 = y.view({R, N});
  selective_fast(state, new_state, x, p, dt, dt_rank_, y2, D);
  commit_state(state_, new_state);
  return y;
}

torch::Tensor MambaImpl::fast_step(const torch::Tensor& x_in) {
  const int64_t N = num_neurons(), d = d_state_, R = x_in.numel() / N, P = dt_rank_ + 2 * d;
  const int64_t K = options_.conv_kernel();
  refresh_selective_constants(A_log);
  const auto options = x_in.options();
  const torch::Tensor x = x_in.view({R, N});
  torch::Tensor& main_gate = reuse_or_allocate(fast_->main_gate, {R, 2 * N}, options);
  linear_into(main_gate, x, in_proj->weight);
  torch::Tensor& u = reuse_or_allocate(fast_->u, {R, N}, options);
  AT_DISPATCH_FLOATING_TYPES(x_in.scalar_type(), "Mamba conv", [&] {
    const scalar_t* mg = main_gate.data_ptr<scalar_t>();
    scalar_t* up = u.data_ptr<scalar_t>();
    if (!has_conv()) {
      for (int64_t r = 0; r < R; ++r) std::memcpy(up + r * N, mg + r * 2 * N, sizeof(scalar_t) * N);
      return;
    }
    // Shift the window left, newest input last; then the depthwise dot product with the kernel.
    const torch::Tensor& buffer = state_at(conv_buffer_);
    torch::Tensor& new_buffer = writable_state(conv_buffer_, fast_->spare_conv);
    const scalar_t* src = buffer.data_ptr<scalar_t>();
    scalar_t* dst = new_buffer.data_ptr<scalar_t>();
    const scalar_t* w = conv_weights.data_ptr<scalar_t>();
    const scalar_t* bias = conv_bias.data_ptr<scalar_t>();
    for (int64_t r = 0; r < R; ++r)
      for (int64_t n = 0; n < N; ++n) {
        const int64_t i = r * N + n;
        std::memmove(dst + i * K, src + i * K + 1, sizeof(scalar_t) * (K - 1));
        dst[i * K + K - 1] = mg[r * 2 * N + n];
        scalar_t acc = 0;
        for (int64_t k = 0; k < K; ++k) acc += dst[i * K + k] * w[n * K + k];
        up[i] = acc + bias[n];
      }
    commit_state(conv_buffer_, new_buffer);
  });
  at::silu_(u);
  torch::Tensor& p = reuse_or_allocate(fast_->p, {R, P}, options);
  linear_into(p, u, ssm_proj->weight);
  torch::Tensor& dt = reuse_or_allocate(fast_->dt, {R, N}, options);
  linear_into(dt, p.narrow(1, 0, dt_rank_), dt_proj->weight, dt_proj->bias);
  AT_DISPATCH_FLOATING_TYPES(x_in.scalar_type(), "Mamba softplus", [&] { softplus_in_place(dt.data_ptr<scalar_t>(), R * N); });
  const torch::Tensor& state = state_at(ssm_state_);
  torch::Tensor& new_state = writable_state(ssm_state_, fast_->spare_state);
  torch::Tensor& y = reuse_or_allocate(fast_->y, {R, N}, options);
  selective_fast(state, new_state, u, p, dt, dt_rank_, y, D);
  commit_state(ssm_state_, new_state);
  // y * silu(gate), then out_proj, plus the input.
  AT_DISPATCH_FLOATING_TYPES(x_in.scalar_type(), "Mamba gate", [&] {
    const scalar_t* mg = main_gate.data_ptr<scalar_t>();
    scalar_t* yp = y.data_ptr<scalar_t>();
    for (int64_t r = 0; r < R; ++r)
      for (int64_t n = 0; n < N; ++n) {
        const scalar_t g = mg[r * 2 * N + N + n];
        yp[r * N + n] = yp[r * N + n] * (g / (scalar_t(1) + std::exp(-g)));
      }
  });
  torch::Tensor& out = fast_->outputs.next(x_in.sizes(), options);
  torch::Tensor out2 = out.view({R, N});
  linear_into(out2, y, out_proj->weight);
  AT_DISPATCH_FLOATING_TYPES(x_in.scalar_type(), "Mamba residual", [&] {
    const scalar_t* xp = x_in.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    for (int64_t i = 0; i < R * N; ++i) op[i] = op[i] + xp[i];
  });
  return out;
}

}  // namespace tt::ssm
