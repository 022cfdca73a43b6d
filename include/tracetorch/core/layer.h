#pragma once
// tt::Layer: the base of every stateful layer.
//
// Contract (spec sections 2.1-2.6):
// - A layer owns named hidden states. They are undefined until the first forward, which creates
//   zeros shaped like the input with the layer's `dim` axis replaced by `num_neurons` (dtype and
//   device of the input). Forward passes rebind states to new tensors; nothing is modified in place.
// - States are plain tensors, not parameters or buffers: they are not in the state_dict.
// - Constrained parameters are stored raw (`raw_beta`, a parameter if learnable, else a buffer)
//   and read through an activation. `compile()` replaces each `raw_NAME` by a buffer `NAME` holding
//   the activated value; `decompile()` restores `raw_NAME` with its original learnability.
// Models (any module tree) manage the states of all their layers: see core/model.h.
#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

#include "tracetorch/core/parameter.h"
#include "tracetorch/functional/transforms.h"

namespace tt {

class Layer : public torch::nn::Module {
 public:
  Layer(std::string type_name, int64_t num_neurons, int64_t dim = -1);

  int64_t num_neurons() const { return num_neurons_; }
  int64_t dim() const { return dim_; }

  // ---- hidden states ----
  const std::vector<std::string>& state_names() const { return state_names_; }
  bool has_state(const std::string& name) const;
  // The current value (undefined before the first forward or after zero_states()).
  const torch::Tensor& state(const std::string& name) const;
  // Replaces a state (no copy, no dtype conversion). Throws tt::Error for an unknown name.
  void set_state(const std::string& name, torch::Tensor value);
  // All states become undefined; the next forward recreates zeros from its input.
  void zero_states();
  // Every defined state is replaced by its detached version (cuts the autograd graph).
  void detach_states();
  // Returns a message describing why `sizes` cannot be the value of state `name`, or nullopt.
  // Used by load_states when the state is still undefined (no current shape to compare with).
  virtual std::optional<std::string> check_state_shape(size_t index, torch::IntArrayRef sizes) const;

  // ---- whole sequences (time-major) ----
  // x is [T, ...] where each x[t] is what forward() takes; returns [T, ...] and leaves the states
  // exactly as T calls of forward() would, so step and sequence calls mix freely. The default
  // runs forward_step() T times; layer families override it with a fused pass.
  virtual torch::Tensor forward_sequence(const torch::Tensor& x);
  // One timestep: the concrete layer's forward(x). The default throws tt::Error (a layer whose
  // forward takes other arguments overrides forward_sequence instead).
  virtual torch::Tensor forward_step(const torch::Tensor& x);

  // ---- constrained parameters ----
  // Names in registration order (`beta`, `threshold`, ...).
  std::vector<std::string> parameter_names() const;
  // The activated value (`sigmoid(raw_beta)`, or the compiled buffer). Throws for an unknown name.
  torch::Tensor get(const std::string& name) const;
  bool is_learnable(const std::string& name) const;

  // ---- execution path ----
  // With exact set, forward always takes the reference (ATen, autograd) path, bit-identical to
  // the Python library; otherwise a layer may take its fast path when no gradient is needed (see
  // use_fast_path). Off by default; tt::set_exact(module, true) sets it for a whole tree.
  void set_exact(bool exact) { exact_ = exact; }
  bool exact() const { return exact_; }

  // ---- compile ----
  // Idempotent. A layer without constrained parameters is left unchanged (not marked compiled).
  void compile();
  void decompile();
  bool is_compiled() const { return compiled_; }

  // The type name used in messages and architecture JSON, e.g. "snn.LIB".
  const std::string& type_name() const { return type_name_; }

 protected:
  // First thing in a reset(): forgets every registration (parameters, buffers, children, states,
  // constrained parameters, compiled form) so that reset() can register them anew.
  void begin_reset();
  // True when forward may take the layer's fast path for input x: not exact, autograd off
  // (NoGradGuard or InferenceMode) and x on the CPU.
  bool use_fast_path(const torch::Tensor& x) const {
    return !exact_ && !torch::GradMode::is_enabled() && x.device().is_cpu();
  }

  // The equations see the feature axis last. For an input x, `axis` is `dim` resolved against
  // x's rank; in() / out() move that axis to the end and back (views; no-ops when dim is last).
  struct FeatureAxis {
    int64_t axis;
    bool moved;
    torch::Tensor in(const torch::Tensor& t) const { return moved ? t.movedim(axis, -1) : t; }
    torch::Tensor out(const torch::Tensor& t) const { return moved ? t.movedim(-1, axis) : t; }
  };
  FeatureAxis feature_axis(const torch::Tensor& x) const {
    const int64_t axis = resolve_dim(x.dim());
    return {axis, axis != x.dim() - 1};
  }

  // Registers a state and returns its index (stable, creation order).
  size_t register_state(const std::string& name);
  // Checks the input (validate_input), then creates every undefined state from it (spec 2.2). Call
  // first thing in forward() and in every fast or sequence path.
  void ensure_states(const torch::Tensor& x);
  // Throws tt::ValueError naming the layer and state when x has the wrong number of features on
  // `dim` or when a defined state's batch axes differ from x's (no allocation when all is well).
  void validate_input(const torch::Tensor& x) const;
  // The number of features validate_input expects on `dim` (num_neurons by default; -1: the layer
  // checks its input itself).
  void expect_input_features(int64_t n) { input_features_ = n; }
  // "snn.LIB(128)": the layer in error messages.
  std::string describe() const;
  // The shape state `index` gets for input `x`. Default: x's shape with dim -> num_neurons.
  virtual std::vector<int64_t> initial_state_shape(size_t index, const torch::Tensor& x) const;

  torch::Tensor& state_at(size_t index) { return states_[index]; }
  const torch::Tensor& state_at(size_t index) const { return states_[index]; }

  // Registers `raw_<name>` (spec 2.3): value from `setting` or `default_value`, rank 0 or 1,
  // learnable -> parameter, else persistent buffer. Returns the index for `constrained()`.
  size_t register_constrained(const std::string& name, const ParamSetting& setting,
                              double default_value, Transform transform);
  // The activated value by index (hot path: no name lookup).
  torch::Tensor constrained(size_t index) const;

  // `dim` resolved against a tensor rank (Python semantics for negatives).
  int64_t resolve_dim(int64_t rank) const;

 private:
  struct Constrained {
    std::string name;
    Transform transform;
    bool is_parameter;  // how raw_<name> was registered originally
    bool learnable;
    torch::Tensor raw;       // handle shared with the registered parameter / buffer
    torch::Tensor compiled;  // defined only while compiled
  };
  size_t constrained_index(const std::string& name) const;
  size_t state_index(const std::string& name) const;

  std::string type_name_;
  int64_t num_neurons_;
  int64_t dim_;
  int64_t input_features_;
  std::vector<std::string> state_names_;
  std::vector<torch::Tensor> states_;
  std::vector<Constrained> constrained_;
  bool compiled_ = false;
  bool exact_ = false;
};

}  // namespace tt
