#include "tracetorch/io/state_dict_tools.h"

#include <cmath>
#include <limits>
#include <map>

#include "core/text.h"
#include "tracetorch/core/error.h"

namespace tt::io {

namespace {

using detail::shape_string;

const c10::IValue* find(const c10::impl::GenericDict& dict, const std::string& key) {
  for (const auto& entry : dict)
    if (entry.key().isString() && entry.key().toStringRef() == key) return &entry.value();
  return nullptr;
}

bool flat_tensor_dict(const c10::IValue& v) {
  if (!v.isGenericDict()) return false;
  for (const auto& entry : v.toGenericDict())
    if (!entry.key().isString() || !entry.value().isTensor()) return false;
  return true;
}

std::string key_text(const c10::IValue& key) {
  if (key.isString()) return key.toStringRef();
  if (key.isInt()) return std::to_string(key.toInt());
  return key.tagKind();
}

void flatten(const c10::IValue& v, const std::string& prefix, TensorDict& out, size_t depth) {
  if (depth > 64) return;
  if (v.isTensor()) {
    if (v.toTensor().defined() && !out.contains(prefix)) out.insert(prefix, v.toTensor());
  } else if (v.isGenericDict()) {
    for (const auto& entry : v.toGenericDict()) flatten(entry.value(), detail::join_path(prefix, key_text(entry.key())), out, depth + 1);
  } else if (v.isList()) {
    const auto items = v.toListRef();
    for (size_t i = 0; i < items.size(); ++i) flatten(items[i], detail::join_path(prefix, std::to_string(i)), out, depth + 1);
  }
}

std::string dtype_name(torch::ScalarType t) {
  std::string name = c10::toString(t);  // "Float"
  static const std::map<std::string, std::string> python = {
      {"Float", "float32"}, {"Double", "float64"}, {"Half", "float16"}, {"BFloat16", "bfloat16"},
      {"Long", "int64"},    {"Int", "int32"},     {"Short", "int16"},   {"Char", "int8"},
      {"Byte", "uint8"},    {"Bool", "bool"}};
  auto found = python.find(name);
  return found == python.end() ? name : found->second;
}

}  // namespace

TensorDict load_tensor_dict_entry(const std::string& path, const std::string& entry, const LoadOptions& options) {
  const c10::IValue file = load_pt(path, options);
  if (entry.empty() && flat_tensor_dict(file)) return to_tensor_dict(file, path);
  if (!file.isGenericDict()) throw FileError(path + ": expected a dict of tensors or a checkpoint at the top level");
  const auto top = file.toGenericDict();
  const c10::IValue* chosen = nullptr;
  std::string name = entry;
  if (entry.empty()) {
    for (const char* k : {"model_state_dict", "state_dict"})
      if ((chosen = find(top, k))) {
        name = k;
        break;
      }
    if (chosen == nullptr)
      throw FileError(path + ": not a flat dict of tensors and no 'model_state_dict' or 'state_dict' entry; pick one "
                             "with --key");
  } else if ((chosen = find(top, entry)) == nullptr) {
    std::vector<std::string> keys;
    for (const auto& e : top) keys.push_back(key_text(e.key()));
    throw FileError(path + ": no entry '" + entry + "' (entries: " + detail::join_keys(keys) + ")");
  }
  TensorDict out;
  flatten(*chosen, "", out, 0);
  if (out.is_empty() && !chosen->isGenericDict()) throw FileError(path + ": entry '" + name + "' holds no tensors");
  return out;
}

std::vector<TensorSummary> summarize(const TensorDict& dict) {
  std::vector<TensorSummary> out;
  for (const auto& item : dict) {
    const torch::Tensor& t = item.value();
    TensorSummary s;
    s.key = item.key();
    s.shape = t.sizes().vec();
    s.dtype = dtype_name(t.scalar_type());
    s.device = t.device().str();
    s.numel = t.numel();
    s.bytes = t.numel() * static_cast<int64_t>(t.element_size());
    s.min = s.max = s.mean = std::numeric_limits<double>::quiet_NaN();
    if (t.numel() > 0 && t.scalar_type() != torch::kBool) {
      torch::Tensor d = t.detach().to(torch::kCPU, torch::kDouble);
      torch::Tensor finite = torch::isfinite(d);
      s.nan_count = torch::isnan(d).sum().item<int64_t>();
      s.inf_count = torch::isinf(d).sum().item<int64_t>();
      torch::Tensor values = d.masked_select(finite);
      if (values.numel() > 0) {
        s.min = values.min().item<double>();
        s.max = values.max().item<double>();
        s.mean = values.mean().item<double>();
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

bool DictDifference::equal() const {
  if (!only_in_a.empty() || !only_in_b.empty()) return false;
  for (const auto& c : common)
    if (!c.close) return false;
  return true;
}

DictDifference diff(const TensorDict& a, const TensorDict& b, double rtol, double atol) {
  DictDifference out;
  for (const auto& item : a) {
    if (!b.contains(item.key())) {
      out.only_in_a.push_back(item.key());
      continue;
    }
    const torch::Tensor x = item.value().detach().cpu();
    const torch::Tensor y = b[item.key()].detach().cpu();
    KeyDifference d;
    d.key = item.key();
    if (!x.sizes().equals(y.sizes())) {
      d.problem = "shape " + shape_string(x.sizes()) + " vs " + shape_string(y.sizes());
    } else {
      if (x.scalar_type() != y.scalar_type()) d.problem = "dtype " + dtype_name(x.scalar_type()) + " vs " + dtype_name(y.scalar_type());
      if (x.numel() > 0) {
        const torch::Tensor xd = x.to(torch::kDouble), yd = y.to(torch::kDouble);
        const torch::Tensor abs = (xd - yd).abs();
        // NaN in both places is equal (equal_nan), NaN in one is an infinite difference.
        const torch::Tensor both_nan = torch::isnan(xd) & torch::isnan(yd);
        const torch::Tensor a_abs = torch::where(both_nan, torch::zeros_like(abs), torch::nan_to_num(abs, std::numeric_limits<double>::infinity()));
        d.max_abs = a_abs.max().item<double>();
        const torch::Tensor nonzero = yd != 0;
        d.max_rel = nonzero.any().item<bool>() ? (a_abs.masked_select(nonzero) / yd.abs().masked_select(nonzero)).max().item<double>() : 0.0;
      }
      d.close = d.problem.empty() && torch::allclose(x.to(torch::kDouble), y.to(torch::kDouble), rtol, atol, /*equal_nan=*/true);
    }
    out.common.push_back(std::move(d));
  }
  for (const auto& item : b)
    if (!a.contains(item.key())) out.only_in_b.push_back(item.key());
  return out;
}

FilterResult filter_for(const TensorDict& dict, const TensorDict& target) {
  FilterResult out;
  for (const auto& item : dict) {
    if (!target.contains(item.key())) {
      out.skipped.emplace_back(item.key(), "not in the model");
    } else if (!target[item.key()].sizes().equals(item.value().sizes())) {
      out.skipped.emplace_back(item.key(), "shape " + shape_string(item.value().sizes()) + " vs the model's " +
                                               shape_string(target[item.key()].sizes()));
    } else {
      out.kept.insert(item.key(), item.value());
    }
  }
  for (const auto& item : target)
    if (!out.kept.contains(item.key())) out.missing.push_back(item.key());
  return out;
}

TensorDict rename_prefix(const TensorDict& dict, const std::string& from, const std::string& to) {
  TensorDict out;
  std::map<std::string, std::string> origin;
  for (const auto& item : dict) {
    const bool match = item.key().compare(0, from.size(), from) == 0;
    const std::string key = match ? to + item.key().substr(from.size()) : item.key();
    auto [it, fresh] = origin.emplace(key, item.key());
    if (!fresh) throw ValueError("rename: '" + it->second + "' and '" + item.key() + "' both become '" + key + "'");
    out.insert(key, item.value());
  }
  return out;
}

TensorDict convert_dtype(const TensorDict& dict, torch::Dtype dtype) {
  if (!c10::isFloatingType(dtype))
    throw ValueError("convert: the target dtype must be floating (float32, float64, float16, bfloat16), got " +
                     dtype_name(dtype));
  TensorDict out;
  for (const auto& item : dict)
    out.insert(item.key(), item.value().is_floating_point() ? item.value().to(dtype) : item.value());
  return out;
}

}  // namespace tt::io
