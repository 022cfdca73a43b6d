#pragma once
// tracetorch error types. Every failure the library reports is a tt::Error (a std::runtime_error)
// whose message names what went wrong: the key, the file, the expected and the actual value.
// Subclasses exist only where a caller needs to tell failures apart. tracetorch's layers and
// loaders check what they are given before handing it to LibTorch, so a c10::Error out of them is
// a bug to report; LibTorch's own modules in the same model (a Linear given the wrong size) still
// throw theirs.
#include <stdexcept>
#include <string>

namespace tt {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A file could not be read or written: missing, unreadable, not a torch file, truncated,
// corrupt, hostile (unknown pickle global), or of the wrong top-level type.
class FileError : public Error {
 public:
  using Error::Error;
};

// A state_dict or states mapping does not fit the model: missing or unexpected keys, shape
// mismatches. Thrown before anything is changed.
class LoadError : public Error {
 public:
  using Error::Error;
};

// An architecture JSON document is invalid; the message starts with the JSON path.
class ArchError : public Error {
 public:
  using Error::Error;
};

// An argument is out of its allowed range (e.g. a decay outside (0, 1)).
class ValueError : public Error {
 public:
  using Error::Error;
};

}  // namespace tt
