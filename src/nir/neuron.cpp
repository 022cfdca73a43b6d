// The NIR neuron family: one set of equations (see nir/neuron.h), a reference path in ATen ops
// and a fused per-element loop that performs the same floating-point operations in the same order.
#include "tracetorch/nir/neuron.h"

#include <cmath>

#include "core/text.h"
#include "nir/params.h"
#include "tracetorch/core/error.h"

namespace tt::nir {

namespace {

using detail::product;
using tt::detail::shape_string;

bool is_cuba(NeuronKind k) { return k == NeuronKind::CubaLI || k == NeuronKind::CubaLIF; }
bool is_integrator(NeuronKind k) { return k == NeuronKind::I || k == NeuronKind::IF; }
// The membrane's time constant field: "tau" for LI / LIF, "tau_mem" for the Cuba kinds.
const char* membrane_tau(NeuronKind k) { return is_cuba(k) ? "tau_mem" : "tau"; }

double default_value(const std::string& field) {
  if (field == "r" || field == "w_in" || field == "v_threshold") return 1.0;
  if (field == "v_leak" || field == "v_reset") return 0.0;
  return std::nan("");  // time constants: required
}

}  // namespace

std::string kind_name(NeuronKind kind) {
  switch (kind) {
    case NeuronKind::I: return "I";
    case NeuronKind::IF: return "IF";
    case NeuronKind::LI: return "LI";
    case NeuronKind::LIF: return "LIF";
    case NeuronKind::CubaLI: return "CubaLI";
    case NeuronKind::CubaLIF: return "CubaLIF";
  }
  return "?";
}

NeuronKind kind_from_name(const std::string& name) {
  for (NeuronKind k : {NeuronKind::I, NeuronKind::IF, NeuronKind::LI, NeuronKind::LIF, NeuronKind::CubaLI,
                       NeuronKind::CubaLIF})
    if (kind_name(k) == name) return k;
  throw ValueError("'" + name + "' is not a NIR neuron type (I, IF, LI, LIF, CubaLI, CubaLIF)");
}

bool is_firing(NeuronKind kind) {
  return kind == NeuronKind::IF || kind == NeuronKind::LIF || kind == NeuronKind::CubaLIF;
}

const std::vector<std::string>& neuron_fields(NeuronKind kind) {
  static const std::map<NeuronKind, std::vector<std::string>> fields = {
      {NeuronKind::I, {"r"}},
      {NeuronKind::IF, {"r", "v_threshold", "v_reset"}},
      {NeuronKind::LI, {"tau", "r", "v_leak"}},
      {NeuronKind::LIF, {"tau", "r", "v_leak", "v_threshold", "v_reset"}},
      {NeuronKind::CubaLI, {"tau_syn", "tau_mem", "r", "v_leak", "w_in"}},
      {NeuronKind::CubaLIF, {"tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"}},
  };
  return fields.at(kind);
}

NeuronOptions& NeuronOptions::set(const std::string& field, torch::Tensor value) {
  params_[field] = std::move(value);
  return *this;
}

NeuronOptions& NeuronOptions::set(const std::string& field, double value) {
  return set(field, torch::tensor(value, torch::kFloat64));
}

// ---------------------------------------------------------------------------------------------
// construction

NeuronImpl::NeuronImpl(NeuronOptions options)
    : Cloneable("nir." + kind_name(options.kind()), std::max<int64_t>(1, product(options.shape()))),
      options_(std::move(options)) {
  reset();
}

void NeuronImpl::reset() {
  begin_reset();
  const std::string who = "nir." + kind_name(options_.kind());
  if (!(options_.dt() > 0) || !std::isfinite(options_.dt()))
    throw ValueError(who + ": dt must be positive, got " + std::to_string(options_.dt()));
  const auto& fields = neuron_fields(options_.kind());
  for (const auto& [field, value] : options_.params())
    if (std::find(fields.begin(), fields.end(), field) == fields.end())
      throw ValueError(who + " has no parameter '" + field + "' (it has " + tt::detail::join_keys(fields) + ")");
  expect_input_features(-1);  // forward checks the whole trailing shape

  buffers_.clear();
  for (const auto& field : fields) {
    auto given = options_.params().find(field);
    torch::Tensor value;
    if (given != options_.params().end()) {
      value = given->second;
    } else {
      const double fallback = default_value(field);
      if (std::isnan(fallback)) throw ValueError(who + ": parameter '" + field + "' is required");
      value = torch::tensor(fallback);
    }
    value = detail::broadcast_param(value, options_.shape(), options_.dtype(), who, field);
    if (field.rfind("tau", 0) == 0 && !(value.gt(0).all().item<bool>()))
      throw ValueError(who + ": time constant '" + field + "' must be positive everywhere");
    buffers_[field] = register_buffer(field, value);
  }
  i_ = is_cuba(options_.kind()) ? static_cast<int>(register_state("i")) : -1;
  v_ = static_cast<int>(register_state("v"));
}

const torch::Tensor& NeuronImpl::param(const std::string& field) const {
  auto found = buffers_.find(field);
  if (found == buffers_.end()) throw Error(type_name() + " has no parameter '" + field + "'");
  return found->second;
}

void NeuronImpl::pretty_print(std::ostream& stream) const {
  stream << "tt::nir::" << kind_name(options_.kind()) << "(shape=" << shape_string(options_.shape())
         << ", dt=" << options_.dt()
         << (options_.discretisation() == Discretisation::Exact ? ", exact" : ", euler") << ")";
}

std::vector<int64_t> NeuronImpl::initial_state_shape(size_t /*index*/, const torch::Tensor& x) const {
  return x.sizes().vec();
}

std::optional<std::string> NeuronImpl::check_state_shape(size_t /*index*/, torch::IntArrayRef sizes) const {
  if (detail::has_trailing_shape(sizes, options_.shape())) return std::nullopt;
  return "expected [batch, " + shape_string(options_.shape()).substr(1) + ", got " + shape_string(sizes);
}

// ---------------------------------------------------------------------------------------------
// the step

NeuronImpl::Coefficients NeuronImpl::coefficients() const {
  const double dt = options_.dt();
  const bool exact = options_.discretisation() == Discretisation::Exact;
  // dt / tau in the parameters' dtype: full_like rounds dt once, then one division.
  auto ratio = [&](const torch::Tensor& tau) { return torch::full_like(tau, dt).div(tau); };
  Coefficients c;
  if (is_cuba(options_.kind())) {
    c.syn_a = ratio(param("tau_syn"));
    if (exact) {
      c.syn_a = c.syn_a.neg().exp();
      c.syn_b = torch::rsub(c.syn_a, 1);
    }
  }
  if (is_integrator(options_.kind())) {
    c.mem_a = torch::full_like(param("r"), dt).mul(param("r"));
  } else {
    c.mem_a = ratio(param(membrane_tau(options_.kind())));
    if (exact) {
      c.mem_a = c.mem_a.neg().exp();
      c.mem_b = torch::rsub(c.mem_a, 1);
    }
  }
  return c;
}

torch::Tensor NeuronImpl::forward(const torch::Tensor& x) {
  detail::check_trailing_shape(x, options_.shape(), type_name());
  ensure_states(x);
  const auto dtype = x.scalar_type();
  const bool loop_ok = (dtype == torch::kFloat32 || dtype == torch::kFloat64) && x.is_contiguous() &&
                       state_at(v_).is_contiguous() && state_at(v_).scalar_type() == dtype &&
                       (i_ < 0 || (state_at(i_).is_contiguous() && state_at(i_).scalar_type() == dtype)) &&
                       param("r").scalar_type() == dtype && param("r").device() == x.device();
  return use_fast_path(x) && loop_ok ? forward_fast(x) : forward_reference(x);
}

torch::Tensor NeuronImpl::forward_reference(const torch::Tensor& x) {
  const NeuronKind kind = options_.kind();
  const bool exact = options_.discretisation() == Discretisation::Exact;
  const Coefficients c = coefficients();
  torch::Tensor drive = x;
  if (is_cuba(kind)) {
    const torch::Tensor& i = state_at(i_);
    const torch::Tensor input = param("w_in").mul(x);
    torch::Tensor next = exact ? i.mul(c.syn_a).add(c.syn_b.mul(input)) : i.add(c.syn_a.mul(input.sub(i)));
    state_at(i_) = next;
    drive = next;
  }
  const torch::Tensor& v = state_at(v_);
  torch::Tensor next;
  if (is_integrator(kind)) {
    next = v.add(c.mem_a.mul(drive));
  } else {
    const torch::Tensor& leak = param("v_leak");
    const torch::Tensor current = param("r").mul(drive);
    next = exact ? leak.add(v.sub(leak).mul(c.mem_a)).add(c.mem_b.mul(current))
                 : v.add(c.mem_a.mul(leak.sub(v).add(current)));
  }
  if (!is_firing(kind)) {
    state_at(v_) = next;
    return next;
  }
  const torch::Tensor fired = next.gt(param("v_threshold"));
  state_at(v_) = torch::where(fired, param("v_reset").expand_as(next), next);
  return fired.to(x.scalar_type());
}

namespace {

// One fused pass over [outer, n] elements (n = neurons per sample); the same operations, in the
// same order and precision, as forward_reference.
template <typename T>
void step_loop(NeuronKind kind, bool exact, T dt, int64_t outer, int64_t n, const T* x, T* i, T* v, T* out,
               const std::map<std::string, const T*>& p, const T* syn_a, const T* syn_b, const T* mem_a,
               const T* mem_b) {
  const bool cuba = is_cuba(kind), integrator = is_integrator(kind), firing = is_firing(kind);
  const T* tau_syn = cuba ? p.at("tau_syn") : nullptr;
  const T* w_in = cuba ? p.at("w_in") : nullptr;
  const T* tau = integrator ? nullptr : p.at(membrane_tau(kind));
  const T* leak = integrator ? nullptr : p.at("v_leak");
  const T* r = p.at("r");
  const T* theta = firing ? p.at("v_threshold") : nullptr;
  const T* reset = firing ? p.at("v_reset") : nullptr;
  for (int64_t b = 0; b < outer; ++b) {
    const int64_t o = b * n;
    for (int64_t k = 0; k < n; ++k) {
      T drive = x[o + k];
      if (cuba) {
        const T input = w_in[k] * drive;
        T s = i[o + k];
        s = exact ? s * syn_a[k] + syn_b[k] * input : s + (dt / tau_syn[k]) * (input - s);
        i[o + k] = s;
        drive = s;
      }
      T m = v[o + k];
      if (integrator) {
        m = m + (dt * r[k]) * drive;
      } else {
        const T current = r[k] * drive;
        m = exact ? (leak[k] + (m - leak[k]) * mem_a[k]) + mem_b[k] * current
                  : m + (dt / tau[k]) * ((leak[k] - m) + current);
      }
      if (firing) {
        const bool fired = m > theta[k];
        out[o + k] = fired ? T(1) : T(0);
        v[o + k] = fired ? reset[k] : m;
      } else {
        v[o + k] = m;
        out[o + k] = m;
      }
    }
  }
}

}  // namespace

torch::Tensor NeuronImpl::forward_fast(const torch::Tensor& x) {
  // States are updated in place: first make sure nobody else sees them (an earlier output, a
  // tensor given to set_state / load_states, a view) and that they carry no autograd history.
  for (int index : {i_, v_}) {
    if (index < 0) continue;
    torch::Tensor& s = state_at(index);
    if (s.requires_grad() || s.use_count() > 1 || s.storage().use_count() > 1) s = s.detach().clone();
  }
  const bool exact = options_.discretisation() == Discretisation::Exact;
  Coefficients c;
  if (exact) c = coefficients();
  torch::Tensor out = torch::empty_like(x);
  const int64_t n = product(options_.shape());
  const int64_t outer = x.numel() / n;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "nir_neuron_step", [&] {
    std::map<std::string, const scalar_t*> p;
    for (const auto& [field, tensor] : buffers_) p[field] = tensor.data_ptr<scalar_t>();
    auto ptr = [](const torch::Tensor& t) { return t.defined() ? t.data_ptr<scalar_t>() : nullptr; };
    step_loop<scalar_t>(options_.kind(), exact, static_cast<scalar_t>(options_.dt()), outer, n,
                        x.data_ptr<scalar_t>(), i_ >= 0 ? state_at(i_).data_ptr<scalar_t>() : nullptr,
                        state_at(v_).data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), p, ptr(c.syn_a), ptr(c.syn_b),
                        ptr(c.mem_a), ptr(c.mem_b));
  });
  return out;
}

}  // namespace tt::nir
