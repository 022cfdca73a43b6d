#pragma once
// Distributed ridge fits for reservoirs: each rank harvests reservoir states for its own share of
// the sequences into its readout's normal equations (rc::Readout::accumulate, or the ESN trainer),
// the equations X^T X and X^T Y (and the sample counts) are summed over the ranks, and the sum is
// solved once, with the readout's own solver, alpha and bias settings. Every rank ends with the
// same readout weights: those of a one-process fit on all sequences (up to float64 rounding of
// the sums' order).
//
// Rank 0 solves and broadcasts the weights. The readout's own accumulated sums stay this rank's
// (is_fitted() / last_solve() describe only local solves); the returned SolveInfo describes the
// group's solve, with samples = all ranks' rows.
// Throws: tt::ValueError (no rank accumulated anything; shapes as rc::Readout), and
// tt::DistributedError (a peer failed or timed out). Every rank must call together.
#include <torch/torch.h>

#include "tracetorch/distributed/process_group.h"
#include "tracetorch/rc/esn.h"
#include "tracetorch/rc/readout.h"

namespace tt::distributed {

// Solves the group's sum of every rank's accumulated equations into readout's weights.
rc::SolveInfo solve_readout(rc::Readout& readout, ProcessGroup& group);

// torch_rc's fit (rc::ESNTrainer::fit) on this rank's sequences, solved over the group: inputs
// [B_r, warmup_steps + T, F], targets [B_r, T, out]. A rank may have no sequences (B_r = 0).
rc::SolveInfo fit_esn(rc::ESNModel& model, const torch::Tensor& inputs, const torch::Tensor& targets,
                      int64_t warmup_steps, ProcessGroup& group);

}  // namespace tt::distributed
