// Data-parallel training of a small spiking network over several processes (tt::distributed).
//
// Task: every sample is T steps of Bernoulli spike trains on `inputs` channels whose rates depend
// on its class; the class is read from a leaky-integrator readout at the last step. The data set
// is generated from a fixed seed, so every process has the same one and reads its share of it.
//
// The loop, per step, on every rank:
//   indices     this rank's share of the global batch (a DistributedSampler: seeded, per epoch)
//   forward     zero_states, then one call per timestep (each rank's hidden states are its own)
//   backward    the gradient of the mean loss over the local batch
//   synchronize gradients averaged over the ranks (started during backward, in buckets)
//   step        Adam; every rank applies the same update, so the replicas stay equal
// The global batch is fixed, so 1, 2 or 4 processes compute the same weights (up to rounding).
//
//   ./train_distributed --steps 20 --out weights.pt                      one process
//   python3 -m torch.distributed.run --no_python --nproc_per_node 2 \
//       ./train_distributed --steps 20 --out weights.pt                  two (torchrun)
// Rank 0 writes the final state_dict to --out and prints; the others stay quiet.
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tracetorch/tracetorch.h"
#include "tracetorch/distributed/distributed.h"

namespace {

struct Args {
  int64_t steps = 20, batch = 16, time_steps = 12, inputs = 20, hidden = 32, classes = 4, dataset = 256;
  double lr = 0.01;
  std::string out;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string key = argv[i];
    if (i + 1 >= argc) throw std::runtime_error("missing value after " + key);
    const char* v = argv[++i];
    if (key == "--steps") a.steps = std::atoll(v);
    else if (key == "--batch") a.batch = std::atoll(v);
    else if (key == "--time-steps") a.time_steps = std::atoll(v);
    else if (key == "--inputs") a.inputs = std::atoll(v);
    else if (key == "--hidden") a.hidden = std::atoll(v);
    else if (key == "--classes") a.classes = std::atoll(v);
    else if (key == "--dataset") a.dataset = std::atoll(v);
    else if (key == "--lr") a.lr = std::atof(v);
    else if (key == "--out") a.out = v;
    else throw std::runtime_error("unknown option " + key);
  }
  return a;
}

// The same data set on every rank: [dataset, T, inputs] spikes and [dataset] labels.
std::pair<torch::Tensor, torch::Tensor> make_dataset(const Args& a) {
  auto gen = at::detail::createCPUGenerator(1234);
  torch::Tensor labels = torch::randint(a.classes, {a.dataset}, gen, torch::kLong);
  torch::Tensor rates = torch::rand({a.classes, a.inputs}, gen) * 0.5;  // per class and channel
  torch::Tensor p = rates.index_select(0, labels).unsqueeze(1).expand({a.dataset, a.time_steps, a.inputs});
  torch::Tensor spikes = torch::bernoulli(p.contiguous(), gen);
  return {spikes, labels};
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args a = parse(argc, argv);
    // RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT from torchrun; without them, one process.
    auto group = tt::distributed::init_from_env();
    const int64_t world = group.world_size();
    if (a.batch % world != 0) throw std::runtime_error("--batch must be a multiple of the number of processes");
    const int64_t local_batch = a.batch / world;

    torch::manual_seed(0);
    auto net = tt::Sequential();
    net->push_back(torch::nn::Linear(a.inputs, a.hidden));
    net->push_back(tt::snn::LIB(a.hidden));
    net->push_back(torch::nn::Linear(a.hidden, a.classes));
    net->push_back(tt::snn::LI(a.classes));
    tt::distributed::DataParallel dp(net.ptr(), group);  // rank 0's initial weights everywhere
    torch::optim::Adam optimizer(net->parameters(), torch::optim::AdamOptions(a.lr));

    const auto [x, y] = make_dataset(a);
    tt::distributed::DistributedSampler sampler(a.dataset, group, tt::distributed::SamplerOptions().seed(7));
    const int64_t steps_per_epoch = sampler.size() / local_batch;
    if (steps_per_epoch == 0) throw std::runtime_error("--dataset is smaller than one global batch");

    std::vector<int64_t> order;
    using Clock = std::chrono::steady_clock;
    auto start = Clock::now();
    double sync_ms = 0;  // time spent in synchronize_gradients (communication not hidden by backward)
    for (int64_t step = 0; step < a.steps; ++step) {
      if (step == 1) {  // the first step warms up
        start = Clock::now();
        sync_ms = 0;
      }
      const int64_t within = step % steps_per_epoch;
      if (within == 0) {
        sampler.set_epoch(step / steps_per_epoch);
        order = sampler.indices();
      }
      torch::Tensor idx = torch::tensor(std::vector<int64_t>(order.begin() + within * local_batch,
                                                             order.begin() + (within + 1) * local_batch));
      torch::Tensor xb = x.index_select(0, idx), yb = y.index_select(0, idx);

      tt::zero_states(*net);
      torch::Tensor out;
      for (int64_t t = 0; t < a.time_steps; ++t) out = net->forward(xb.select(1, t));
      torch::Tensor loss = torch::cross_entropy_loss(out, yb);
      optimizer.zero_grad();
      loss.backward();
      const auto before_sync = Clock::now();
      dp.synchronize_gradients();
      sync_ms += std::chrono::duration<double, std::milli>(Clock::now() - before_sync).count();
      optimizer.step();

      if (step % 10 == 0 || step + 1 == a.steps) {
        torch::Tensor mean = loss.detach().clone();
        group.all_reduce(mean);
        if (group.is_main())
          std::printf("step %4lld  loss %.4f\n", static_cast<long long>(step), mean.item<double>() / world);
      }
    }
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (group.is_main() && a.steps > 1)
      std::printf("%lld processes: %.2f ms per step (global batch %lld), %.2f ms of it in synchronize_gradients\n",
                  static_cast<long long>(world), ms / static_cast<double>(a.steps - 1), static_cast<long long>(a.batch),
                  sync_ms / static_cast<double>(a.steps - 1));
    if (!a.out.empty()) tt::distributed::save_state_dict(*net, a.out, group);
    group.barrier();  // rank 0 serves the rendezvous store: it leaves last
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_distributed: %s\n", e.what());
    return 1;
  }
}
