// The golden suite: every case of ../shared/golden (made with Python traceTorch) run through the
// `tracetorch run` program, checking outputs, mid and final states, resume from states_mid.pt,
// and compile / decompile against the manifest tolerances. Cases whose layer types are not
// registered are reported as skipped, never dropped.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_support.h"
#include "tracetorch/tracetorch.h"

namespace {

using json = nlohmann::json;

// Parsed once; a reference so that range-for loops over its members never dangle.
const json& manifest() {
  static const json parsed = [] {
    std::ifstream in(tt_test::shared_dir() + "/golden/manifest.json");
    return json::parse(in);
  }();
  return parsed;
}

std::vector<std::string> case_names() {
  std::vector<std::string> names;
  for (const auto& c : manifest()["cases"]) names.push_back(c["name"].get<std::string>());
  return names;
}

std::string cli() { return tt_test::binary_dir() + "/tools/tracetorch"; }

class Golden : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    for (const auto& c : manifest()["cases"])
      if (c["name"] == GetParam()) spec_ = c;
    dir_ = tt_test::shared_dir() + "/golden/cases/" + GetParam() + "/";
    const auto registry = tt::arch::default_registry();
    for (const auto& layer : spec_["layers"]) {
      const std::string type = layer.get<std::string>();
      if (!registry.contains(type)) GTEST_SKIP() << "layer type " << type << " is not implemented yet";
    }
    atol_ = spec_["tolerance"]["atol"].get<double>();
    rtol_ = spec_["tolerance"]["rtol"].get<double>();
  }

  // Runs the CLI; fails the test with its output on a non-zero exit.
  void run(const std::string& args) {
    std::string output;
    const int code = tt_test::run_command(cli() + " run --threads 1 --arch " + dir_ + "arch.json " + args, &output);
    ASSERT_EQ(code, 0) << output;
  }

  void expect_close(const torch::Tensor& actual, const torch::Tensor& expected, const std::string& what) {
    ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
    ASSERT_EQ(actual.dtype(), expected.dtype()) << what;
    EXPECT_TRUE(torch::allclose(actual, expected, rtol_, atol_))
        << what << ": max abs diff " << (actual - expected).abs().max().item<double>();
  }

  // Compares our canonical-key states file with a Python one (which also has alias keys).
  void expect_states(const std::string& ours, const std::string& python) {
    const auto actual = tt::io::load_tensor_dict(ours);
    const auto expected = tt::io::load_tensor_dict(python);
    std::vector<std::string> keys;
    for (const auto& item : actual) keys.push_back(item.key());
    std::vector<std::string> canonical = spec_["state_keys_canonical"].get<std::vector<std::string>>();
    std::sort(keys.begin(), keys.end());
    std::sort(canonical.begin(), canonical.end());
    EXPECT_EQ(keys, canonical);
    for (const auto& key : canonical) {
      ASSERT_TRUE(actual.contains(key)) << key;
      expect_close(actual[key], expected[key], "state " + key);
      const auto shape = spec_["state_shapes"][key].get<std::vector<int64_t>>();
      EXPECT_EQ(actual[key].sizes().vec(), shape) << key;
    }
  }

  void expect_state_dicts(const std::string& ours, const std::string& python, double atol) {
    const auto actual = tt::io::load_tensor_dict(ours);
    const auto expected = tt::io::load_tensor_dict(python);
    ASSERT_EQ(actual.keys(), expected.keys());  // same keys in the same (PyTorch) order
    for (const auto& item : expected)
      EXPECT_TRUE(torch::allclose(actual[item.key()], item.value(), rtol_, atol)) << item.key();
  }

  std::string seed_arg() const {
    return spec_["stochastic"].get<bool>() ? " --seed " + std::to_string(spec_["rng"]["seed"].get<uint64_t>()) : "";
  }

  json spec_;
  std::string dir_;
  double atol_ = 0, rtol_ = 0;
  tt_test::TempDir tmp_;
};

TEST_P(Golden, OutputsAndFinalStates) {
  run("--weights " + dir_ + "weights.pt --inputs " + dir_ + "inputs.pt --outputs " + tmp_.file("out.pt") +
      " --save-states " + tmp_.file("final.pt") + seed_arg());
  expect_close(tt::io::load_tensor(tmp_.file("out.pt")), tt::io::load_tensor(dir_ + "outputs.pt"), "outputs");
  expect_states(tmp_.file("final.pt"), dir_ + "states_final.pt");
}

TEST_P(Golden, MidStatesAndResume) {
  if (spec_["stochastic"].get<bool>()) GTEST_SKIP() << "the RNG stream of a resumed stochastic run differs by design";
  const torch::Tensor inputs = tt::io::load_tensor(dir_ + "inputs.pt");
  const torch::Tensor outputs = tt::io::load_tensor(dir_ + "outputs.pt");
  const int64_t split = spec_["split_step"].get<int64_t>();
  tt::io::save_tensor(inputs.slice(0, 0, split), tmp_.file("first.pt"));
  tt::io::save_tensor(inputs.slice(0, split), tmp_.file("second.pt"));

  run("--weights " + dir_ + "weights.pt --inputs " + tmp_.file("first.pt") + " --save-states " + tmp_.file("mid.pt"));
  expect_states(tmp_.file("mid.pt"), dir_ + "states_mid.pt");

  // Resume from the Python-written states (with its alias keys) in a new process.
  run("--weights " + dir_ + "weights.pt --inputs " + tmp_.file("second.pt") + " --states " + dir_ +
      "states_mid.pt --outputs " + tmp_.file("rest.pt") + " --save-states " + tmp_.file("final.pt"));
  expect_close(tt::io::load_tensor(tmp_.file("rest.pt")), outputs.slice(0, split), "resumed outputs");
  expect_states(tmp_.file("final.pt"), dir_ + "states_final.pt");
}

TEST_P(Golden, CompileAndDecompile) {
  run("--weights " + dir_ + "weights.pt --inputs " + dir_ + "inputs.pt --compile --outputs " + tmp_.file("out.pt") +
      " --save-weights " + tmp_.file("compiled.pt") + seed_arg());
  expect_close(tt::io::load_tensor(tmp_.file("out.pt")), tt::io::load_tensor(dir_ + "outputs_compiled.pt"),
               "compiled outputs");
  expect_state_dicts(tmp_.file("compiled.pt"), dir_ + "weights_compiled.pt", atol_);

  // Python's compiled weights load into a compiled model; decompiling gives Python's raw values.
  run("--weights " + dir_ + "weights_compiled.pt --inputs " + dir_ + "inputs.pt --decompile --save-weights " +
      tmp_.file("decompiled.pt"));
  expect_state_dicts(tmp_.file("decompiled.pt"), dir_ + "weights_decompiled.pt", std::max(atol_, 1e-5));
}

INSTANTIATE_TEST_SUITE_P(Cases, Golden, ::testing::ValuesIn(case_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (auto& ch : name)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return name;
                         });

// Reports how many cases run and how many are skipped for unimplemented layer types.
TEST(GoldenCoverage, EveryCaseIsRunOrReportedSkipped) {
  const auto registry = tt::arch::default_registry();
  int runnable = 0;
  std::vector<std::string> skipped;
  for (const auto& c : manifest()["cases"]) {
    bool ok = true;
    for (const auto& layer : c["layers"]) ok = ok && registry.contains(layer.get<std::string>());
    ASSERT_TRUE(std::filesystem::exists(tt_test::shared_dir() + "/golden/cases/" + c["name"].get<std::string>()));
    if (ok) {
      ++runnable;
    } else {
      skipped.push_back(c["name"].get<std::string>());
    }
  }
  std::cout << "[golden] " << runnable << " cases run, " << skipped.size() << " skipped (layer types not implemented)";
  for (const auto& s : skipped) std::cout << " " << s;
  std::cout << "\n";
  EXPECT_GT(runnable, 0);
}

}  // namespace
