// The fast inference steps of the recurrent layers (rnn.h, "Paths").
// The equations are rnn.cpp's, in the same order of operations; only the evaluation differs:
// the matrix products run as GEMV / GEMM into preallocated buffers (the concatenation [H, x] is
// a copy into a reused buffer, not a `cat`), the activations run in place, and the new H goes
// into the buffer of the H before last, which nobody holds any more in a streaming loop.
#include <cstring>

#include "core/fast_buffers.h"
#include "tracetorch/core/error.h"
#include "tracetorch/rnn/rnn.h"

namespace tt::rnn {

namespace {

using detail::exclusively_held;
using detail::linear_into;
using detail::reuse_or_allocate;

// dst[r] = [a[r], b[r]] for R rows (a: na entries per row, b: nb).
template <typename T>
void pack_rows(T* dst, int64_t rows, const T* a, int64_t na, const T* b, int64_t nb) {
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(dst + r * (na + nb), a + r * na, sizeof(T) * na);
    std::memcpy(dst + r * (na + nb) + na, b + r * nb, sizeof(T) * nb);
  }
}

}  // namespace

bool RecurrentLayer::fast_step_applies(const torch::Tensor& x, const torch::Tensor& weight) const {
  if (!use_fast_path(x) || x.numel() == 0 || !x.is_contiguous() || resolve_dim(x.dim()) != x.dim() - 1) return false;
  const auto type = x.scalar_type();
  if ((type != torch::kFloat32 && type != torch::kFloat64) || weight.scalar_type() != type) return false;
  for (size_t i = 0; i < state_names().size(); ++i)
    if (state_at(i).scalar_type() != type || !state_at(i).is_contiguous()) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// fast steps

torch::Tensor SimpleRNNImpl::fast_step(const torch::Tensor& x_in) {
  const int64_t I = options_.in_features(), H = options_.out_features(), R = x_in.numel() / I;
  const auto options = x_in.options();
  torch::Tensor& h = state_at(h_);
  torch::Tensor& hx = reuse_or_allocate(scratch_.hx, {R, H + I}, options);
  torch::Tensor& h_new = reuse_or_allocate(scratch_.spare_h, h.sizes(), options);
  AT_DISPATCH_FLOATING_TYPES(x_in.scalar_type(), "SimpleRNN fast step", [&] {
    pack_rows(hx.data_ptr<scalar_t>(), R, h.data_ptr<scalar_t>(), H, x_in.data_ptr<scalar_t>(), I);
  });
  torch::Tensor out = h_new.view({R, H});
  linear_into(out, hx, lin->weight, lin->bias);
  out.tanh_();
  std::swap(h, scratch_.spare_h);
  return h;
}

torch::Tensor GRUImpl::fast_step(const torch::Tensor& x_in) {
  const int64_t I = options_.in_features(), H = options_.out_features(), R = x_in.numel() / I;
  const auto options = x_in.options();
  torch::Tensor& h = state_at(h_);
  torch::Tensor& hx = reuse_or_allocate(scratch_.hx, {R, H + I}, options);
  torch::Tensor& rhx = reuse_or_allocate(scratch_.rhx, {R, H + I}, options);
  torch::Tensor& gates = reuse_or_allocate(scratch_.gates, {R, 2 * H}, options);
  torch::Tensor& candidate = reuse_or_allocate(scratch_.candidate, {R, H}, options);
  torch::Tensor& h_new = reuse_or_allocate(scratch_.spare_h, h.sizes(), options);
  AT_DISPATCH_FLOATING_TYPES(x_in.scalar_type(), "GRU fast step", [&] {
    const scalar_t* hp = h.data_ptr<scalar_t>();
    const scalar_t* xp = x_in.data_ptr<scalar_t>();
    pack_rows(hx.data_ptr<scalar_t>(), R, hp, H, xp, I);
    linear_into(gates, hx, gate_layers->weight, gate_layers->bias);
    gates.sigmoid_();
    const scalar_t* g = gates.data_ptr<scalar_t>();
    scalar_t* rh = rhx.data_ptr<scalar_t>();
    for (int64_t r = 0; r < R; ++r) {
      for (int64_t j = 0; j < H; ++j) rh[r * (H + I) + j] = hp[r * H + j] * g[r * 2 * H + j];
      std::memcpy(rh + r * (H + I) + H, xp + r * I, sizeof(scalar_t) * I);
    }
    linear_into(candidate, rhx, candidate_layer->weight, candidate_layer->bias);
    candidate.tanh_();
    const scalar_t* c = candidate.data_ptr<scalar_t>();
    scalar_t* out = h_new.data_ptr<scalar_t>();
    for (int64_t r = 0; r < R; ++r)
      for (int64_t j = 0; j < H; ++j) {
        const scalar_t z = g[r * 2 * H + H + j];
        out[r * H + j] = hp[r * H + j] * (scalar_t(1) - z) + z * c[r * H + j];
      }
  });
  std::swap(h, scratch_.spare_h);
  return h;
}

torch::Tensor LSTMImpl::fast_step(const torch::Tensor& x_in) {
  const int64_t I = options_.in_features(), H = options_.out_features(), R = x_in.numel() / I;
  const auto options = x_in.options();
  torch::Tensor& h = state_at(h_);
  torch::Tensor& c = state_at(c_);
  torch::Tensor& hx = reuse_or_allocate(scratch_.hx, {R, H + I}, options);
  torch::Tensor& gates = reuse_or_allocate(scratch_.gates, {R, 4 * H}, options);
  torch::Tensor& h_new = reuse_or_allocate(scratch_.spare_h, h.sizes(), options);
  // C is not returned: after the first step nobody else holds it and it is updated in place.
  const bool c_in_place = exclusively_held(c);
  torch::Tensor& c_new = c_in_place ? c : reuse_or_allocate(scratch_.spare_c, c.sizes(), options);
  AT_DISPATCH_FLOATING_TYPES(x_in.scalar_type(), "LSTM fast step", [&] {
    pack_rows(hx.data_ptr<scalar_t>(), R, h.data_ptr<scalar_t>(), H, x_in.data_ptr<scalar_t>(), I);
    linear_into(gates, hx, gate_layers->weight, gate_layers->bias);
    gates.narrow(1, 0, 3 * H).sigmoid_();  // i, f, o
    gates.narrow(1, 3 * H, H).tanh_();     // g
    const scalar_t* a = gates.data_ptr<scalar_t>();
    const scalar_t* cp = c.data_ptr<scalar_t>();
    scalar_t* cn = c_new.data_ptr<scalar_t>();
    scalar_t* hn = h_new.data_ptr<scalar_t>();
    for (int64_t r = 0; r < R; ++r)
      for (int64_t j = 0; j < H; ++j) {
        const scalar_t* row = a + r * 4 * H;
        cn[r * H + j] = row[H + j] * cp[r * H + j] + row[j] * row[3 * H + j];
        hn[r * H + j] = std::tanh(cn[r * H + j]);
      }
    for (int64_t r = 0; r < R; ++r)
      for (int64_t j = 0; j < H; ++j) hn[r * H + j] = a[r * 4 * H + 2 * H + j] * hn[r * H + j];
  });
  if (!c_in_place) std::swap(c, scratch_.spare_c);
  std::swap(h, scratch_.spare_h);
  return h;
}

}  // namespace tt::rnn
