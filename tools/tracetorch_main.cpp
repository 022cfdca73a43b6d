// The `tracetorch` command-line program.
//
//   tracetorch run --arch A.json --weights W.pt --inputs X.pt --outputs Y.pt
//                  [--states S.pt] [--save-states OUT.pt] [--compile] ...
//   tracetorch run --model NET.pt --inputs X.pt ...   (a one-file model: tt::save_model)
//   tracetorch run --nir NET.nir --dt 1e-3 --inputs X.pt --outputs Y.pt ...   (tools/run_nir.cpp)
//   tracetorch info FILE.pt       keys, dtypes and shapes of a .pt file
//   tracetorch arch A.json        the model an architecture file builds
//   tracetorch inspect|diff|filter|rename|convert ...   state_dict tools (tools/cmd_*.cpp)
//
// Any error: one line on stderr, exit code 1.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <optional>

#include "commands.h"
#include "run_nir.h"
#include "tracetorch/io/model_file.h"
#include "tracetorch/tracetorch.h"

namespace {

struct RunArgs {
  std::string model, arch, weights, inputs, outputs, states, save_states, save_weights, device = "cpu";
  bool compile = false, decompile = false, python_aliases = false, model_states = false;
  std::optional<uint64_t> seed;
  int threads = 0;
  tt_cli::NirArgs nir;
};

// The weights may be a compiled state_dict (`1.beta` instead of `1.raw_beta`): then the model is
// compiled first so that the keys match.
void load_weights(torch::nn::Module& model, const std::string& path) {
  tt::io::TensorDict dict = tt::io::load_tensor_dict(path);
  try {
    tt::load_state_dict(model, dict);
  } catch (const tt::LoadError& first) {
    tt::compile(model);
    try {
      tt::load_state_dict(model, dict);
    } catch (const tt::LoadError&) {
      tt::decompile(model);
      throw tt::LoadError(path + ": " + first.what());
    }
  }
}

// The 'model_states' a one-file model was saved with (tt::SaveModelOptions().include_states(true)).
void load_model_states(torch::nn::Module& model, const std::string& path, torch::Device device) {
  const c10::IValue file = tt::io::load_pt(path, tt::LoadOptions().map_location(device));
  if (file.isGenericDict())
    for (const auto& entry : file.toGenericDict())
      if (entry.key().isString() && entry.key().toStringRef() == "model_states") {
        tt::load_states(model, tt::io::to_tensor_dict(entry.value(), path + ": 'model_states'"));
        return;
      }
  throw tt::FileError(path + ": --model-states, but the file has no 'model_states' (saved without include_states)");
}

int run(const RunArgs& a) {
  if (a.threads > 0) torch::set_num_threads(a.threads);
  const torch::Device device(a.device);
  if (a.nir.path.empty() && a.model.empty() && (a.arch.empty() || a.weights.empty()))
    throw tt::Error("run needs --model, --arch and --weights, or --nir");
  if (a.model_states && a.model.empty()) throw tt::Error("--model-states needs --model");
  tt_cli::SteppedModel loaded = a.nir.path.empty() ? tt_cli::SteppedModel{} : tt_cli::load_nir_model(a.nir);
  if (!a.model.empty()) {
    tt::Sequential sequential = tt::load_model(a.model);
    loaded = {sequential.ptr(), [sequential](const torch::Tensor& x) mutable { return sequential->forward(x); }};
  } else if (a.nir.path.empty()) {
    tt::Sequential sequential = tt::arch::load(a.arch);
    loaded = {sequential.ptr(), [sequential](const torch::Tensor& x) mutable { return sequential->forward(x); }};
  }
  const auto& model = loaded.module;
  if (!a.weights.empty()) load_weights(*model, a.weights);
  model->to(device);
  if (a.compile) tt::compile(*model);
  if (a.decompile) tt::decompile(*model);
  if (!a.save_weights.empty()) tt::save_state_dict(*model, a.save_weights);

  tt::zero_states(*model);
  if (a.model_states) load_model_states(*model, a.model, device);
  if (!a.states.empty()) tt::load_states(*model, a.states, tt::LoadOptions().map_location(device));

  const torch::Tensor inputs = tt::io::load_tensor(a.inputs, tt::LoadOptions().map_location(device));
  if (inputs.dim() < 1) throw tt::Error(a.inputs + ": inputs must be time-major [T, ...], got a 0-d tensor");
  if (a.seed) torch::manual_seed(*a.seed);

  torch::NoGradGuard no_grad;
  model->eval();
  std::vector<torch::Tensor> outputs;
  outputs.reserve(static_cast<size_t>(inputs.size(0)));
  for (int64_t t = 0; t < inputs.size(0); ++t) outputs.push_back(loaded.step(inputs[t]));
  if (!a.outputs.empty()) {
    torch::Tensor stacked = outputs.empty() ? torch::empty({0}) : torch::stack(outputs).cpu();
    tt::io::save_tensor(stacked, a.outputs);
  }
  if (!a.save_states.empty()) {
    tt::save_states(*model, a.save_states, tt::SaveStatesOptions().python_aliases(a.python_aliases));
  }
  return 0;
}

int info(const std::string& path) {
  const c10::IValue value = tt::io::load_pt(path);
  std::function<void(const c10::IValue&, const std::string&)> show = [&](const c10::IValue& v, const std::string& key) {
    if (v.isTensor()) {
      const auto& t = v.toTensor();
      std::cout << (key.empty() ? "<tensor>" : key) << "\t" << t.dtype() << "\t" << t.sizes() << "\n";
    } else if (v.isGenericDict()) {
      for (const auto& item : v.toGenericDict()) {
        const std::string k = item.key().isString() ? item.key().toStringRef()
                              : item.key().isInt()  ? std::to_string(item.key().toInt())
                                                    : item.key().tagKind();
        show(item.value(), key.empty() ? k : key + "/" + k);
      }
    } else {
      std::cout << key << "\t" << v.tagKind() << "\n";
    }
  };
  show(value, "");
  return 0;
}

int arch(const std::string& path) {
  tt::Sequential model = tt::arch::load(path);
  std::cout << *model << "\n";
  size_t count = 0;
  for (const auto& p : model->parameters()) count += static_cast<size_t>(p.numel());
  std::cout << "parameters: " << count << "\n";
  for (const auto& [p, layer] : tt::named_layers(*model)) {
    std::cout << "layer " << p << " (" << layer->type_name() << ") states:";
    for (const auto& s : layer->state_names()) std::cout << " " << s;
    std::cout << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tracetorch: stateful neural networks (SNN, RNN, SSM) on LibTorch"};
  app.require_subcommand(1);

  RunArgs r;
  auto* run_cmd = app.add_subcommand("run", "run a model over time-major inputs one step at a time");
  CLI::Option* nir = tt_cli::add_nir_options(*run_cmd, r.nir);
  CLI::Option* model_file = run_cmd->add_option("--model", r.model, "one-file model (tt::save_model)")->excludes(nir);
  run_cmd->add_flag("--model-states", r.model_states, "start from the hidden states stored in the --model file");
  run_cmd->add_option("--arch", r.arch, "architecture JSON (tt-arch/1)")->excludes(nir)->excludes(model_file);
  run_cmd->add_option("--weights", r.weights, "state_dict .pt (Python torch.save or ours)")->excludes(model_file);
  run_cmd->add_option("--inputs", r.inputs, "inputs .pt, one tensor [T, ...]")->required();
  run_cmd->add_option("--outputs", r.outputs, "where to write the stacked outputs [T, ...]");
  run_cmd->add_option("--states", r.states, "start from these states instead of zeros");
  run_cmd->add_option("--save-states", r.save_states, "write the final states here");
  run_cmd->add_flag("--python-aliases", r.python_aliases, "also write Python traceTorch's alias state keys");
  run_cmd->add_flag("--compile", r.compile, "compile constrained parameters before running");
  run_cmd->add_flag("--decompile", r.decompile, "decompile after loading (e.g. compiled weights)");
  run_cmd->add_option("--save-weights", r.save_weights, "write the (compiled / decompiled) state_dict here");
  run_cmd->add_option("--seed", r.seed, "torch::manual_seed right before step 0 (stochastic quantizers)");
  run_cmd->add_option("--device", r.device, "device to run on (cpu, cuda, cuda:1)");
  run_cmd->add_option("--threads", r.threads, "intra-op threads (default: LibTorch's)");

  std::string info_path;
  auto* info_cmd = app.add_subcommand("info", "list the keys, dtypes and shapes of a .pt file");
  info_cmd->add_option("file", info_path)->required();

  std::string arch_path;
  auto* arch_cmd = app.add_subcommand("arch", "build an architecture file and describe the model");
  arch_cmd->add_option("file", arch_path)->required();

  const std::vector<std::pair<std::string, tt_cli::Command>> tools = {
      {"inspect", tt_cli::add_inspect(app)}, {"diff", tt_cli::add_diff(app)},       {"filter", tt_cli::add_filter(app)},
      {"rename", tt_cli::add_rename(app)},   {"convert", tt_cli::add_convert(app)}};

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (*run_cmd) return run(r);
    if (*info_cmd) return info(info_path);
    if (*arch_cmd) return arch(arch_path);
    for (const auto& [name, command] : tools)
      if (app.got_subcommand(name)) return command();
  } catch (const std::exception& e) {
    std::string message = e.what();
    // c10 errors carry a backtrace after the first line: keep the message to one line.
    const auto newline = message.find('\n');
    if (newline != std::string::npos) message = message.substr(0, newline);
    std::fprintf(stderr, "tracetorch: error: %s\n", message.c_str());
    return 1;
  }
  return 0;
}
