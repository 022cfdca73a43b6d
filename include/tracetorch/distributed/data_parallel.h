#pragma once
// tt::distributed::DataParallel: data-parallel training of any module tree over a ProcessGroup.
// Every rank runs the same model on its own share of each global batch; DataParallel keeps the
// replicas equal:
//   - construction broadcasts rank 0's parameters and buffers to every rank;
//   - gradients are averaged over the ranks in buckets (flat tensors of about bucket_bytes): with
//     overlap(true) a hook on each parameter copies its gradient into its bucket during the
//     backward pass and a bucket's all-reduce starts as soon as it is complete, while the backward
//     pass goes on; synchronize_gradients() (call it after backward, before optimizer.step())
//     starts what is left, waits, and writes the rank-averaged gradient into every .grad.
// Hidden states are not touched: they belong to each rank's own data. Buckets are reduced in
// one fixed order on every rank, so ranks whose graphs use different parameters still agree; a
// parameter no rank produced a gradient for keeps its .grad (as in a one-process run).
//
// With equal local batch sizes and a loss that is the mean over the local batch, the averaged
// gradient is the gradient of the mean over the global batch: N steps on W ranks give the weights
// of N steps of one process on the concatenated batches (up to float rounding).
//
//   tt::distributed::DataParallel dp(net.ptr(), group);
//   loss.backward();  dp.synchronize_gradients();  optimizer.step();
//
// Ownership: holds a shared pointer to the module; the hooks are removed when DataParallel dies.
// Throws: tt::DistributedError (a peer failed or timed out), tt::ValueError (with overlap(true),
// a second backward pass before synchronize_gradients(): use overlap(false) to accumulate
// gradients over several backward passes). Thread safety: one training thread per DataParallel.
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "tracetorch/distributed/process_group.h"

namespace tt::distributed {

struct DataParallelOptions {
  // Target size of one all-reduce; smaller buckets start earlier, larger ones cost less latency.
  TORCH_ARG(int64_t, bucket_bytes) = int64_t(4) << 20;
  // Start bucket all-reduces from gradient hooks during backward. Off: synchronize_gradients()
  // reduces .grad as accumulated by any number of backward passes.
  TORCH_ARG(bool, overlap) = true;
};

// Sets every rank's parameters and buffers to root's (in place).
void broadcast_parameters(torch::nn::Module& module, ProcessGroup& group, int64_t root = 0);

class DataParallel {
 public:
  DataParallel(std::shared_ptr<torch::nn::Module> module, ProcessGroup group, DataParallelOptions options = {});
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  // After backward: every parameter's .grad holds the rank-average of the gradients accumulated
  // since it was last zeroed (what a one-process run on the concatenated batches would hold).
  void synchronize_gradients();

  torch::nn::Module& module() { return *module_; }
  ProcessGroup& group() { return group_; }
  int64_t bucket_count() const;

  struct State;

 private:
  std::shared_ptr<torch::nn::Module> module_;
  ProcessGroup group_;
  std::shared_ptr<State> state_;
};

}  // namespace tt::distributed
