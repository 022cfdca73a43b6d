#include "tracetorch/distributed/sampler.h"

#include <ATen/CPUGeneratorImpl.h>

namespace tt::distributed {

DistributedSampler::DistributedSampler(int64_t dataset_size, int64_t rank, int64_t world_size, SamplerOptions options)
    : dataset_size_(dataset_size), rank_(rank), world_size_(world_size), options_(options) {
  if (dataset_size < 0) throw ValueError("tt::distributed::DistributedSampler: negative dataset size " + std::to_string(dataset_size));
  if (world_size < 1 || rank < 0 || rank >= world_size)
    throw ValueError("tt::distributed::DistributedSampler: rank " + std::to_string(rank) + " is not in [0, " +
                     std::to_string(world_size) + ")");
  // PyTorch's counts: drop_last rounds the per-rank count down, otherwise up.
  if (options_.drop_last() && dataset_size % world_size != 0)
    per_rank_ = (dataset_size - world_size + world_size - 1) / world_size;
  else
    per_rank_ = (dataset_size + world_size - 1) / world_size;
  if (per_rank_ < 0) per_rank_ = 0;
}

std::vector<int64_t> DistributedSampler::indices() const {
  torch::Tensor order;
  if (options_.shuffle()) {
    auto gen = at::detail::createCPUGenerator(options_.seed() + static_cast<uint64_t>(epoch_));
    order = torch::randperm(dataset_size_, gen, torch::kLong);
  } else {
    order = torch::arange(dataset_size_, torch::kLong);
  }
  const int64_t total = per_rank_ * world_size_;
  std::vector<int64_t> all(order.data_ptr<int64_t>(), order.data_ptr<int64_t>() + order.numel());
  // Padding repeats the order from its start (more than once for tiny data sets).
  for (size_t i = 0; static_cast<int64_t>(all.size()) < total && dataset_size_ > 0; ++i) all.push_back(all[i]);
  all.resize(static_cast<size_t>(std::min<int64_t>(total, static_cast<int64_t>(all.size()))));
  std::vector<int64_t> mine;
  mine.reserve(static_cast<size_t>(per_rank_));
  for (int64_t i = rank_; i < static_cast<int64_t>(all.size()); i += world_size_) mine.push_back(all[static_cast<size_t>(i)]);
  return mine;
}

}  // namespace tt::distributed
