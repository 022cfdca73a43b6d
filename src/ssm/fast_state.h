#pragma once
// The fast step's buffers and cached constants of an SSM layer (ssm.h, "Paths"). Internal.
#include <torch/torch.h>

#include "core/fast_buffers.h"
#include "tracetorch/ssm/ssm.h"

namespace tt::ssm {

struct FastState {
  tt::detail::ParameterStamp stamp;      // the parameters the constants below were computed from
  torch::Tensor abar_const, bbar_const;  // S4 [N, d], S5 [d]
  torch::Tensor A, A_eps;                // S6 / Mamba: -exp(A_log) and A + 1e-12, [N, d]
  // Per-step scratch (rows R = batch elements).
  torch::Tensor p, dt, abar, main_gate, u, y, spare_state, spare_conv;
  tt::detail::OutputSlots outputs;       // the step's output (Mamba, S4, S5, S6)
};

}  // namespace tt::ssm
