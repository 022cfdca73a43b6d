#include "json_value.h"

#include <cmath>
#include <limits>

#include "tracetorch/core/error.h"

namespace tt::io::detail {

namespace {

constexpr size_t kMaxDepth = 512;

c10::IValue to_ivalue(const nlohmann::ordered_json& value, const std::string& what, size_t depth) {
  if (depth > kMaxDepth) throw tt::ValueError(what + ": nests deeper than " + std::to_string(kMaxDepth) + " levels");
  switch (value.type()) {
    case nlohmann::ordered_json::value_t::null: return c10::IValue();
    case nlohmann::ordered_json::value_t::boolean: return c10::IValue(value.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return c10::IValue(value.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const uint64_t v = value.get<uint64_t>();
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw tt::ValueError(what + ": the integer " + std::to_string(v) + " does not fit in int64");
      return c10::IValue(static_cast<int64_t>(v));
    }
    case nlohmann::ordered_json::value_t::number_float: return c10::IValue(value.get<double>());
    case nlohmann::ordered_json::value_t::string: return c10::IValue(value.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      c10::impl::GenericList list(c10::AnyType::get());
      for (const auto& item : value) list.push_back(to_ivalue(item, what, depth + 1));
      return c10::IValue(list);
    }
    case nlohmann::ordered_json::value_t::object: {
      c10::impl::GenericDict dict(c10::StringType::get(), c10::AnyType::get());
      for (const auto& [key, item] : value.items()) dict.insert_or_assign(key, to_ivalue(item, what, depth + 1));
      return c10::IValue(dict);
    }
    default: throw tt::ValueError(what + ": binary JSON values cannot be stored");
  }
}

std::optional<nlohmann::ordered_json> to_json(const c10::IValue& value, size_t depth) {
  if (depth > kMaxDepth) return std::nullopt;
  if (value.isNone()) return nlohmann::ordered_json(nullptr);
  if (value.isBool()) return nlohmann::ordered_json(value.toBool());
  if (value.isInt()) return nlohmann::ordered_json(value.toInt());
  if (value.isDouble()) {
    if (!std::isfinite(value.toDouble())) return std::nullopt;
    return nlohmann::ordered_json(value.toDouble());
  }
  if (value.isString()) return nlohmann::ordered_json(value.toStringRef());
  if (value.isList() || value.isTuple()) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    const auto items = value.isList() ? value.toListRef().vec() : value.toTupleRef().elements().vec();
    for (const auto& item : items) {
      auto converted = to_json(item, depth + 1);
      if (!converted) return std::nullopt;
      out.push_back(std::move(*converted));
    }
    return out;
  }
  if (value.isGenericDict()) {
    nlohmann::ordered_json out = nlohmann::ordered_json::object();
    for (const auto& entry : value.toGenericDict()) {
      std::string key;
      if (entry.key().isString()) {
        key = entry.key().toStringRef();
      } else if (entry.key().isInt()) {
        key = std::to_string(entry.key().toInt());
      } else {
        return std::nullopt;
      }
      auto converted = to_json(entry.value(), depth + 1);
      if (!converted) return std::nullopt;
      out[key] = std::move(*converted);
    }
    return out;
  }
  return std::nullopt;
}

}  // namespace

c10::IValue json_to_ivalue(const nlohmann::ordered_json& value, const std::string& what) {
  return to_ivalue(value, what, 0);
}

std::optional<nlohmann::ordered_json> ivalue_to_json(const c10::IValue& value) { return to_json(value, 0); }

}  // namespace tt::io::detail
