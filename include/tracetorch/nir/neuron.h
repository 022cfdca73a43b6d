#pragma once
// tt::nir::Neuron: the six NIR neuron primitives (I, IF, LI, LIF, CubaLI, CubaLIF) as one stateful
// layer, discretised with a time step dt. The equations are NIR's (continuous time, units as
// stored in the file):
//   Cuba synapse   tau_syn dI/dt = -I + w_in x                 (CubaLI, CubaLIF; the drive is I)
//   leaky          tau dv/dt = (v_leak - v) + r * drive        (LI, LIF; tau_mem for Cuba*)
//   integrator     dv/dt = r * drive                           (I, IF)
//   firing         z = [v > v_threshold], then v = v_reset where z   (IF, LIF, CubaLIF)
// and one step of length dt is, by default, forward Euler (what snnTorch and Norse assume):
//   I += dt/tau_syn * (w_in x - I);  v += dt/tau * ((v_leak - v) + r * I)   (I first: v sees the new I)
// or, with Discretisation::Exact, the exact solution for an input held over the step:
//   I = I e + (1 - e) w_in x,  e = exp(-dt/tau_syn);  v = v_leak + (v - v_leak) d + (1 - d) r I,  d = exp(-dt/tau).
// The integrator's step v += dt * r * I is exact under both. The output is z (0 / 1) for firing
// kinds and v otherwise. docs/nir.md has the details and the traceTorch correspondences.
//
// Shapes: the neurons have a per-sample shape (`shape`, e.g. [128] or [C, H, W]); the input is
// [batch..., shape...] and states ("i" for the Cuba synapse, then "v") have the input's shape.
// Parameters are buffers (in the state_dict under their NIR names: `tau`, `r`, `v_leak`, ...),
// each of the neurons' shape (scalars are broadcast at construction).
// Paths: the reference path (ATen ops, autograd) and a fast path (no autograd, CPU, contiguous
// float / double: one fused loop, states updated in place); both give identical bits.
// Throws tt::ValueError for a parameter that does not broadcast to the shape, a non-positive time
// constant or dt, and for inputs whose trailing shape is not `shape`.
// Thread safety: as any module; one forward at a time per instance.
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "tracetorch/core/cloneable.h"
#include "tracetorch/core/layer.h"

namespace tt::nir {

enum class Discretisation { Euler, Exact };
enum class NeuronKind { I, IF, LI, LIF, CubaLI, CubaLIF };

// "LIF" for NeuronKind::LIF (the NIR type name); throws tt::ValueError for unknown names.
std::string kind_name(NeuronKind kind);
NeuronKind kind_from_name(const std::string& name);
// The NIR fields a kind has, in NIR's order (LIF: tau, r, v_leak, v_threshold, v_reset).
const std::vector<std::string>& neuron_fields(NeuronKind kind);
bool is_firing(NeuronKind kind);

struct NeuronOptions {
  NeuronOptions(NeuronKind kind, std::vector<int64_t> shape) : kind_(kind), shape_(std::move(shape)) {}

  TORCH_ARG(NeuronKind, kind);
  // The neurons' per-sample shape.
  TORCH_ARG(std::vector<int64_t>, shape);
  // The time step, in the unit of the time constants (NIR files use seconds).
  TORCH_ARG(double, dt) = 1e-3;
  TORCH_ARG(Discretisation, discretisation) = Discretisation::Euler;
  // The parameters' dtype (the module can be moved with to() later; this keeps float64 files exact).
  TORCH_ARG(torch::Dtype, dtype) = torch::kFloat32;

 public:
  // NIR parameters by field name (tau, tau_syn, tau_mem, r, v_leak, v_threshold, v_reset, w_in),
  // numbers or tensors broadcastable to `shape`. Unset fields take NIR's defaults: r = w_in = 1,
  // v_leak = v_reset = 0, v_threshold = 1; time constants have no default.
  NeuronOptions& set(const std::string& field, torch::Tensor value);
  NeuronOptions& set(const std::string& field, double value);
  const std::map<std::string, torch::Tensor>& params() const { return params_; }

 private:
  std::map<std::string, torch::Tensor> params_;
};

class NeuronImpl : public Cloneable<NeuronImpl> {
 public:
  explicit NeuronImpl(NeuronOptions options);

  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor forward_step(const torch::Tensor& x) override { return forward(x); }
  std::optional<std::string> check_state_shape(size_t index, torch::IntArrayRef sizes) const override;
  void pretty_print(std::ostream& stream) const override;

  const NeuronOptions& options() const { return options_; }
  // The parameter buffer called `field` (its NIR name); throws tt::Error for other names.
  const torch::Tensor& param(const std::string& field) const;

 protected:
  std::vector<int64_t> initial_state_shape(size_t index, const torch::Tensor& x) const override;

 private:
  // Per-step coefficients of the chosen discretisation (see the header comment).
  struct Coefficients {
    torch::Tensor syn_a, syn_b;  // Euler: a = dt/tau_syn, b unused; Exact: a = e, b = 1 - e
    torch::Tensor mem_a, mem_b;  // likewise for the membrane; integrator: a = dt * r
  };
  Coefficients coefficients() const;
  torch::Tensor forward_reference(const torch::Tensor& x);
  torch::Tensor forward_fast(const torch::Tensor& x);

  NeuronOptions options_;
  std::map<std::string, torch::Tensor> buffers_;
  int i_ = -1, v_ = -1;  // state indices (i_ only for the Cuba kinds)
};

TORCH_MODULE(Neuron);

// Options for one kind with every parameter given: LIFOptions({10}).set("tau", 0.02)...
inline NeuronOptions IOptions(std::vector<int64_t> shape) { return {NeuronKind::I, std::move(shape)}; }
inline NeuronOptions IFOptions(std::vector<int64_t> shape) { return {NeuronKind::IF, std::move(shape)}; }
inline NeuronOptions LIOptions(std::vector<int64_t> shape) { return {NeuronKind::LI, std::move(shape)}; }
inline NeuronOptions LIFOptions(std::vector<int64_t> shape) { return {NeuronKind::LIF, std::move(shape)}; }
inline NeuronOptions CubaLIOptions(std::vector<int64_t> shape) { return {NeuronKind::CubaLI, std::move(shape)}; }
inline NeuronOptions CubaLIFOptions(std::vector<int64_t> shape) { return {NeuronKind::CubaLIF, std::move(shape)}; }

}  // namespace tt::nir
