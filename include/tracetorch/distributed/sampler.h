#pragma once
// tt::distributed::DistributedSampler: which samples of a data set this rank reads in an epoch,
// with PyTorch's torch.utils.data.DistributedSampler rules, so a C++ and a Python job shard the
// same data set the same way:
//   - the epoch's order is randperm(size) from a CPU generator seeded with seed + epoch (the
//     same on every rank), or 0..size-1 without shuffle;
//   - without drop_last the order is padded with its own first indices to a multiple of the
//     world size (every rank gets the same count); with drop_last the tail is dropped instead;
//   - rank r takes positions r, r + W, r + 2W, ... of that order.
// Taking the first k of every rank's indices at a step therefore covers positions [0, k W) of the
// epoch's order: a fixed global batch split over the ranks.
// A plain value type; throws tt::ValueError for a negative size or a rank outside [0, W).
#include <cstdint>
#include <vector>

#include "tracetorch/distributed/process_group.h"

namespace tt::distributed {

struct SamplerOptions {
  TORCH_ARG(bool, shuffle) = true;
  TORCH_ARG(uint64_t, seed) = 0;
  TORCH_ARG(bool, drop_last) = false;
};

class DistributedSampler {
 public:
  DistributedSampler(int64_t dataset_size, int64_t rank, int64_t world_size, SamplerOptions options = {});
  DistributedSampler(int64_t dataset_size, const ProcessGroup& group, SamplerOptions options = {})
      : DistributedSampler(dataset_size, group.rank(), group.world_size(), options) {}

  void set_epoch(int64_t epoch) { epoch_ = epoch; }
  int64_t epoch() const { return epoch_; }
  // This rank's sample indices for the current epoch, in reading order.
  std::vector<int64_t> indices() const;
  // How many indices each rank gets per epoch.
  int64_t size() const { return per_rank_; }

 private:
  int64_t dataset_size_, rank_, world_size_;
  SamplerOptions options_;
  int64_t epoch_ = 0;
  int64_t per_rank_ = 0;
};

}  // namespace tt::distributed
