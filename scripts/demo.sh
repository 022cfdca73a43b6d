#!/usr/bin/env bash
# The main job: stream Fashion-MNIST through a spiking network, save mid-sequence, resume in a
# new process, and show identical outputs. Usage: scripts/demo.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build}
core=$(bash "$(dirname "$0")/openblas-coretype.sh")
if [ -n "$core" ]; then export OPENBLAS_CORETYPE=$core; fi
out=${TT_DEMO_DIR:-$build/demo}
mkdir -p "$out"
echo "== process 1: stream 50 steps, save weights + states at step 25 (into $out)"
"$build/examples/fashion_mnist_stream" run --dir "$out"
echo "== process 2: restore and continue from step 25"
"$build/examples/fashion_mnist_stream" resume --dir "$out"
echo "== the same files with the command-line tool"
"$build/tools/tracetorch" info "$out/states_step25.pt"
