// Model-level state management over arbitrary module trees: keys, zero / detach, transactional
// and strict loading, Python alias keys, devices, state_dict loading.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "test_support.h"
#include "tracetorch/tracetorch.h"

namespace {

// A custom model holding layers in a Sequential, a ModuleList, a ModuleDict and a member.
struct NetImpl : tt::Model {
  NetImpl() {
    net = register_module("net", torch::nn::Sequential(torch::nn::Linear(3, 4), tt::snn::LIB(4)));
    blocks = register_module("blocks", torch::nn::ModuleList(tt::snn::SLI(4), tt::snn::DLIT(4)));
    std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>> head_modules = {
        {"out", std::make_shared<tt::snn::NeuronImpl>(tt::snn::LIOptions(4))}};
    heads = register_module("heads", torch::nn::ModuleDict(head_modules));
    readout = register_module("readout", tt::snn::RLIB(4));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto h = net->forward(x);
    for (const auto& block : *blocks) h = block->as<tt::snn::NeuronImpl>()->forward(h);
    h = heads["out"]->as<tt::snn::NeuronImpl>()->forward(h);
    return readout(h);
  }
  torch::nn::Sequential net{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::ModuleDict heads{nullptr};
  tt::snn::RLIB readout{nullptr};
};
TORCH_MODULE(Net);

std::vector<std::string> sorted_keys(const tt::io::TensorDict& d) {
  auto k = d.keys();
  std::sort(k.begin(), k.end());
  return k;
}

TEST(Model, SaveStatesUsesPathKeysForEveryContainerKind) {
  Net net;
  EXPECT_TRUE(net->save_states().is_empty());  // nothing ran yet
  net->forward(torch::randn({2, 3}));
  const auto states = net->save_states();
  EXPECT_EQ(sorted_keys(states),
            (std::vector<std::string>{"blocks.0.mem", "blocks.0.syn", "blocks.1.neg_mem", "blocks.1.pos_mem",
                                      "heads.out.mem", "net.1.mem", "readout.mem", "readout.prev_output",
                                      "readout.rec"}));
  // Detached clones, not the live tensors.
  EXPECT_FALSE(states["net.1.mem"].is_same(net->net[1]->as<tt::snn::NeuronImpl>()->state("mem")));
  EXPECT_TRUE(torch::equal(states["net.1.mem"], net->net[1]->as<tt::snn::NeuronImpl>()->state("mem")));
}

TEST(Model, ZeroAndDetachReachEveryLayer) {
  Net net;
  auto x = torch::randn({2, 3}, torch::requires_grad());
  net->forward(x);
  net->detach_states();
  for (const auto& [path, layer] : tt::named_layers(*net))
    for (const auto& name : layer->state_names()) EXPECT_FALSE(layer->state(name).requires_grad()) << path << name;
  net->zero_states();
  for (const auto& [path, layer] : tt::named_layers(*net))
    for (const auto& name : layer->state_names()) EXPECT_FALSE(layer->state(name).defined()) << path << name;
}

TEST(Model, ResumingFromSavedStatesGivesIdenticalOutputs) {
  torch::manual_seed(3);
  Net a;
  const auto x = torch::randn({10, 2, 3});
  std::vector<torch::Tensor> expected;
  tt::io::TensorDict mid;
  for (int t = 0; t < 10; ++t) {
    if (t == 5) mid = a->save_states();
    expected.push_back(a->forward(x[t]));
  }
  Net b;
  tt::load_state_dict(*b, tt::state_dict(*a));
  const auto report = b->load_states(mid);
  EXPECT_EQ(report.loaded.size(), 9u);
  for (int t = 5; t < 10; ++t) EXPECT_TRUE(torch::equal(b->forward(x[t]), expected[t])) << t;
}

TEST(Model, ShapeMismatchIsAnErrorNamingKeyAndShapesAndChangesNothing) {
  Net net;
  net->forward(torch::randn({2, 3}));
  const auto before = net->save_states();
  auto states = before;
  for (auto& item : states) item.value() = torch::full_like(item.value(), 7.0);
  states["blocks.0.mem"] = torch::zeros({9, 4});
  try {
    net->load_states(states);
    FAIL() << "expected a LoadError";
  } catch (const tt::LoadError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("Shape mismatch for blocks.0.mem: expected [2, 4], got [9, 4]"), std::string::npos) << msg;
  }
  const auto after = net->save_states();
  for (const auto& item : before) EXPECT_TRUE(torch::equal(after[item.key()], item.value())) << item.key();
}

TEST(Model, UndefinedStatesStillRejectAWrongFeatureSize) {
  Net net;
  tt::io::TensorDict states;
  states.insert("readout.mem", torch::zeros({2, 5}));
  try {
    net->load_states(states, tt::LoadOptions().strict(false));
    FAIL();
  } catch (const tt::LoadError& e) {
    EXPECT_NE(std::string(e.what()).find("readout.mem"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[2, 5]"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(net->readout->state("mem").defined());
}

TEST(Model, StrictLoadingListsEveryMissingAndUnexpectedKey) {
  Net net;
  net->forward(torch::randn({2, 3}));
  auto states = net->save_states();
  auto partial = tt::io::TensorDict();
  for (const auto& item : states)
    if (item.key() != "readout.rec" && item.key() != "net.1.mem") partial.insert(item.key(), item.value());
  partial.insert("bogus.mem", torch::zeros({2, 4}));
  try {
    net->load_states(partial);
    FAIL();
  } catch (const tt::LoadError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("Missing states for: [net.1.mem, readout.rec]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("Unexpected states: [bogus.mem]"), std::string::npos) << msg;
  }
  net->zero_states();
  const auto report = net->load_states(partial, tt::LoadOptions().strict(false));
  EXPECT_EQ(report.missing, (std::vector<std::string>{"net.1.mem", "readout.rec"}));
  EXPECT_EQ(report.unexpected, (std::vector<std::string>{"bogus.mem"}));
  EXPECT_EQ(report.loaded.size(), 7u);
  EXPECT_NE(report.summary().find("Loaded 7 states"), std::string::npos);
  EXPECT_FALSE(net->readout->state("rec").defined());
}

TEST(Model, PythonAliasKeysAreAcceptedAndCrossChecked) {
  Net net;
  net->forward(torch::randn({2, 3}));
  tt::SaveStatesOptions with_aliases;
  with_aliases.python_aliases(true);
  const auto states = net->save_states(with_aliases);
  // 2^depth spellings per state: net.1.mem has depth 2 -> 4 keys.
  for (const auto* key : {"net.1.mem", "net._modules[1].mem", "._modules[net].1.mem", "._modules[net]._modules[1].mem"})
    EXPECT_TRUE(states.contains(key)) << key;
  // depth 1 (readout: 3 states) -> 2 spellings each; depth 2 (the other 6 states) -> 4 each.
  EXPECT_EQ(states.size(), 3u * 2u + 6u * 4u);
  EXPECT_EQ(tt::canonical_state_key("._modules[heads]._modules[out].mem"), "heads.out.mem");

  Net fresh;
  const auto report = fresh->load_states(states);
  EXPECT_EQ(report.loaded.size(), 9u);
  EXPECT_EQ(report.aliases.size(), 30u - 9u);

  auto bad = states;
  bad["._modules[net].1.mem"] = bad["._modules[net].1.mem"] + 1;
  EXPECT_THROW(fresh->load_states(bad), tt::LoadError);
}

TEST(Model, AliasKeysMatchThePythonLibraryForANestedModel) {
  std::ifstream in(tt_test::shared_dir() + "/golden/manifest.json");
  const auto manifest = nlohmann::json::parse(in);
  for (const auto& c : manifest["cases"]) {
    if (c["name"] != "nested_DLIB_SLI") continue;
    auto model = tt::arch::load(tt_test::shared_dir() + "/golden/cases/nested_DLIB_SLI/arch.json");
    model->forward(torch::zeros({3, 5}));
    tt::SaveStatesOptions with_aliases;
    with_aliases.python_aliases(true);
    auto expected = c["state_keys_all"].get<std::vector<std::string>>();
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(sorted_keys(tt::save_states(*model, with_aliases)), expected);
    return;
  }
  FAIL() << "case nested_DLIB_SLI not in the manifest";
}

TEST(Model, StatesFollowTheRequestedDeviceAndKeepTheirDtype) {
  Net net;
  net->forward(torch::randn({2, 3}));
  auto states = net->save_states();
  for (auto& item : states) item.value() = item.value().to(torch::kFloat64);
  net->load_states(states, tt::LoadOptions().map_location(torch::Device("cpu")));
  EXPECT_EQ(net->readout->state("mem").dtype(), torch::kFloat64);
  EXPECT_EQ(net->readout->state("mem").device(), torch::Device("cpu"));
}

TEST(Model, StatesFilesRoundTripAndLoadInPython) {
  tt_test::TempDir dir;
  Net net;
  net->forward(torch::randn({2, 3}));
  net->save_states(dir.file("sub/states.pt"));
  Net other;
  const auto report = other->load_states(dir.file("sub/states.pt"));
  EXPECT_EQ(report.loaded.size(), 9u);
  EXPECT_TRUE(torch::equal(other->readout->state("rec"), net->readout->state("rec")));
  std::string out;
  const int code = tt_test::run_python(
      "import torch\n"
      "s = torch.load('" + dir.file("sub/states.pt") + "')\n"
      "assert isinstance(s, dict), type(s)\n"
      "assert sorted(s) == sorted(['blocks.0.mem','blocks.0.syn','blocks.1.neg_mem','blocks.1.pos_mem','heads.out.mem','net.1.mem','readout.mem','readout.prev_output','readout.rec']), sorted(s)\n"
      "assert s['net.1.mem'].shape == (2, 4)\n"
      "print('ok')\n",
      &out);
  EXPECT_EQ(code, 0) << out;
  try {
    other->load_states(dir.file("missing.pt"));
    FAIL();
  } catch (const tt::FileError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.pt"), std::string::npos);
  }
}

TEST(StateDict, StrictNonStrictAndSizeMismatch) {
  Net a, b;
  auto sd = tt::state_dict(*a);
  EXPECT_EQ(sd.keys().front(), "net.0.weight");
  EXPECT_TRUE(sd.contains("readout.raw_rec_weight"));
  auto partial = sd;
  partial.erase("net.0.bias");
  partial.insert("extra.weight", torch::zeros({1}));
  EXPECT_THROW(tt::load_state_dict(*b, partial), tt::LoadError);
  tt::LoadOptions loose;
  loose.strict(false);
  const auto report = tt::load_state_dict(*b, partial, loose);
  EXPECT_EQ(report.missing, std::vector<std::string>{"net.0.bias"});
  EXPECT_EQ(report.unexpected, std::vector<std::string>{"extra.weight"});
  EXPECT_TRUE(torch::equal(b->net[0]->as<torch::nn::Linear>()->weight, a->net[0]->as<torch::nn::Linear>()->weight));

  Net c;
  const auto c_before = tt::state_dict(*c)["blocks.0.raw_alpha"].clone();
  auto wrong = sd;
  wrong["net.0.weight"] = torch::zeros({5, 3});
  try {
    tt::load_state_dict(*c, wrong);
    FAIL();
  } catch (const tt::LoadError& e) {
    EXPECT_NE(std::string(e.what()).find("size mismatch for net.0.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[5, 3]"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("[4, 3]"), std::string::npos);
  }
  EXPECT_TRUE(torch::equal(tt::state_dict(*c)["blocks.0.raw_alpha"], c_before));  // nothing applied

  tt::io::TensorDict prefixed;
  for (const auto& item : sd) prefixed.insert("module." + item.key(), item.value());
  tt::LoadOptions strip;
  strip.strip_prefix("module.");
  EXPECT_TRUE(tt::load_state_dict(*c, prefixed, strip).complete());
}

TEST(StateDict, PythonStateDictLoadsIntoTheCppModelAndGivesTheSameOutputs) {
  tt_test::TempDir dir;
  auto model = tt::arch::load(tt_test::shared_dir() + "/golden/cases/snn_LIB/arch.json");
  tt::save_state_dict(*model, dir.file("w.pt"));
  std::string out;
  // Python reads our state_dict into an equivalent torch model (Linear part) with load_state_dict.
  const int code = tt_test::run_python(
      "import torch\n"
      "sd = torch.load('" + dir.file("w.pt") + "')\n"
      "assert list(sd) == ['0.weight', '0.bias', '1.raw_beta', '1.raw_threshold', '1.raw_bias'], list(sd)\n"
      "lin = torch.nn.Linear(5, 4)\n"
      "lin.load_state_dict({'weight': sd['0.weight'], 'bias': sd['0.bias']})\n"
      "print('ok')\n",
      &out);
  EXPECT_EQ(code, 0) << out;
}

}  // namespace
