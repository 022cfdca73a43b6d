#pragma once
// How error messages name what a file held where something else was expected ("a dict", "None").
#include <ATen/core/ivalue.h>

#include <string>

namespace tt::io::detail {

inline std::string describe_value(const c10::IValue& v) {
  if (v.isTensor()) return "a tensor";
  if (v.isGenericDict()) return "a dict";
  if (v.isList()) return "a list";
  if (v.isTuple()) return "a tuple";
  if (v.isNone()) return "None";
  if (v.isString()) return "a string";
  if (v.isInt()) return "an int";
  if (v.isDouble()) return "a float";
  if (v.isBool()) return "a bool";
  return "a " + v.tagKind();
}

}  // namespace tt::io::detail
