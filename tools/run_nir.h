#pragma once
// `tracetorch run --nir FILE --dt DT [--discretisation euler|exact]`: the NIR side of the run
// subcommand (options and model loading); the stepping, states and outputs are run's own.
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>

namespace tt_cli {

struct NirArgs {
  std::string path;
  double dt = 0;
  std::string discretisation = "euler";
  std::string dtype = "float32";
};

// Adds --nir, --dt, --discretisation and --dtype to the run subcommand; returns the --nir option.
CLI::Option* add_nir_options(CLI::App& run, NirArgs& args);

// A model with its one-step function.
struct SteppedModel {
  std::shared_ptr<torch::nn::Module> module;
  std::function<torch::Tensor(const torch::Tensor&)> step;
};

// The graph of a NIR file as a model, its parameters in --dtype. Its step takes [batch, input
// shape...] (or no batch axis), converted to that dtype.
SteppedModel load_nir_model(const NirArgs& args);

}  // namespace tt_cli
