#pragma once
// Weight initialisation for reservoirs: recurrent topologies scaled to a spectral radius, and
// input / feedback initialisers.
//
// Contract:
// - Every function draws from the given generator only, in a fixed order, so a seed reproduces
//   the same weights bit for bit (CPU generator; weights are built on the CPU in float64 and
//   cast to the requested dtype at the end).
// - make_recurrent returns a dense [n, n] matrix (PyTorch's convention: row i = the weights INTO
//   unit i, so pre = W h). With `spectral_radius` given, the matrix is scaled so that the largest
//   |eigenvalue| equals it (measured with torch::linalg_eigvals in float64); a matrix whose radius
//   is 0 (e.g. a nilpotent sparse draw) cannot be scaled and is a tt::ValueError.
// - Topologies (edge weights uniform in [-1, 1] unless stated):
//     dense          every entry                                            (torch_rc's default)
//     erdos_renyi    exactly round(density * n * n) entries, positions uniform without repetition
//     watts_strogatz ring lattice, each unit linked to its k nearest neighbours (k even), each
//                    lattice edge rewired with probability p (no self loops, no duplicates);
//                    the edge set is symmetric, the two directions get independent weights
//     ring           a single directed cycle i -> i+1 (mod n) of constant weight 1: the
//                    "simple cycle reservoir"; its radius is exactly the weight
#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>

namespace tt::rc {

struct Topology {
  enum class Kind { Dense, ErdosRenyi, WattsStrogatz, Ring };
  Kind kind = Kind::Dense;
  double density = 1.0;  // erdos_renyi
  int64_t k = 4;         // watts_strogatz: neighbours per unit (even)
  double p = 0.1;        // watts_strogatz: rewiring probability

  static Topology dense() { return {}; }
  static Topology erdos_renyi(double density) { return {Kind::ErdosRenyi, density, 4, 0.1}; }
  static Topology watts_strogatz(int64_t k, double p) { return {Kind::WattsStrogatz, 1.0, k, p}; }
  static Topology ring() { return {Kind::Ring, 1.0, 4, 0.1}; }

  // "dense", "erdos_renyi(density=0.01)", ...
  std::string to_string() const;
};

// Initialiser of a [out, in] input or feedback matrix (and of the reservoir bias, as [n]).
struct InputInit {
  enum class Kind { Uniform, Binary, Zero };
  Kind kind = Kind::Uniform;
  double scale = 1.0;

  static InputInit uniform(double scale = 1.0) { return {Kind::Uniform, scale}; }  // U(-scale, scale)
  static InputInit binary(double scale = 1.0) { return {Kind::Binary, scale}; }    // +-scale, p = 1/2
  static InputInit zero() { return {Kind::Zero, 0.0}; }

  std::string to_string() const;
};

// A CPU generator seeded with `seed` (torch's default CPU generator when no seed is given).
torch::Generator make_generator(std::optional<uint64_t> seed);

// The recurrent matrix described above, [n, n], float64 unless `dtype` says otherwise.
torch::Tensor make_recurrent(int64_t n, const Topology& topology, std::optional<double> spectral_radius,
                             torch::Generator& generator, torch::Dtype dtype = torch::kFloat64);

// An initialised tensor of the given shape ([out, in] or [n]).
torch::Tensor make_input(torch::IntArrayRef shape, const InputInit& init, torch::Generator& generator,
                         torch::Dtype dtype = torch::kFloat64);

// max |eigenvalue| of a square matrix, computed in float64 (dense, any device: moved to the CPU).
double spectral_radius(const torch::Tensor& matrix);

// Fraction of nonzero entries.
double density(const torch::Tensor& matrix);

}  // namespace tt::rc
