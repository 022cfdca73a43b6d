#!/usr/bin/env bash
# Installs the Debian packages tracetorch needs, skipping those already present.
# Safe to run repeatedly; used by `make demo`, `make test` and CI on a fresh Debian 12 machine.
set -euo pipefail

packages=(
  build-essential cmake make pkg-config
  libtorch-dev
  libopenblas0-pthread   # without it LibTorch falls back to the reference BLAS (about 10x slower)
  nlohmann-json3-dev libcli11-dev zlib1g-dev
  libhdf5-dev            # NIR files (HDF5)
  libgloo-dev            # tt::distributed: the headers c10d's ProcessGroupGloo.hpp includes
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  python3 python3-torch
  python3-numpy python3-h5py   # the NIR interop tests write files with the reference nir package
  clang libclang-rt-14-dev llvm-14   # make test-sanitize and make fuzz (ASan, UBSan, libFuzzer, llvm-symbolizer)
  dataset-fashion-mnist
  gnuplot-nox            # the demo's pictures (pngcairo terminal)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
