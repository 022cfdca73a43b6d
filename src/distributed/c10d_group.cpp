// The only file that talks to c10d (PyTorch's distributed engine). Its C++ API differs between
// LibTorch 1.13 and 2.x in the backend base class; the differences stay behind the #if below.
#include "tracetorch/distributed/process_group.h"

#include <torch/version.h>

// c10d's backend headers are compiled only when these are defined (PyTorch's own builds define
// them); Debian's and pip's LibTorch both ship Gloo. NCCL needs a CUDA LibTorch and
// -DTRACETORCH_WITH_NCCL=ON.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef TT_WITH_NCCL
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <exception>
#include <sstream>

namespace tt::distributed {

namespace {

#if TORCH_VERSION_MAJOR >= 2
using BackendBase = c10d::Backend;  // 2.x: Gloo and NCCL are Backends of a ProcessGroup
#else
using BackendBase = c10d::ProcessGroup;  // 1.13: they are ProcessGroups themselves
#endif

// c10::Error's what() carries a C++ backtrace; the reason alone is what a user needs.
std::string reason(const std::exception& e) {
  if (auto* c10 = dynamic_cast<const c10::Error*>(&e)) return c10->what_without_backtrace();
  return e.what();
}

std::string seconds(std::chrono::milliseconds ms) {
  std::ostringstream s;
  s << static_cast<double>(ms.count()) / 1000.0 << " s";
  return s.str();
}

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

}  // namespace

struct ProcessGroup::Impl {
  InitOptions options;
  std::string backend = "single";
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<BackendBase> pg;  // null for a one-process group

  std::string where() const {
    return "rank " + std::to_string(options.rank()) + " of " + std::to_string(options.world_size()) + " (" +
           backend + ", timeout " + seconds(options.timeout()) + ")";
  }
  [[noreturn]] void fail(const std::string& what, const std::exception& e) const {
    throw DistributedError("tt::distributed: " + what + " failed on " + where() + ": " + reason(e) +
                           ". A peer process has probably died or stopped answering; see its own output.");
  }
};

struct PendingWork::Impl {
  c10::intrusive_ptr<c10d::Work> work;
  std::shared_ptr<const ProcessGroup::Impl> group;
  std::string what;
  bool done = false;
};

void PendingWork::wait() {
  if (!impl_ || impl_->done) return;
  try {
    impl_->work->wait(impl_->group->options.timeout());
  } catch (const std::exception& e) {
    impl_->done = true;
    impl_->group->fail(impl_->what, e);
  }
  impl_->done = true;
}

ProcessGroup::ProcessGroup() : impl_(std::make_shared<Impl>()) {}

int64_t ProcessGroup::rank() const { return impl_->options.rank(); }
int64_t ProcessGroup::world_size() const { return impl_->options.world_size(); }
int64_t ProcessGroup::local_rank() const { return impl_->options.local_rank(); }
std::string ProcessGroup::backend_name() const { return impl_->backend; }
const InitOptions& ProcessGroup::options() const { return impl_->options; }

PendingWork ProcessGroup::all_reduce_async(torch::Tensor& tensor) {
  if (!tensor.defined() || !tensor.is_contiguous())
    throw ValueError("tt::distributed::all_reduce_async: needs a defined, contiguous tensor");
  if (!impl_->pg) return {};
  const std::string what = "all_reduce of " + std::to_string(tensor.numel()) + " elements";
  std::vector<at::Tensor> one{tensor};
  try {
    auto impl = std::make_shared<PendingWork::Impl>();
    impl->work = impl_->pg->allreduce(one);
    impl->group = impl_;
    impl->what = what;
    return PendingWork(std::move(impl));
  } catch (const std::exception& e) {
    impl_->fail(what, e);
  }
}

void ProcessGroup::all_reduce(torch::Tensor& tensor) {
  if (!tensor.defined()) throw ValueError("tt::distributed::all_reduce: undefined tensor");
  if (!impl_->pg) return;
  if (tensor.is_contiguous()) {
    all_reduce_async(tensor).wait();
    return;
  }
  torch::Tensor dense = tensor.contiguous();
  all_reduce_async(dense).wait();
  tensor.copy_(dense);
}

void ProcessGroup::broadcast(std::vector<torch::Tensor>& tensors, int64_t root) {
  if (root < 0 || root >= world_size())
    throw ValueError("tt::distributed::broadcast: root " + std::to_string(root) + " is not a rank of a group of " +
                     std::to_string(world_size()));
  if (!impl_->pg || tensors.empty()) return;
  // One transfer per dtype: c10d reads a list of tensors as one tensor per device.
  std::vector<torch::ScalarType> dtypes;
  for (const auto& t : tensors) {
    if (!t.defined()) throw ValueError("tt::distributed::broadcast: undefined tensor");
    if (std::find(dtypes.begin(), dtypes.end(), t.scalar_type()) == dtypes.end()) dtypes.push_back(t.scalar_type());
  }
  torch::NoGradGuard no_grad;
  for (auto dtype : dtypes) {
    std::vector<torch::Tensor> parts;
    for (const auto& t : tensors)
      if (t.scalar_type() == dtype) parts.push_back(t.reshape({-1}));
    torch::Tensor flat = torch::cat(parts);
    const std::string what = "broadcast of " + std::to_string(flat.numel()) + " elements from rank " + std::to_string(root);
    std::vector<at::Tensor> one{flat};
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    try {
      impl_->pg->broadcast(one, opts)->wait(impl_->options.timeout());
    } catch (const std::exception& e) {
      impl_->fail(what, e);
    }
    int64_t offset = 0;
    for (auto& t : tensors) {
      if (t.scalar_type() != dtype) continue;
      t.copy_(flat.slice(0, offset, offset + t.numel()).view(t.sizes()));
      offset += t.numel();
    }
  }
}

void ProcessGroup::barrier() {
  if (!impl_->pg) return;
  try {
    impl_->pg->barrier()->wait(impl_->options.timeout());
  } catch (const std::exception& e) {
    impl_->fail("barrier", e);
  }
}

ProcessGroup init(const InitOptions& options) {
  if (options.world_size() < 1 || options.rank() < 0 || options.rank() >= options.world_size())
    throw ValueError("tt::distributed::init: rank " + std::to_string(options.rank()) +
                     " is not in [0, world_size) for world_size " + std::to_string(options.world_size()));
  if (options.master_port() < 1 || options.master_port() > 65535)
    throw ValueError("tt::distributed::init: master_port must be in [1, 65535], got " +
                     std::to_string(options.master_port()));
  if (options.timeout().count() <= 0)
    throw ValueError("tt::distributed::init: the timeout must be positive, got " +
                     std::to_string(options.timeout().count()) + " ms");
  auto impl = std::make_shared<ProcessGroup::Impl>();
  impl->options = options;
  if (options.world_size() == 1) return ProcessGroup(impl);  // nothing to talk to

  Backend backend = options.backend();
  if (backend == Backend::Auto) backend = options.device().is_cuda() ? Backend::NCCL : Backend::Gloo;
#ifndef TT_WITH_NCCL
  if (backend == Backend::NCCL) {
    if (options.backend() == Backend::NCCL)
      throw ValueError("tt::distributed::init: NCCL requested, but tracetorch was built without it "
                       "(configure a CUDA LibTorch with -DTRACETORCH_WITH_NCCL=ON)");
    backend = Backend::Gloo;  // Gloo also reduces CUDA tensors, through host copies
  }
#endif
  impl->backend = backend == Backend::NCCL ? "nccl" : "gloo";

  const std::string endpoint = options.master_addr() + ":" + std::to_string(options.master_port());
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<std::uint16_t>(options.master_port());
    store_options.isServer = !options.agent_store() && options.rank() == 0;
    if (!options.agent_store()) store_options.numWorkers = static_cast<std::size_t>(options.world_size());
    store_options.waitWorkers = !options.agent_store();
    store_options.timeout = options.timeout();
    auto tcp = c10::make_intrusive<c10d::TCPStore>(options.master_addr(), store_options);
    impl->store = c10::make_intrusive<c10d::PrefixStore>(options.store_prefix() + "/", tcp);
  } catch (const std::exception& e) {
    throw DistributedError("tt::distributed: rendezvous at " + endpoint + " failed on " + impl->where() + ": " +
                           reason(e) + ". Not every rank joined in time (or the address/port is wrong or in use).");
  }

  try {
    if (backend == Backend::NCCL) {
#ifdef TT_WITH_NCCL
      auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
      nccl_options->timeout = options.timeout();
      impl->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl->store, options.rank(), options.world_size(),
                                                             nccl_options);
#endif
    } else {
      auto gloo_options = c10d::ProcessGroupGloo::Options::create(options.timeout());
      std::string ifaces = options.interface();
      if (!ifaces.empty()) {
        std::stringstream list(ifaces);
        for (std::string name; std::getline(list, name, ',');)
          if (!name.empty()) gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
      } else if (is_loopback(options.master_addr())) {
        gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      } else {
        gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      impl->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, options.rank(), options.world_size(),
                                                             gloo_options);
    }
  } catch (const std::exception& e) {
    throw DistributedError("tt::distributed: connecting the " + impl->backend + " backend failed on " + impl->where() +
                           " (store " + endpoint + "): " + reason(e) + ". Not every rank joined in time.");
  }
  return ProcessGroup(impl);
}

}  // namespace tt::distributed
