// Tests for tracetorch/distributed: the environment, the sampler's sharding (and its parity with
// PyTorch's DistributedSampler), and real multi-process runs on 127.0.0.1 with 2 and 4 processes:
// data-parallel training against one process on the concatenated batch, the distributed ridge fit
// against a one-process fit, checkpoints both ways, and the failures (a killed rank, a rank that
// never joins, a rank that stops answering) giving an error within the timeout, never a hang.
//
// The worker processes are this same binary: main() runs a worker role when TT_DIST_ROLE is set.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "test_support.h"
#include "tracetorch/core/sequential.h"
#include "tracetorch/core/state_dict.h"
#include "tracetorch/distributed/distributed.h"
#include "tracetorch/rc/rc.h"
#include "tracetorch/snn/presets.h"

extern char** environ;

namespace td = tt::distributed;
using Clock = std::chrono::steady_clock;

namespace {

// ---- the shared problems -----------------------------------------------------------------

constexpr int64_t kGlobalBatch = 8, kSteps = 4, kT = 6, kIn = 5, kHidden = 12, kOut = 3;

std::shared_ptr<torch::nn::Module> make_net() {
  auto net = tt::Sequential();
  net->push_back(torch::nn::Linear(kIn, kHidden));
  net->push_back(tt::snn::LIB(kHidden));
  net->push_back(torch::nn::Linear(kHidden, kOut));
  net->push_back(tt::snn::LI(kOut));
  return net.ptr();
}

// Step s's global batch: x [B, T, in], y [B] (the same in every process).
std::pair<torch::Tensor, torch::Tensor> global_batch(int64_t step) {
  auto gen = at::detail::createCPUGenerator(100 + static_cast<uint64_t>(step));
  torch::Tensor x = torch::rand({kGlobalBatch, kT, kIn}, gen) * 2.0;
  torch::Tensor y = torch::randint(kOut, {kGlobalBatch}, gen, torch::kLong);
  return {x, y};
}

// kSteps of SGD on this rank's contiguous share of each global batch; the same function is the
// one-process reference (world size 1: the whole batch).
void train(torch::nn::Module& net, const std::shared_ptr<torch::nn::Module>& ptr, td::ProcessGroup& group,
           td::DataParallelOptions options) {
  td::DataParallel dp(ptr, group, options);
  torch::optim::SGD optimizer(net.parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
  auto* seq = dynamic_cast<tt::SequentialImpl*>(&net);
  const int64_t local = kGlobalBatch / group.world_size();
  for (int64_t step = 0; step < kSteps; ++step) {
    auto [x, y] = global_batch(step);
    x = x.narrow(0, group.rank() * local, local);
    y = y.narrow(0, group.rank() * local, local);
    tt::zero_states(net);
    torch::Tensor out;
    for (int64_t t = 0; t < kT; ++t) out = seq->forward(x.select(1, t));
    optimizer.zero_grad();
    torch::cross_entropy_loss(out, y).backward();
    dp.synchronize_gradients();
    optimizer.step();
  }
}

// Sequences of a noisy sine, the next value as target: inputs [8, W + T, 1], targets [8, T, 1].
constexpr int64_t kSequences = 8, kWarmup = 10, kLength = 40;
std::pair<torch::Tensor, torch::Tensor> ridge_data() {
  auto gen = at::detail::createCPUGenerator(5);
  torch::Tensor phase = torch::rand({kSequences, 1, 1}, gen) * 6.0;
  torch::Tensor t = torch::arange(kWarmup + kLength + 1, torch::kFloat32).view({1, -1, 1}) * 0.3;
  torch::Tensor s = torch::sin(t + phase) + 0.05 * torch::randn({kSequences, kWarmup + kLength + 1, 1}, gen);
  return {s.slice(1, 0, kWarmup + kLength), s.slice(1, kWarmup + 1)};
}

tt::rc::ESNModel make_esn() {
  return tt::rc::classic_esn(30, 1, 1, tt::rc::ESNOptions().seed(3).readout_alpha(1e-3));
}

// ---- worker roles (in child processes) -----------------------------------------------------

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

int worker(const std::string& role) {
  const std::string dir = env("TT_DIST_DIR");
  td::InitOptions defaults;
  defaults.timeout(std::chrono::milliseconds(std::atoll(env("TT_DIST_TIMEOUT_MS").c_str())));
  try {
    auto group = td::init(td::options_from_env(defaults));
    if (role == "train") {
      torch::manual_seed(1000 + group.rank());  // different initial weights on every rank ...
      auto net = make_net();
      // ... replaced by a file written by one process (the other direction of checkpoint interop).
      td::load_state_dict(*net, dir + "/initial.pt", group);
      td::DataParallelOptions options;
      options.overlap(env("TT_DIST_OVERLAP") == "1").bucket_bytes(std::atoll(env("TT_DIST_BUCKET").c_str()));
      train(*net, net, group, options);
      td::save_state_dict(*net, dir + "/trained.pt", group);
    } else if (role == "ridge") {
      auto [inputs, targets] = ridge_data();
      std::vector<int64_t> mine;  // sequences r, r + W, ...: one rank may get none
      for (int64_t i = group.rank(); i < kSequences; i += group.world_size()) mine.push_back(i);
      torch::Tensor idx = torch::tensor(mine, torch::kLong);
      auto model = make_esn();
      td::fit_esn(model, inputs.index_select(0, idx), targets.index_select(0, idx), kWarmup, group);
      td::save_state_dict(*model, dir + "/ridge.pt", group);
    } else if (role == "die" || role == "hang") {
      torch::Tensor t = torch::ones({4});
      group.all_reduce(t);  // everyone is connected
      if (group.rank() == 1) {
        if (role == "die") kill(getpid(), SIGKILL);
        std::this_thread::sleep_for(std::chrono::seconds(8));  // alive, but does not answer
        return 0;
      }
      for (int i = 0; i < 100; ++i) group.all_reduce(t);
      return 0;  // not reached: rank 1 is gone
    }
    group.barrier();
    return 0;
  } catch (const tt::DistributedError& e) {
    tt_test::write_text(dir + "/error" + env("RANK") + ".txt", e.what());
    return 3;
  } catch (const std::exception& e) {
    tt_test::write_text(dir + "/error" + env("RANK") + ".txt", e.what());
    return 4;
  }
}

// ---- the launcher (in the test process) -----------------------------------------------------

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

struct Job {
  std::vector<pid_t> pids;
  std::vector<int> codes;  // exit codes; -1 killed at the deadline or by a signal
  std::vector<double> seconds;  // from the start to each process's exit
};

// Starts ranks `ranks` of a world of `world` running `role`, waits for them for at most `limit`
// (then kills what is left: a test never hangs).
Job run_job(const std::string& role, int world, const std::vector<int>& ranks, const tt_test::TempDir& dir,
            std::chrono::seconds limit, std::map<std::string, std::string> extra = {}) {
  const int port = free_port();
  Job job;
  for (int rank : ranks) {
    std::map<std::string, std::string> vars = {
        {"TT_DIST_ROLE", role},        {"TT_DIST_DIR", dir.path()},      {"RANK", std::to_string(rank)},
        {"LOCAL_RANK", std::to_string(rank)}, {"WORLD_SIZE", std::to_string(world)}, {"MASTER_ADDR", "127.0.0.1"},
        {"MASTER_PORT", std::to_string(port)}, {"TT_DIST_TIMEOUT_MS", "20000"}, {"TT_DIST_OVERLAP", "1"},
        {"TT_DIST_BUCKET", "256"},     {"OMP_NUM_THREADS", "1"}};
    for (auto& [k, v] : extra) vars[k] = v;
    std::vector<std::string> entries;
    for (char** e = environ; *e; ++e) {
      const std::string s = *e;
      if (vars.count(s.substr(0, s.find('='))) == 0) entries.push_back(s);
    }
    for (auto& [k, v] : vars) entries.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& s : entries) envp.push_back(s.data());
    envp.push_back(nullptr);
    const std::string log = dir.file("log" + std::to_string(rank) + ".txt");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    std::string exe = "/proc/self/exe";
    char* argv[] = {exe.data(), nullptr};
    pid_t pid = 0;
    EXPECT_EQ(posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv, envp.data()), 0);
    posix_spawn_file_actions_destroy(&actions);
    job.pids.push_back(pid);
  }
  job.codes.assign(job.pids.size(), -2);
  job.seconds.assign(job.pids.size(), 0.0);
  const auto start = Clock::now(), deadline = start + limit;
  size_t left = job.pids.size();
  while (left > 0) {
    for (size_t i = 0; i < job.pids.size(); ++i) {
      if (job.codes[i] != -2) continue;
      int status = 0;
      if (waitpid(job.pids[i], &status, WNOHANG) == job.pids[i]) {
        job.codes[i] = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        job.seconds[i] = std::chrono::duration<double>(Clock::now() - start).count();
        --left;
      }
    }
    if (left == 0) break;
    if (Clock::now() > deadline) {
      for (size_t i = 0; i < job.pids.size(); ++i)
        if (job.codes[i] == -2) {
          kill(job.pids[i], SIGKILL);
          waitpid(job.pids[i], nullptr, 0);
          job.codes[i] = -1;
        }
      ADD_FAILURE() << role << ": processes still running after " << limit.count() << " s (a hang); killed";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return job;
}

std::string logs(const tt_test::TempDir& dir, int world) {
  std::string text;
  for (int r = 0; r < world; ++r) {
    text += "--- rank " + std::to_string(r) + " log: " + tt_test::read_text(dir.file("log" + std::to_string(r) + ".txt"));
    text += "\n--- rank " + std::to_string(r) + " error: " + tt_test::read_text(dir.file("error" + std::to_string(r) + ".txt"));
  }
  return text;
}

double relative_diff(const torch::Tensor& a, const torch::Tensor& b) {
  const double scale = b.abs().max().item<double>();
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>() / (scale > 0 ? scale : 1.0);
}

void expect_same_dicts(const tt::io::TensorDict& got, const tt::io::TensorDict& want, double tolerance) {
  ASSERT_EQ(got.size(), want.size());
  for (const auto& item : want) {
    ASSERT_TRUE(got.contains(item.key())) << item.key();
    EXPECT_LE(relative_diff(got[item.key()], item.value()), tolerance) << item.key();
  }
}

// ---- single-process tests --------------------------------------------------------------------

TEST(DistributedEnv, ReadsTorchrunVariables) {
  setenv("RANK", "2", 1);
  setenv("WORLD_SIZE", "4", 1);
  setenv("LOCAL_RANK", "0", 1);
  setenv("MASTER_ADDR", "10.1.2.3", 1);
  setenv("MASTER_PORT", "29555", 1);
  setenv("TORCHELASTIC_USE_AGENT_STORE", "True", 1);
  setenv("TORCHELASTIC_RESTART_COUNT", "1", 1);
  setenv("TT_DIST_TIMEOUT", "7", 1);
  const auto o = td::options_from_env();
  EXPECT_EQ(o.rank(), 2);
  EXPECT_EQ(o.world_size(), 4);
  EXPECT_EQ(o.master_addr(), "10.1.2.3");
  EXPECT_EQ(o.master_port(), 29555);
  EXPECT_TRUE(o.agent_store());
  EXPECT_EQ(o.store_prefix(), "tracetorch/restart1");
  EXPECT_EQ(o.timeout(), std::chrono::milliseconds(7000));

  setenv("RANK", "4", 1);
  EXPECT_THROW(
      try { td::options_from_env(); } catch (const tt::ValueError& e) {
        EXPECT_NE(std::string(e.what()).find("RANK 4 is not below WORLD_SIZE 4"), std::string::npos) << e.what();
        throw;
      },
      tt::ValueError);
  setenv("RANK", "one", 1);
  EXPECT_THROW(
      try { td::options_from_env(); } catch (const tt::ValueError& e) {
        EXPECT_NE(std::string(e.what()).find("RANK=\"one\""), std::string::npos) << e.what();
        throw;
      },
      tt::ValueError);
  for (const char* v : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_USE_AGENT_STORE",
                        "TORCHELASTIC_RESTART_COUNT", "TT_DIST_TIMEOUT"})
    unsetenv(v);
  const auto plain = td::options_from_env();
  EXPECT_EQ(plain.world_size(), 1);
  EXPECT_EQ(plain.rank(), 0);
}

TEST(DistributedGroup, OneProcessGroupIsANoOp) {
  auto group = td::init(td::InitOptions());
  EXPECT_EQ(group.world_size(), 1);
  EXPECT_EQ(group.backend_name(), "single");
  torch::Tensor t = torch::arange(4, torch::kFloat32);
  group.all_reduce(t);
  EXPECT_TRUE(t.equal(torch::arange(4, torch::kFloat32)));
  std::vector<torch::Tensor> ts{t};
  group.broadcast(ts, 0);
  group.barrier();
  EXPECT_THROW(group.broadcast(ts, 1), tt::ValueError);
  EXPECT_THROW(td::init(td::InitOptions().rank(2).world_size(2)), tt::ValueError);
  EXPECT_THROW(td::init(td::InitOptions().world_size(2).master_port(70000)), tt::ValueError);
}

TEST(DistributedSampler, ShardsPadAndDropLikePyTorch) {
  // 10 samples on 4 ranks: 3 each, padded with the first two of the order.
  std::vector<int64_t> seen;
  for (int r = 0; r < 4; ++r) {
    td::DistributedSampler s(10, r, 4, td::SamplerOptions().shuffle(false));
    EXPECT_EQ(s.size(), 3);
    auto idx = s.indices();
    ASSERT_EQ(idx.size(), 3u);
    for (size_t k = 0; k < idx.size(); ++k) EXPECT_EQ(idx[k], (r + 4 * static_cast<int64_t>(k)) % 10);
    seen.insert(seen.end(), idx.begin(), idx.end());
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<int64_t>{0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  td::DistributedSampler dropped(10, 3, 4, td::SamplerOptions().shuffle(false).drop_last(true));
  EXPECT_EQ(dropped.indices(), (std::vector<int64_t>{3, 7}));
  // Shuffled: a permutation per epoch, the same on every rank, different between epochs.
  td::DistributedSampler a(50, 0, 2, td::SamplerOptions().seed(3)), b(50, 1, 2, td::SamplerOptions().seed(3));
  auto ia = a.indices(), ib = b.indices();
  std::vector<int64_t> all(ia);
  all.insert(all.end(), ib.begin(), ib.end());
  std::sort(all.begin(), all.end());
  for (int64_t i = 0; i < 50; ++i) EXPECT_EQ(all[static_cast<size_t>(i)], i);
  a.set_epoch(1);
  EXPECT_NE(a.indices(), ia);
  EXPECT_THROW(td::DistributedSampler(5, 2, 2), tt::ValueError);
}

TEST(DistributedSampler, MatchesPythonDistributedSampler) {
  std::string out;
  ASSERT_EQ(tt_test::run_python("import torch\n"
                                "from torch.utils.data.distributed import DistributedSampler\n"
                                "for n, w, r, e, drop in [(37, 4, 1, 0, False), (37, 4, 3, 2, True), (5, 8, 6, 1, False)]:\n"
                                "    s = DistributedSampler(range(n), num_replicas=w, rank=r, shuffle=True, seed=11, drop_last=drop)\n"
                                "    s.set_epoch(e)\n"
                                "    print(' '.join(str(i) for i in s))\n",
                                &out),
            0)
      << out;
  std::string want;
  for (auto [n, w, r, e, drop] : std::vector<std::tuple<int, int, int, int, bool>>{
           {37, 4, 1, 0, false}, {37, 4, 3, 2, true}, {5, 8, 6, 1, false}}) {
    td::DistributedSampler s(n, r, w, td::SamplerOptions().seed(11).drop_last(drop));
    s.set_epoch(e);
    std::string line;
    for (int64_t i : s.indices()) line += (line.empty() ? "" : " ") + std::to_string(i);
    want += line + "\n";
  }
  EXPECT_EQ(out, want);
}

// ---- multi-process tests -----------------------------------------------------------------------

class DistributedRun : public ::testing::TestWithParam<int> {};

TEST_P(DistributedRun, TrainingEqualsOneProcessOnTheConcatenatedBatch) {
  const int world = GetParam();
  tt_test::TempDir dir;
  torch::manual_seed(42);
  auto reference = make_net();
  tt::save_state_dict(*reference, dir.file("initial.pt"));
  td::ProcessGroup single;
  train(*reference, reference, single, {});

  for (const char* overlap : {"1", "0"}) {
    const auto job = run_job("train", world, [&] {
      std::vector<int> r(world);
      for (int i = 0; i < world; ++i) r[i] = i;
      return r;
    }(), dir, std::chrono::seconds(90), {{"TT_DIST_OVERLAP", overlap}});
    for (int code : job.codes) ASSERT_EQ(code, 0) << logs(dir, world);
    // The checkpoint from the distributed run loads in one process.
    auto loaded = make_net();
    tt::load_state_dict(*loaded, dir.file("trained.pt"));
    expect_same_dicts(tt::state_dict(*loaded), tt::state_dict(*reference), 1e-5);
    // ... and training moved the weights (the comparison is not between two untouched copies).
    auto initial = make_net();
    tt::load_state_dict(*initial, dir.file("initial.pt"));
    EXPECT_GT(relative_diff(tt::state_dict(*initial)["0.weight"], tt::state_dict(*loaded)["0.weight"]), 1e-3);
  }
}

TEST_P(DistributedRun, RidgeFitEqualsOneProcessFit) {
  const int world = GetParam();
  tt_test::TempDir dir;
  auto [inputs, targets] = ridge_data();
  auto reference = make_esn();
  tt::rc::ESNTrainer(reference).fit(inputs, targets, kWarmup);

  std::vector<int> ranks(world);
  for (int i = 0; i < world; ++i) ranks[i] = i;
  const auto job = run_job("ridge", world, ranks, dir, std::chrono::seconds(90));
  for (int code : job.codes) ASSERT_EQ(code, 0) << logs(dir, world);
  auto loaded = make_esn();
  tt::load_state_dict(*loaded, dir.file("ridge.pt"));
  EXPECT_LE(relative_diff(loaded->readout->weight, reference->readout->weight), 1e-6);
  EXPECT_LE(relative_diff(loaded->readout->bias, reference->readout->bias), 1e-6);
  EXPECT_GT(relative_diff(loaded->readout->weight, make_esn()->readout->weight), 1e-2);  // it was fitted
}

INSTANTIATE_TEST_SUITE_P(Ranks, DistributedRun, ::testing::Values(2, 4),
                         [](const auto& info) { return std::to_string(info.param) + "processes"; });

TEST(DistributedFailure, KilledRankGivesAnErrorNotAHang) {
  tt_test::TempDir dir;
  const auto start = Clock::now();
  const auto job = run_job("die", 2, {0, 1}, dir, std::chrono::seconds(60), {{"TT_DIST_TIMEOUT_MS", "10000"}});
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_EQ(job.codes[1], -1);  // killed itself
  ASSERT_EQ(job.codes[0], 3) << logs(dir, 2);
  const std::string error = tt_test::read_text(dir.file("error0.txt"));
  EXPECT_NE(error.find("all_reduce of 4 elements failed on rank 0 of 2 (gloo, timeout 10 s)"), std::string::npos) << error;
  EXPECT_NE(error.find("peer process has probably died"), std::string::npos) << error;
  EXPECT_LT(seconds, 30.0);
}

TEST(DistributedFailure, SilentRankTimesOut) {
  tt_test::TempDir dir;
  const auto job = run_job("hang", 2, {0, 1}, dir, std::chrono::seconds(60), {{"TT_DIST_TIMEOUT_MS", "2000"}});
  ASSERT_EQ(job.codes[0], 3) << logs(dir, 2);
  const std::string error = tt_test::read_text(dir.file("error0.txt"));
  EXPECT_NE(error.find("all_reduce of 4 elements failed on rank 0 of 2 (gloo, timeout 2 s)"), std::string::npos)
      << error;
  // The 2 s timeout, not the end of rank 1's 8 s of silence, ended rank 0's wait.
  EXPECT_EQ(job.codes[1], 0);
  EXPECT_LT(job.seconds[0], job.seconds[1] - 3.0);
}

TEST(DistributedFailure, RankThatNeverJoinsGivesAnError) {
  tt_test::TempDir dir;
  const auto start = Clock::now();
  const auto job = run_job("die", 3, {0, 1}, dir, std::chrono::seconds(60), {{"TT_DIST_TIMEOUT_MS", "2000"}});
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (int r = 0; r < 2; ++r) {
    ASSERT_EQ(job.codes[static_cast<size_t>(r)], 3) << logs(dir, 2);
    const std::string error = tt_test::read_text(dir.file("error" + std::to_string(r) + ".txt"));
    EXPECT_NE(error.find("of 3 (gloo, timeout 2 s)"), std::string::npos) << error;
    EXPECT_NE(error.find("Not every rank joined in time"), std::string::npos) << error;
  }
  EXPECT_LT(seconds, 30.0);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string role = env("TT_DIST_ROLE");
  if (!role.empty()) return worker(role);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
