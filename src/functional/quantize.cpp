#include "tracetorch/functional/quantize.h"

#include <cmath>
#include <cstdio>
#include <regex>

#include "tracetorch/core/error.h"

namespace tt::functional {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct RoundSTE : torch::autograd::Function<RoundSTE> {
  static torch::Tensor forward(AutogradContext* /*ctx*/, const torch::Tensor& x, double step) {
    return torch::round(torch::div(x, step)).mul(step);
  }
  static variable_list backward(AutogradContext* /*ctx*/, variable_list grad) { return {grad[0], torch::Tensor()}; }
};

struct StochasticRoundSTE : torch::autograd::Function<StochasticRoundSTE> {
  static torch::Tensor forward(AutogradContext* /*ctx*/, const torch::Tensor& x, double step) {
    torch::Tensor scaled = torch::div(x, step);
    torch::Tensor floored = torch::floor(scaled);
    torch::Tensor frac = scaled - floored;
    torch::Tensor u = torch::rand_like(scaled);
    return torch::add(floored, (u < frac).to(torch::kFloat32)).mul(step);
  }
  static variable_list backward(AutogradContext* /*ctx*/, variable_list grad) { return {grad[0], torch::Tensor()}; }
};

struct ProbabilisticSTE : torch::autograd::Function<ProbabilisticSTE> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x) {
    ctx->save_for_backward({x});
    return x * torch::bernoulli(x);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const torch::Tensor x = ctx->get_saved_variables()[0];
    return {grad[0] * 2 * x};
  }
};

std::string step_literal(double step) {
  // Python's repr of a float: shortest text that reads back the same double.
  char buffer[64];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buffer, sizeof(buffer), "%.*g", precision, step);
    if (std::strtod(buffer, nullptr) == step) break;
  }
  std::string text = buffer;
  if (text.find_first_of(".en") == std::string::npos) text += ".0";
  return text;
}

// A zero, negative or non-finite step would turn every value into NaN or Inf without a word.
double checked_step(const char* function, double step_size) {
  if (!(step_size > 0) || !std::isfinite(step_size))
    throw ValueError(std::string(function) + ": step_size must be a finite number > 0, got " + std::to_string(step_size));
  return step_size;
}

}  // namespace

torch::Tensor round_ste(const torch::Tensor& x, double step_size) {
  return RoundSTE::apply(x, checked_step("round_ste", step_size));
}
torch::Tensor stochastic_round_ste(const torch::Tensor& x, double step_size) {
  return StochasticRoundSTE::apply(x, checked_step("stochastic_round_ste", step_size));
}
torch::Tensor probabilistic_ste(const torch::Tensor& x) { return ProbabilisticSTE::apply(x); }

TensorFn round_ste_fn(double step_size) {
  return {"round_ste(" + step_literal(step_size) + ")", [step_size](const torch::Tensor& x) { return round_ste(x, step_size); }};
}
TensorFn stochastic_round_ste_fn(double step_size) {
  return {"stochastic_round_ste(" + step_literal(step_size) + ")",
          [step_size](const torch::Tensor& x) { return stochastic_round_ste(x, step_size); }};
}
TensorFn probabilistic_ste_fn() { return {"probabilistic_ste()", [](const torch::Tensor& x) { return probabilistic_ste(x); }}; }

TensorFn identity() { return {"identity", nullptr}; }

torch::Tensor sigmoid4x(const torch::Tensor& x) { return torch::sigmoid(torch::mul(x, 4.0)); }
TensorFn sigmoid4x() { return {"sigmoid4x", [](const torch::Tensor& x) { return sigmoid4x(x); }}; }

TensorFn parse_tensor_fn(const std::string& text) {
  if (text == "identity") return identity();
  if (text == "sigmoid4x") return sigmoid4x();
  if (text == "probabilistic_ste()") return probabilistic_ste_fn();
  static const std::regex with_step(R"(^(round_ste|stochastic_round_ste)\(\s*([-+0-9.eE]*)\s*\)$)");
  std::smatch m;
  if (std::regex_match(text, m, with_step)) {
    double step = 1.0;
    // Keep the literal alive while strtod's end pointer is read (it points into this string).
    const std::string literal = m[2].str();
    if (!literal.empty()) {
      char* end = nullptr;
      step = std::strtod(literal.c_str(), &end);
      if (*end != '\0' || !(step > 0) || !std::isfinite(step))
        throw ValueError("invalid step size '" + literal + "' in '" + text + "' (expected a finite number > 0)");
    }
    return m[1] == "round_ste" ? round_ste_fn(step) : stochastic_round_ste_fn(step);
  }
  throw ValueError("unknown function '" + text +
                   "' (expected identity, sigmoid4x, round_ste(S), stochastic_round_ste(S) or probabilistic_ste())");
}

}  // namespace tt::functional
