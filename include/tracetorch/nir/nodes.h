#pragma once
// The NIR primitives without a LibTorch module of their own: Scale (y = s * x), Threshold
// (y = [x > threshold], 0 / 1 in the input's dtype) and Delay (y(t) = x(t - delay), a delay line
// of round(delay / dt) steps per neuron, its buffer a hidden state). The others map to LibTorch
// modules (Affine / Linear -> torch::nn::Linear, Conv -> Conv1d / Conv2d, pools -> AvgPool2d,
// Flatten -> torch::nn::Flatten) or to tt::nir::Neuron (nir/neuron.h).
//
// Inputs are [batch..., shape...]; the parameters (`scale`, `threshold`, `delay`, buffers in the
// state_dict) have the per-sample shape (scalars are broadcast at construction).
// Throws tt::ValueError for parameters that do not broadcast to the shape, negative delays, a
// non-positive dt, and inputs whose trailing shape is not the layer's.
// Thread safety: as any module.
#include <torch/torch.h>

#include <vector>

#include "tracetorch/core/cloneable.h"
#include "tracetorch/core/layer.h"

namespace tt::nir {

struct ScaleOptions {
  ScaleOptions(std::vector<int64_t> shape, torch::Tensor scale) : shape_(std::move(shape)), scale_(std::move(scale)) {}
  TORCH_ARG(std::vector<int64_t>, shape);
  TORCH_ARG(torch::Tensor, scale);
  TORCH_ARG(torch::Dtype, dtype) = torch::kFloat32;
};

class ScaleImpl : public torch::nn::Cloneable<ScaleImpl> {
 public:
  explicit ScaleImpl(ScaleOptions options);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);
  void pretty_print(std::ostream& stream) const override;
  const ScaleOptions& options() const { return options_; }
  torch::Tensor scale;

 private:
  ScaleOptions options_;
};
TORCH_MODULE(Scale);

struct ThresholdOptions {
  ThresholdOptions(std::vector<int64_t> shape, torch::Tensor threshold)
      : shape_(std::move(shape)), threshold_(std::move(threshold)) {}
  TORCH_ARG(std::vector<int64_t>, shape);
  TORCH_ARG(torch::Tensor, threshold);
  TORCH_ARG(torch::Dtype, dtype) = torch::kFloat32;
};

class ThresholdImpl : public torch::nn::Cloneable<ThresholdImpl> {
 public:
  explicit ThresholdImpl(ThresholdOptions options);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);
  void pretty_print(std::ostream& stream) const override;
  const ThresholdOptions& options() const { return options_; }
  torch::Tensor threshold;

 private:
  ThresholdOptions options_;
};
TORCH_MODULE(Threshold);

struct DelayOptions {
  DelayOptions(std::vector<int64_t> shape, torch::Tensor delay) : shape_(std::move(shape)), delay_(std::move(delay)) {}
  TORCH_ARG(std::vector<int64_t>, shape);
  TORCH_ARG(torch::Tensor, delay);  // in the unit of dt (seconds in NIR files)
  TORCH_ARG(double, dt) = 1e-3;
  TORCH_ARG(torch::Dtype, dtype) = torch::kFloat32;
};

// State "buffer" [batch..., shape..., D], D = the longest delay in steps: the last D inputs,
// oldest first. No state when every delay rounds to 0 steps (then y = x).
class DelayImpl : public Cloneable<DelayImpl> {
 public:
  explicit DelayImpl(DelayOptions options);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor forward_step(const torch::Tensor& x) override { return forward(x); }
  std::optional<std::string> check_state_shape(size_t index, torch::IntArrayRef sizes) const override;
  void pretty_print(std::ostream& stream) const override;
  const DelayOptions& options() const { return options_; }
  // Delay of each neuron in steps, round(delay / dt).
  torch::Tensor steps() const;

 protected:
  std::vector<int64_t> initial_state_shape(size_t index, const torch::Tensor& x) const override;

 private:
  DelayOptions options_;
  torch::Tensor delay_;
  int64_t max_steps_ = 0;
};
TORCH_MODULE(Delay);

}  // namespace tt::nir
