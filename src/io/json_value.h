#pragma once
// Private to src/io: JSON <-> pickle-able IValues, for metadata and architectures stored inside
// .pt files (dicts, lists, strings, numbers, bools, None; no tensors).
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace tt::io::detail {

// objects -> str-keyed dicts, arrays -> lists, integers -> int, floats -> float, null -> None.
// Throws tt::ValueError for an unsigned integer beyond int64 (naming `what`).
c10::IValue json_to_ivalue(const nlohmann::ordered_json& value, const std::string& what);

// The inverse; tuples become arrays and int dict keys their decimal strings. nullopt when the
// value holds anything JSON cannot (a tensor, a non-finite float, a key of another type).
std::optional<nlohmann::ordered_json> ivalue_to_json(const c10::IValue& value);

}  // namespace tt::io::detail
