#pragma once
// Checkpoints of data-parallel runs: the replicas are equal, so one rank (rank 0) writes and every
// rank reads. The files are the ordinary ones (tt::save_state_dict, Python-compatible .pt): a
// file written by a distributed run loads in a single process and the reverse.
//
// Ownership: none kept. Throws: tt::FileError / tt::LoadError on the rank that failed, and
// tt::DistributedError on the other ranks (they learn of the failure instead of waiting for it),
// tt::DistributedError if a peer dies meanwhile. Every rank must call these functions together
// (they are collectives). Thread safety: as tt::save_state_dict / tt::load_state_dict.
#include <torch/torch.h>

#include <string>

#include "tracetorch/core/load_options.h"
#include "tracetorch/core/load_report.h"
#include "tracetorch/distributed/process_group.h"

namespace tt::distributed {

// Rank 0 writes module's state_dict to path (atomically); returns when the file is complete, so
// every rank may read it afterwards (on storage they all see).
void save_state_dict(const torch::nn::Module& module, const std::string& path, ProcessGroup& group);

// Every rank loads path (its own copy or shared storage), then all agree that every load worked.
LoadReport load_state_dict(torch::nn::Module& module, const std::string& path, ProcessGroup& group,
                           const LoadOptions& options = {});

}  // namespace tt::distributed
