#pragma once
// Echo state network models (torch_rc's ESNModel and premade architectures), their trainer,
// forecasting, and torch_rc-compatible save / load.
//
// Architectures (feedback x [batch, time, F], reservoir states h [batch, time, R]):
//   classic   readout([x, h])                 -> [batch, time, output_size]
//   ott       readout([x, h~]), h~ = h with every even-indexed unit (0, 2, 4, ...) squared
//   headless  h                               (no readout)
//   linear    h of an identity-activation reservoir (no readout)
//
// Module names (and so state_dict keys) are the ones torch_rc's pytorch_symbolic graph gives an
// equivalent model: "ReservoirLayer_1.{weight_feedback, weight_input, weight_hh, bias_h}" and
// "CGReadoutLayer_1.{weight, bias}". torch_rc's premade models build the reservoir with
// input_size = 0, hence a [R, 0] weight_input; we do the same so that files interchange.
//
// Files (save / load): a torch.save dict, readable with plain torch.load in Python:
//   {'state_dict': {key: tensor, ...},          parameters, in PyTorch's order
//    'metadata': {},                            torch_rc writes its **metadata kwargs here
//    'reservoir_states': {'ReservoirLayer_1': [batch, R]}}   only with include_states = true
// Saves create parent directories and are atomic (temp file + rename).
// load(path, strict, load_states):
//   - missing file, unreadable file, or no 'state_dict' entry: tt::FileError;
//   - size mismatch (always) or, with strict, missing / unexpected keys: tt::LoadError naming
//     every key; nothing is changed by a failing load;
//   - load_states without 'reservoir_states' in the file: a warning in the returned report
//     (torch_rc's UserWarning) and the load continues.
//
// forecast(warmup, horizon): teacher-forced warm-up over `warmup` [batch, W, F], then `horizon`
// autoregressive steps. Output step 0 is the model's output at the last warm-up step (the
// prediction of the value that follows the warm-up); step k > 0 is the output after feeding
// step k-1 back as the next input. Needs output_size == F. (torch_rc's alignment.)
#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>

#include "tracetorch/core/load_report.h"
#include "tracetorch/core/model.h"
#include "tracetorch/io/pt_file.h"
#include "tracetorch/rc/readout.h"
#include "tracetorch/rc/reservoir.h"

namespace tt::rc {

enum class ESNKind { Classic, Ott, Headless, Linear };
std::string to_string(ESNKind kind);

// The premade models' keyword arguments (torch_rc's defaults).
struct ESNOptions {
  TORCH_ARG(Topology, topology) = Topology::dense();
  TORCH_ARG(double, spectral_radius) = 0.9;
  TORCH_ARG(double, leak_rate) = 1.0;
  TORCH_ARG(InputInit, feedback_init) = InputInit::uniform(1.0);
  TORCH_ARG(InputInit, bias_init) = InputInit::zero();
  TORCH_ARG(Activation, activation) = Activation::Tanh;  // forced to identity for Linear
  TORCH_ARG(bool, bias) = true;
  TORCH_ARG(bool, trainable) = false;
  TORCH_ARG(double, readout_alpha) = 1e-6;
  TORCH_ARG(bool, readout_bias) = true;
  TORCH_ARG(Solver, readout_solver) = Solver::Cholesky;
  // Seeds the reservoir; the readout's (untrained) initial weights use seed + 1.
  TORCH_ARG(std::optional<uint64_t>, seed) = std::nullopt;
  TORCH_ARG(RecurrentKernel, kernel) = RecurrentKernel::Auto;
  TORCH_ARG(torch::Dtype, dtype) = torch::kFloat32;
};

struct ForecastOptions {
  // Prepend the warm-up outputs: the result is [batch, W + horizon, out].
  TORCH_ARG(bool, return_warmup) = false;
  // Replaces the value fed back at the first autoregressive step ([batch, 1, F] or [batch, F]);
  // output step 0 stays the last warm-up output (torch_rc's behaviour).
  TORCH_ARG(torch::Tensor, initial_feedback) = torch::Tensor();
};

class ESNModel;

class ESNModelImpl : public tt::Model {
 public:
  // output_size is ignored for Headless / Linear.
  ESNModelImpl(ESNKind kind, int64_t reservoir_size, int64_t feedback_size, int64_t output_size = 0,
               ESNOptions options = {});

  // [B, T, F] -> [B, T, out]; one step [B, F] -> [B, out]. Advances the reservoir state.
  torch::Tensor forward(const torch::Tensor& feedback);
  // The readout's input for feedback x and the reservoir states h it produced ([x, h] or
  // [x, h~]; h itself for Headless / Linear). Pure: runs nothing.
  torch::Tensor readout_features(const torch::Tensor& feedback, const torch::Tensor& states) const;
  int64_t feature_size() const;  // width of readout_features
  int64_t output_size() const;   // readout width, or R without readout

  // ---- reservoir states (torch_rc names) ----
  void reset_reservoirs();
  io::TensorDict get_reservoir_states() const;  // {"ReservoirLayer_1": clone of [batch, R]}
  // Every key must name a reservoir and every tensor be [batch, R]; checked before any change.
  void set_reservoir_states(const io::TensorDict& states);

  // ---- inference ----
  // Teacher-forced run under NoGradGuard; returns the outputs or an undefined tensor.
  torch::Tensor warmup(const torch::Tensor& feedback, bool return_outputs = false);
  torch::Tensor forecast(const torch::Tensor& warmup, int64_t horizon, const ForecastOptions& options = {});

  // ---- files ----
  void save(const std::string& path, bool include_states = false) const;
  LoadReport load(const std::string& path, bool strict = true, bool load_states = false);
  static ESNModel load_from_file(const std::string& path, ESNModel model, bool strict = true, bool load_states = false,
                                 LoadReport* report = nullptr);

  ESNKind kind() const { return kind_; }
  bool has_readout() const { return !readout.is_empty(); }
  const ESNOptions& options() const { return options_; }

  Reservoir reservoir{nullptr};
  Readout readout{nullptr};  // empty for Headless / Linear

  void pretty_print(std::ostream& stream) const override;

  static constexpr const char* kReservoirName = "ReservoirLayer_1";
  static constexpr const char* kReadoutName = "CGReadoutLayer_1";

 private:
  ESNKind kind_;
  ESNOptions options_;
  int64_t feedback_size_;
};

TORCH_MODULE(ESNModel);

// torch_rc's premade models.
ESNModel classic_esn(int64_t reservoir_size, int64_t feedback_size, int64_t output_size, ESNOptions options = {});
ESNModel ott_esn(int64_t reservoir_size, int64_t feedback_size, int64_t output_size, ESNOptions options = {});
ESNModel headless_esn(int64_t reservoir_size, int64_t feedback_size, ESNOptions options = {});
ESNModel linear_esn(int64_t reservoir_size, int64_t feedback_size, ESNOptions options = {});

// Fits the readout of an ESN: reset, teacher-forced warm-up, then ridge regression of the
// targets on the readout features of the training steps. Only the features' normal equations are
// kept, so long series can be streamed in chunks (begin / warmup / accumulate / finish); the
// reservoir state carries over between chunks.
class ESNTrainer {
 public:
  explicit ESNTrainer(ESNModel model) : model_(std::move(model)) {}

  // torch_rc's fit: inputs [B, warmup_steps + T, F], targets [B, T, out] (targets exclude the
  // warm-up). Throws tt::ValueError for a model without readout or mismatched shapes.
  SolveInfo fit(const torch::Tensor& inputs, const torch::Tensor& targets, int64_t warmup_steps);

  void begin();                                                  // reset states and sums
  void warmup(const torch::Tensor& inputs);                      // advance, no accumulation
  void accumulate(const torch::Tensor& inputs, const torch::Tensor& targets);  // [B,T,F], [B,T,out]
  SolveInfo finish();                                            // solve, write the readout

 private:
  ESNModel model_;
};

}  // namespace tt::rc
