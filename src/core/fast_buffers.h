#pragma once
// Reusable tensors and parameter stamps for the fast inference steps (DESIGN.md: no allocation
// per step in steady state, constants cached until the parameters change). Internal header.
//
// The fast steps keep the reference path's rule that a state is rebound, never changed under a
// tensor somebody else holds: they write in place only into tensors that nobody else can see
// (exclusively_held), and otherwise allocate a fresh one.
#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <initializer_list>

namespace tt::detail {

// True when a write into t's memory cannot be observed through any other handle: this is the
// only handle of its TensorImpl, no view shares its storage, autograd does not track it, and it
// is an inference tensor exactly when InferenceMode is on (so the caller can use it as usual).
inline bool exclusively_held(const torch::Tensor& t) {
  return t.defined() && t.use_count() == 1 && t.storage().use_count() == 1 && !t.requires_grad() &&
         t.is_inference() == c10::InferenceMode::is_enabled();
}

// True when t is a contiguous tensor with these sizes, dtype and device.
inline bool fits(const torch::Tensor& t, torch::IntArrayRef sizes, const torch::TensorOptions& options) {
  return t.defined() && t.sizes() == sizes && t.scalar_type() == c10::typeMetaToScalarType(options.dtype()) &&
         t.device() == options.device() && t.is_contiguous();
}

// Makes `slot` an exclusively held contiguous tensor of `sizes` / `options`, reusing its memory
// when it already is one (contents unspecified), and returns it.
inline torch::Tensor& reuse_or_allocate(torch::Tensor& slot, torch::IntArrayRef sizes,
                                        const torch::TensorOptions& options) {
  if (!(exclusively_held(slot) && fits(slot, sizes, options))) slot = torch::empty(sizes, options);
  return slot;
}

// Two slots for a result the caller receives (a step's output): the caller usually drops the
// previous one by the next step but one, so alternating between two buffers needs no allocation;
// a result the caller still holds is never overwritten (a new buffer is taken instead).
struct OutputSlots {
  torch::Tensor a, b;
  torch::Tensor& next(torch::IntArrayRef sizes, const torch::TensorOptions& options) {
    if (exclusively_held(a) && fits(a, sizes, options)) return a;
    if (exclusively_held(b) && fits(b, sizes, options)) return b;
    std::swap(a, b);  // keep the most recent buffer in `b`; the new one replaces the older
    return reuse_or_allocate(a, sizes, options);
  }
};

// Remembers which parameter values a cached constant was computed from: their memory and version
// counters. Optimizer steps, copy_ (load_state_dict), set_data (clone) and to() all change one.
class ParameterStamp {
 public:
  static constexpr size_t kMax = 4;
  // Returns true (and remembers them) when the parameters differ from the last call's.
  bool changed(std::initializer_list<const torch::Tensor*> parameters) {
    TORCH_INTERNAL_ASSERT(parameters.size() <= kMax);
    bool changed = count_ != parameters.size();
    size_t i = 0;
    for (const torch::Tensor* p : parameters) {
      const void* data = p->data_ptr();
      const int64_t version = p->_version();
      if (data != data_[i] || version != version_[i]) changed = true;
      data_[i] = data;
      version_[i] = version;
      ++i;
    }
    count_ = parameters.size();
    return changed;
  }

 private:
  std::array<const void*, kMax> data_{};
  std::array<int64_t, kMax> version_{};
  size_t count_ = 0;
};

// out[R, O] = in[R, K] @ weight[O, K]^T (+ bias[O]) into a preallocated contiguous `out`. One row
// runs as a matrix-vector product: a one-row GEMM re-packs the whole weight matrix on every call
// in OpenBLAS.
inline void linear_into(torch::Tensor& out, const torch::Tensor& in, const torch::Tensor& weight,
                        const torch::Tensor& bias = torch::Tensor()) {
  if (in.size(0) == 1) {
    torch::Tensor row = out.select(0, 0);
    // addmv with beta = 0 rather than mv_out, which allocates a temporary in LibTorch 1.13.
    if (bias.defined())
      at::addmv_out(row, bias, weight, in.select(0, 0));
    else
      at::addmv_out(row, row, weight, in.select(0, 0), /*beta=*/0, /*alpha=*/1);
  } else if (bias.defined()) {
    at::addmm_out(out, bias, in, weight.t());
  } else {
    at::mm_out(out, in, weight.t());
  }
}

}  // namespace tt::detail
