#include "tracetorch/distributed/data_parallel.h"

#include <map>
#include <mutex>
#include <tuple>

namespace tt::distributed {

void broadcast_parameters(torch::nn::Module& module, ProcessGroup& group, int64_t root) {
  if (group.world_size() == 1) return;
  std::vector<torch::Tensor> tensors;
  for (auto& p : module.parameters()) tensors.push_back(p);
  for (auto& b : module.buffers())
    if (b.defined()) tensors.push_back(b);
  torch::NoGradGuard no_grad;
  group.broadcast(tensors, root);
}

// A bucket is one flat tensor: the gradients of its parameters, then one counter per parameter
// (how many ranks produced a gradient for it), all reduced by one all-reduce.
struct Bucket {
  std::vector<size_t> params;    // indices into State::params
  std::vector<int64_t> offsets;  // where each parameter's gradient starts in `flat`
  int64_t grad_numel = 0;
  torch::Tensor flat;
  size_t ready = 0;
  PendingWork work;
};

struct DataParallel::State {
  ProcessGroup group;
  bool overlap = true;
  std::vector<torch::Tensor> params;
  std::vector<std::string> names;
  std::vector<std::pair<size_t, size_t>> slot;  // parameter -> (bucket, position in bucket)
  std::vector<bool> arrived;                    // this round, per parameter
  std::vector<Bucket> buckets;
  size_t next_launch = 0;  // buckets launch in index order on every rank
  std::vector<unsigned> hooks;
  std::mutex mutex;

  torch::Tensor grad_view(Bucket& b, size_t k) {
    const auto& p = params[b.params[k]];
    return b.flat.slice(0, b.offsets[k], b.offsets[k] + p.numel()).view(p.sizes());
  }
  torch::Tensor counter(Bucket& b, size_t k) { return b.flat[b.grad_numel + static_cast<int64_t>(k)]; }

  void launch_ready(bool all) {
    while (next_launch < buckets.size()) {
      Bucket& b = buckets[next_launch];
      if (!all && b.ready < b.params.size()) return;
      b.work = group.all_reduce_async(b.flat);
      ++next_launch;
    }
  }

  // Called from the autograd engine with parameter i's gradient of this backward pass.
  torch::Tensor on_grad(size_t i, const torch::Tensor& grad) {
    std::lock_guard<std::mutex> lock(mutex);
    if (arrived[i])
      throw ValueError("tt::distributed::DataParallel: parameter '" + names[i] +
                       "' received a second gradient before synchronize_gradients(); with overlap(true) call "
                       "it after every backward pass, or use overlap(false) to accumulate gradients");
    arrived[i] = true;
    auto [bi, k] = slot[i];
    Bucket& b = buckets[bi];
    {
      torch::NoGradGuard no_grad;
      grad_view(b, k).copy_(grad);
      counter(b, k).fill_(1);
    }
    ++b.ready;
    launch_ready(false);
    // .grad receives the averaged gradient in synchronize_gradients(); what it accumulates now
    // must leave its earlier value unchanged.
    return torch::zeros_like(grad);
  }
};

DataParallel::DataParallel(std::shared_ptr<torch::nn::Module> module, ProcessGroup group, DataParallelOptions options)
    : module_(std::move(module)), group_(std::move(group)), state_(std::make_shared<State>()) {
  if (!module_) throw ValueError("tt::distributed::DataParallel: null module");
  if (options.bucket_bytes() <= 0)
    throw ValueError("tt::distributed::DataParallel: bucket_bytes must be positive, got " +
                     std::to_string(options.bucket_bytes()));
  broadcast_parameters(*module_, group_);

  State& s = *state_;
  s.group = group_;
  s.overlap = options.overlap();
  for (auto& item : module_->named_parameters()) {
    if (!item.value().requires_grad()) continue;
    s.names.push_back(item.key());
    s.params.push_back(item.value());
  }
  // Reverse registration order approximates the order in which backward produces gradients.
  // Buckets hold one dtype and device each.
  std::map<std::tuple<int, int, int>, size_t> open;  // (dtype, device type, index) -> bucket
  s.slot.resize(s.params.size());
  std::vector<int64_t> bytes;
  for (size_t i = s.params.size(); i-- > 0;) {
    const auto& p = s.params[i];
    const auto key = std::make_tuple(static_cast<int>(p.scalar_type()), static_cast<int>(p.device().type()),
                                     static_cast<int>(p.device().index()));
    auto it = open.find(key);
    if (it == open.end() || bytes[it->second] >= options.bucket_bytes()) {
      s.buckets.emplace_back();
      bytes.push_back(0);
      it = open.insert_or_assign(key, s.buckets.size() - 1).first;
    }
    Bucket& b = s.buckets[it->second];
    s.slot[i] = {it->second, b.params.size()};
    b.params.push_back(i);
    b.offsets.push_back(b.grad_numel);
    b.grad_numel += p.numel();
    bytes[it->second] += p.numel() * static_cast<int64_t>(p.element_size());
  }
  for (auto& b : s.buckets) {
    const auto& p = s.params[b.params.front()];
    b.flat = torch::zeros({b.grad_numel + static_cast<int64_t>(b.params.size())}, p.options().requires_grad(false));
  }
  s.arrived.assign(s.params.size(), false);
  if (s.overlap && group_.world_size() > 1) {
    std::weak_ptr<State> weak = state_;
    for (size_t i = 0; i < s.params.size(); ++i) {
      s.hooks.push_back(s.params[i].register_hook([weak, i](torch::Tensor grad) -> torch::Tensor {
        auto state = weak.lock();
        return state ? state->on_grad(i, grad) : grad;
      }));
    }
  }
}

DataParallel::~DataParallel() {
  for (size_t i = 0; i < state_->hooks.size(); ++i) state_->params[i].remove_hook(state_->hooks[i]);
}

int64_t DataParallel::bucket_count() const { return static_cast<int64_t>(state_->buckets.size()); }

void DataParallel::synchronize_gradients() {
  State& s = *state_;
  if (group_.world_size() == 1) return;  // the local gradient is the average
  std::lock_guard<std::mutex> lock(s.mutex);
  torch::NoGradGuard no_grad;
  // Fill what the backward pass did not deliver, then start every bucket not yet started.
  for (size_t bi = s.next_launch; bi < s.buckets.size(); ++bi) {
    Bucket& b = s.buckets[bi];
    for (size_t k = 0; k < b.params.size(); ++k) {
      const size_t i = b.params[k];
      if (s.overlap) {
        if (s.arrived[i]) continue;
        s.grad_view(b, k).zero_();
        s.counter(b, k).fill_(0);
      } else {
        const auto& g = s.params[i].grad();
        if (g.defined()) s.grad_view(b, k).copy_(g);
        else s.grad_view(b, k).zero_();
        s.counter(b, k).fill_(g.defined() ? 1 : 0);
      }
    }
  }
  s.launch_ready(true);
  const double scale = 1.0 / static_cast<double>(group_.world_size());
  for (auto& b : s.buckets) {
    b.work.wait();
    const torch::Tensor counts = b.flat.slice(0, b.grad_numel).to(torch::kCPU, torch::kFloat64);
    for (size_t k = 0; k < b.params.size(); ++k) {
      if (counts[static_cast<int64_t>(k)].item<double>() == 0) continue;  // no rank has a gradient for it
      torch::Tensor& p = s.params[b.params[k]];
      torch::Tensor avg = s.grad_view(b, k).mul(scale);
      torch::Tensor& grad = p.mutable_grad();
      if (!grad.defined()) grad = avg;
      else if (s.overlap) grad.add_(avg);
      else grad.copy_(avg);
    }
    b.ready = 0;
    b.work = PendingWork();
  }
  s.next_launch = 0;
  s.arrived.assign(s.params.size(), false);
}

}  // namespace tt::distributed
