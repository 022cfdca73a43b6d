// Regression tests for the hostile-input probe (issue 14) and the limits in docs/hostile-inputs.md:
// the generated hostile files read in-process (so that the sanitizer build sees leaks and
// overflows), architecture limits and error kinds, the parse_tensor_fn use-after-free, states of
// another batch size, and what atomic saves keep (mode, symlinks) and leave behind (no temp files).
#include <fcntl.h>
#include <gtest/gtest.h>

#include "error_of.h"
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <random>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "test_support.h"
#include "tracetorch/tracetorch.h"
#include "tracetorch/io/atomic_file.h"

namespace fs = std::filesystem;

namespace {

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// ---- the generated hostile files ----------------------------------------------------------------

TEST(HostileFiles, EveryGeneratedFileFailsWithItsError) {
  if (tt_test::python().empty()) GTEST_SKIP() << "no python3 with torch";
  tt_test::TempDir dir;
  std::string output;
  const std::string generator = tt_test::source_dir() + "/tests/python/hostile_files.py";
  ASSERT_EQ(tt_test::run_command(tt_test::python() + " " + generator + " " + dir.path(), &output), 0) << output;
  const auto manifest = nlohmann::json::parse(tt_test::read_text(dir.file("manifest.json")));
  ASSERT_GE(manifest.size(), 15u);
  for (const auto& c : manifest) {
    const std::string name = c["name"], path = dir.file(c["file"]);
    const bool pt = c["kind"] == "pt";
    auto load = [&] {
      if (pt) tt::io::load_pt(path);
      else tt::arch::load(path);
    };
    if (c["expect"].is_null()) {
      EXPECT_NO_THROW(load()) << name;
      continue;
    }
    const std::string msg = pt ? error_of<tt::FileError>(load) : error_of<tt::Error>(load);
    EXPECT_NE(msg.find(path), std::string::npos) << name << ": " << msg;
    EXPECT_NE(msg.find(c["expect"].get<std::string>()), std::string::npos) << name << ": " << msg;
  }
}

// ---- architecture documents ---------------------------------------------------------------------

tt::arch::json nested_sequentials(size_t depth) {
  tt::arch::json leaf = {{"type", "Linear"}, {"in_features", 2}, {"out_features", 2}};
  tt::arch::json node = leaf;
  for (size_t i = 0; i < depth; ++i) node = {{"type", "Sequential"}, {"children", tt::arch::json::array({std::move(node)})}};
  return {{"format", "tt-arch/1"}, {"model", std::move(node)}};
}

TEST(ArchLimits, NestingIsBoundedWithoutRecursion) {
  // Within the limit: builds, and every level is there.
  tt::Sequential ok = tt::arch::build(nested_sequentials(40));
  EXPECT_EQ(ok->named_modules().size(), 41u);
  // A document deeper than a stack can recurse: a clear error, no crash.
  const std::string msg = error_of<tt::ArchError>([] { tt::arch::build(nested_sequentials(20000)); });
  EXPECT_NE(msg.find("model.children[0].children[0]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("nested deeper than " + std::to_string(tt::arch::kMaxDepth) + " levels"), std::string::npos)
      << msg;
  EXPECT_LT(msg.size(), 400u) << msg;
  // The limit is exact: kMaxDepth levels pass the check (and fail later for another reason).
  tt::arch::json deep = tt::arch::json::array();
  for (size_t i = 2; i < tt::arch::kMaxDepth; ++i) deep = tt::arch::json::array({std::move(deep)});
  const std::string at_limit = error_of<tt::ArchError>([&] { tt::arch::build({{"format", "tt-arch/1"}, {"model", deep}}); });
  EXPECT_EQ(at_limit.find("nested deeper"), std::string::npos) << at_limit;
  const std::string over = error_of<tt::ArchError>(
      [&] { tt::arch::build({{"format", "tt-arch/1"}, {"model", tt::arch::json::array({deep})}}); });
  EXPECT_NE(over.find("nested deeper"), std::string::npos) << over;
}

TEST(ArchLimits, ErrorsHaveTheRightKindAndPath) {
  using tt::arch::json;
  auto doc = [](json model) { return json{{"format", "tt-arch/1"}, {"model", std::move(model)}}; };
  std::string msg = error_of<tt::ArchError>([&] { tt::arch::build(doc({{"type", 1}})); });
  EXPECT_NE(msg.find("model.type"), std::string::npos) << msg;
  msg = error_of<tt::ArchError>([&] {
    tt::arch::build(doc({{"type", "Sequential"},
                         {"children", json::array({{{"type", "snn.LIB"}, {"num_neurons", UINT64_MAX}}})}}));
  });
  EXPECT_NE(msg.find("model.children[0].num_neurons: 18446744073709551615 is out of range"), std::string::npos) << msg;
  msg = error_of<tt::ArchError>([&] {
    tt::arch::build(doc({{"type", "Sequential"},
                         {"children", json::array({{{"type", "Conv2d"}, {"in_channels", 1}, {"out_channels", 1},
                                                    {"kernel_size", json::array({3, UINT64_MAX})}}})}}));
  });
  EXPECT_NE(msg.find("model.children[0].kernel_size: 18446744073709551615 is out of range"), std::string::npos) << msg;
  // A long value is shortened in the message; invalid UTF-8 from memory does not throw elsewhere.
  msg = error_of<tt::ArchError>([&] {
    tt::arch::build(doc({{"type", "Sequential"},
                         {"children", json::array({{{"type", "snn.LIB"}, {"num_neurons", std::string(100000, 'x')}}})}}));
  });
  EXPECT_LT(msg.size(), 300u) << msg;
  msg = error_of<tt::ArchError>([&] {
    tt::arch::build(doc({{"type", "Sequential"}, {"children", json::array({{{"type", "snn.LIB"}, {"num_neurons", "\xff"}}})}}));
  });
  EXPECT_NE(msg.find("expected an integer"), std::string::npos) << msg;

  tt_test::TempDir dir;
  msg = error_of<tt::FileError>([&] { tt::arch::load(dir.path()); });
  EXPECT_NE(msg.find(dir.path() + ": is a directory"), std::string::npos) << msg;
  msg = error_of<tt::FileError>([&] { tt::arch::load(dir.file("missing.json")); });
  EXPECT_NE(msg.find("missing.json: cannot open architecture file: No such file"), std::string::npos) << msg;
}

// ---- parse_tensor_fn (the strtod read of a destroyed temporary; shows under ASan) -------------

TEST(FunctionalStrings, ParsesShortAndHeapAllocatedNumbers) {
  namespace F = tt::functional;
  const auto x = torch::linspace(-2, 2, 17);
  // Short numbers fit the small-string buffer, long ones are on the heap: both must parse.
  EXPECT_TRUE(torch::equal(F::parse_tensor_fn("round_ste(0.5)")(x), F::round_ste(x, 0.5)));
  const std::string long_number = "round_ste(0.25000000000000000000000000000000000000000000)";
  EXPECT_EQ(F::parse_tensor_fn(long_number).name, "round_ste(0.25)");
  EXPECT_TRUE(torch::equal(F::parse_tensor_fn(long_number)(x), F::round_ste(x, 0.25)));
  EXPECT_THROW(F::parse_tensor_fn("round_ste(0.25000000000000000000000000000000000000000000x)"), tt::ValueError);
}

// ---- states of another batch size ---------------------------------------------------------------

TEST(HostileStates, ABatchSizeMismatchNamesTheLayerAndState) {
  using tt::arch::json;
  for (const json& layer : {json{{"type", "snn.LIB"}, {"num_neurons", 4}},
                            json{{"type", "rnn.GRU"}, {"in_features", 4}, {"out_features", 4}},
                            json{{"type", "ssm.S5"}, {"num_neurons", 4}}}) {
    const std::string type = layer["type"];
    tt::Sequential net = tt::arch::build(
        {{"format", "tt-arch/1"},
         {"model", {{"type", "Sequential"},
                    {"children", json::array({{{"type", "Linear"}, {"in_features", 2}, {"out_features", 4}}, layer})}}}});
    torch::NoGradGuard no_grad;
    net->forward(torch::randn({3, 2}));
    const tt::io::TensorDict states = tt::save_states(*net);
    tt::zero_states(*net);
    tt::load_states(*net, states);
    const std::string msg = error_of<tt::ValueError>([&] { net->forward(torch::randn({5, 2})); });
    EXPECT_NE(msg.find(type), std::string::npos) << msg;
    EXPECT_NE(msg.find("state '"), std::string::npos) << msg;
    EXPECT_NE(msg.find("does not fit an input of shape [5, 4]"), std::string::npos) << type << ": " << msg;
  }
}

// ---- atomic saves ---------------------------------------------------------------------------------

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

TEST(AtomicSaves, KeepTheTargetsMode) {
  tt_test::TempDir dir;
  const std::string path = dir.file("w.pt");
  for (mode_t mode : {mode_t{0600}, mode_t{0640}, mode_t{0755}, mode_t{0604}}) {
    tt_test::write_text(path, "old");
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    tt::io::save_tensor(torch::ones({2}), path);
    EXPECT_EQ(mode_of(path), mode);
    EXPECT_TRUE(torch::equal(tt::io::load_tensor(path), torch::ones({2})));
  }
  // A new file gets the usual 0666 minus umask.
  const mode_t mask = ::umask(022);
  ::umask(mask);
  tt::io::write_file_atomic("x", dir.file("new.bin"));
  EXPECT_EQ(mode_of(dir.file("new.bin")), 0666 & ~mask);
}

TEST(AtomicSaves, WriteThroughSymlinks) {
  tt_test::TempDir dir;
  fs::create_directories(dir.file("real"));
  tt_test::write_text(dir.file("real/w.pt"), "old");
  fs::create_symlink("real/w.pt", dir.file("relative.pt"));
  fs::create_symlink(dir.file("relative.pt"), dir.file("chain.pt"));
  fs::create_symlink("real/new.pt", dir.file("dangling.pt"));
  tt::io::save_tensor(torch::full({3}, 1.0), dir.file("relative.pt"));
  EXPECT_TRUE(fs::is_symlink(dir.file("relative.pt")));
  EXPECT_TRUE(torch::equal(tt::io::load_tensor(dir.file("real/w.pt")), torch::full({3}, 1.0)));
  tt::io::save_tensor(torch::full({3}, 2.0), dir.file("chain.pt"));
  EXPECT_TRUE(fs::is_symlink(dir.file("chain.pt")));
  EXPECT_TRUE(torch::equal(tt::io::load_tensor(dir.file("real/w.pt")), torch::full({3}, 2.0)));
  tt::io::save_tensor(torch::full({3}, 3.0), dir.file("dangling.pt"));
  EXPECT_TRUE(fs::is_symlink(dir.file("dangling.pt")));
  EXPECT_TRUE(torch::equal(tt::io::load_tensor(dir.file("real/new.pt")), torch::full({3}, 3.0)));
  EXPECT_EQ(list_dir(dir.file("real")), (std::vector<std::string>{"new.pt", "w.pt"}));
  fs::create_symlink("loop.pt", dir.file("loop.pt"));
  const std::string msg = error_of<tt::FileError>([&] { tt::io::write_file_atomic("x", dir.file("loop.pt")); });
  EXPECT_NE(msg.find("too many levels of symbolic links"), std::string::npos) << msg;
}

TEST(AtomicSaves, ASuccessfulSaveRemovesLeftoversOfKilledWriters) {
  tt_test::TempDir dir;
  const std::string stale = dir.file(".w.pt.tmp-123-4-deadbeef");
  const std::string other_stale = dir.file(".other.pt.tmp-9-0-0123abcd");
  const std::string busy = dir.file(".x.pt.tmp-77-1-cafef00d");
  const std::string unrelated = dir.file(".w.pt.tmp-mine");
  for (const auto& p : {stale, other_stale, busy, unrelated}) tt_test::write_text(p, "partial");
  // A live writer holds its lock: its file must survive.
  const int fd = ::open(busy.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);
  tt::io::save_tensor(torch::ones({2}), dir.file("w.pt"));
  ::close(fd);
  EXPECT_EQ(list_dir(dir.path()), (std::vector<std::string>{".w.pt.tmp-mine", ".x.pt.tmp-77-1-cafef00d", "w.pt"}));
}

TEST(AtomicSaves, AnUncommittedFileChangesNothing) {
  tt_test::TempDir dir;
  const std::string path = dir.file("w.bin");
  tt_test::write_text(path, "old");
  {
    tt::io::AtomicFile file(path);
    file.write("new", 3);
  }
  EXPECT_EQ(tt_test::read_text(path), "old");
  EXPECT_EQ(list_dir(dir.path()), std::vector<std::string>{"w.bin"});
  {
    tt::io::AtomicFile file(path);
    for (int i = 0; i < 1000; ++i) file.write("0123456789", 10);
    file.commit();
    EXPECT_THROW(file.write("x", 1), tt::FileError);
    EXPECT_THROW(file.commit(), tt::FileError);
  }
  EXPECT_EQ(tt_test::read_text(path).size(), 10000u);
  EXPECT_EQ(list_dir(dir.path()), std::vector<std::string>{"w.bin"});
}

TEST(AtomicSaves, WritersKilledAtRandomMomentsLeaveTheOldOrTheNewFile) {
  tt_test::TempDir dir;
  const std::string path = dir.file("w.bin");
  // Versions differ in every byte and in length, so a torn or mixed file matches none of them.
  std::vector<std::string> versions;
  for (int v = 0; v < 4; ++v) versions.push_back(std::string((size_t{1} << 20) + 4099 * v, static_cast<char>('a' + v)));
  tt::io::write_file_atomic(versions[0], path);
  std::mt19937 rng(20261206);
  const auto start = std::chrono::steady_clock::now();
  int kills = 0, leftovers = 0;
  while (kills < 150 && std::chrono::steady_clock::now() - start < std::chrono::seconds(25)) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {  // the writer: saves until it is killed
      for (size_t i = 1;; ++i) tt::io::write_file_atomic(versions[i % versions.size()], path);
    }
    ::usleep(static_cast<useconds_t>(rng() % 40000));
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the writer stopped by itself: status " << status;
    ++kills;
    const std::string now = tt_test::read_text(path);
    ASSERT_NE(std::find(versions.begin(), versions.end(), now), versions.end())
        << "after kill " << kills << " the file has " << now.size() << " bytes that are no complete version";
    leftovers = std::max(leftovers, static_cast<int>(list_dir(dir.path()).size()) - 1);
  }
  EXPECT_GE(kills, 100);
  // Whatever the killed writers left, the next successful save removes it.
  tt::io::write_file_atomic(versions[1], path);
  EXPECT_EQ(list_dir(dir.path()), std::vector<std::string>{"w.bin"}) << "at most " << leftovers << " were left";
  EXPECT_EQ(tt_test::read_text(path), versions[1]);
}

}  // namespace
