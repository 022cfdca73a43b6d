// libFuzzer target: architecture JSON documents (tt::arch::build after parsing). Documents that
// parse must build or throw tt::Error. The harness skips documents with a number above 64: a huge
// but valid layer is a legitimate allocation, not a reader bug, and would only slow the search.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tracetorch/core/arch.h"
#include "tracetorch/core/error.h"

namespace {

bool has_large_number(const tt::arch::json& root) {
  std::vector<const tt::arch::json*> stack{&root};
  while (!stack.empty()) {
    const tt::arch::json* v = stack.back();
    stack.pop_back();
    if (v->is_number() && !(v->get<double>() <= 64.0)) return true;
    if (v->is_structured())
      for (const auto& child : *v) stack.push_back(&child);
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const tt::arch::Registry registry = tt::arch::default_registry();
  tt::arch::json document;
  try {
    document = tt::arch::json::parse(data, data + size);
  } catch (const tt::arch::json::exception&) {
    return 0;  // tt::arch::load turns these into a tt::ArchError
  }
  if (has_large_number(document)) return 0;
  try {
    tt::arch::build(document, registry);
  } catch (const tt::Error&) {
  }
  return 0;
}
