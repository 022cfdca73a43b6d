#pragma once
// tt::distributed::ProcessGroup: a handle on PyTorch's c10d engine (a TCPStore rendezvous and a
// ProcessGroupGloo on CPU, ProcessGroupNCCL for CUDA tensors where LibTorch was built with it),
// configured the way `torchrun` configures Python programs, so the same binary runs as one
// process, several on one machine, or on several machines.
//
//   auto group = tt::distributed::init_from_env();   // RANK, WORLD_SIZE, MASTER_ADDR, ...
//   group.all_reduce(t);                              // t = sum of t over all ranks
//
// Without the variables (a plain `./train`), init_from_env gives a one-process group on which
// every collective is a no-op, so a program needs no separate single-process path.
//
// Ownership: a ProcessGroup is a shared handle; copies refer to the same connections, which close
// when the last copy dies. Tensors passed to collectives are modified in place and must stay
// alive until the collective finished (PendingWork::wait).
// Throws: tt::DistributedError (rendezvous, a peer that dies or does not answer within
// InitOptions::timeout: the message names the operation, this rank, the world size, the timeout
// and c10d's reason), tt::ValueError (bad options or environment values).
// Thread safety: collectives must be issued in the same order on every rank; one thread per group
// issuing them is the safe pattern (the backend's own threads do the transfers).
#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tracetorch/core/error.h"

namespace tt {

// A collective or the rendezvous failed: a peer died, did not join, or did not answer in time.
class DistributedError : public Error {
 public:
  using Error::Error;
};

namespace distributed {

enum class Backend {
  Auto,  // NCCL for a CUDA device when LibTorch has it, otherwise Gloo
  Gloo,
  NCCL,
};

struct InitOptions {
  TORCH_ARG(int64_t, rank) = 0;
  TORCH_ARG(int64_t, world_size) = 1;
  TORCH_ARG(int64_t, local_rank) = 0;  // rank on this machine (picks the CUDA device)
  TORCH_ARG(std::string, master_addr) = "127.0.0.1";
  TORCH_ARG(int64_t, master_port) = 29500;
  // Bound on the rendezvous and on every collective: a peer that died or hangs makes the others
  // throw DistributedError after at most this long (a dead peer's closed socket usually sooner).
  TORCH_ARG(std::chrono::milliseconds, timeout) = std::chrono::milliseconds(300000);
  TORCH_ARG(Backend, backend) = Backend::Auto;
  // Where the tensors given to collectives live (Auto picks the backend from it).
  TORCH_ARG(torch::Device, device) = torch::kCPU;
  // Gloo's network interface (GLOO_SOCKET_IFNAME, e.g. "eth0"); empty: the address this host's
  // name resolves to, or loopback for a one-machine run.
  TORCH_ARG(std::string, interface) = "";
  // torchrun's agent already serves the store at master_addr:master_port (it sets
  // TORCHELASTIC_USE_AGENT_STORE): every rank connects as a client.
  TORCH_ARG(bool, agent_store) = false;
  // Distinguishes restarts of a job on the same store (torchrun's TORCHELASTIC_RESTART_COUNT).
  TORCH_ARG(std::string, store_prefix) = "tracetorch";
};

// InitOptions from torchrun's variables: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT,
// and TORCHELASTIC_USE_AGENT_STORE, TORCHELASTIC_RESTART_COUNT, GLOO_SOCKET_IFNAME,
// TT_DIST_TIMEOUT (seconds). Unset variables keep the values of `defaults`. Throws tt::ValueError
// naming the variable for a value that is not a number or out of range.
InitOptions options_from_env(InitOptions defaults = {});

// The result of an asynchronous collective.
class PendingWork {
 public:
  PendingWork() = default;
  // Blocks until done (at most the group's timeout); throws DistributedError. Idempotent.
  void wait();
  bool defined() const { return static_cast<bool>(impl_); }

  struct Impl;
  explicit PendingWork(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

 private:
  std::shared_ptr<Impl> impl_;
};

class ProcessGroup {
 public:
  // A one-process group: rank 0 of 1, collectives return at once.
  ProcessGroup();

  int64_t rank() const;
  int64_t world_size() const;
  int64_t local_rank() const;
  bool is_main() const { return rank() == 0; }
  // "gloo", "nccl", or "single" for a one-process group.
  std::string backend_name() const;
  const InitOptions& options() const;

  // Sum over all ranks, in place. The _async form returns at once; the tensor must not be read or
  // freed before wait().
  void all_reduce(torch::Tensor& tensor);
  PendingWork all_reduce_async(torch::Tensor& tensor);
  // Every rank receives root's values, in place (same shapes and dtypes on every rank).
  void broadcast(std::vector<torch::Tensor>& tensors, int64_t root = 0);
  void barrier();

  struct Impl;
  explicit ProcessGroup(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

 private:
  std::shared_ptr<Impl> impl_;
};

// Joins (or, with world_size 1, creates) a group: rank 0 serves the TCPStore at
// master_addr:master_port unless agent_store, every rank connects, and the backend connects all
// pairs. Blocks until every rank joined or the timeout passed (DistributedError).
ProcessGroup init(const InitOptions& options);
// init(options_from_env(defaults)).
ProcessGroup init_from_env(InitOptions defaults = {});

}  // namespace distributed
}  // namespace tt
