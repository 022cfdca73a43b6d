#pragma once
// Constructor values of constrained parameters (spec 2.3): a plain number or a 0-d / 1-d tensor.
//
// Plain value types, copied into a layer's options; the layer that registers a parameter checks
// the value (rank, size, range) and throws tt::ValueError naming it. Thread-safe as any value;
// a tensor value is shared, not copied, until the layer registers its raw form.
#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

namespace tt {

// A parameter's initial value as the user gave it. A number becomes a rank-0 or rank-1 float32
// tensor (per the parameter's rank); a tensor keeps its own rank and dtype (spec Quirk Q20).
class ParamValue {
 public:
  ParamValue(double number) : number_(number) {}  // NOLINT: implicit on purpose (beta(0.8))
  ParamValue(int number) : number_(number) {}     // NOLINT
  ParamValue(torch::Tensor tensor) : tensor_(std::move(tensor)) {}  // NOLINT
  ParamValue(std::vector<double> values)  // NOLINT: a 1-d float32 tensor
      : tensor_(torch::tensor(values, torch::kFloat32)), list_(std::move(values)) {}

  bool is_tensor() const { return tensor_.defined(); }
  double number() const { return number_; }
  const torch::Tensor& tensor() const { return tensor_; }
  // The numbers a list value was given as (empty otherwise); kept so that JSON round trips exactly.
  const std::vector<double>& list() const { return list_; }

 private:
  double number_ = 0.0;
  torch::Tensor tensor_;
  std::vector<double> list_;
};

// What the user set for one parameter; unset fields take the layer's defaults.
struct ParamSetting {
  std::optional<ParamValue> value;
  std::optional<int64_t> rank;
  std::optional<bool> learnable;
};

}  // namespace tt
