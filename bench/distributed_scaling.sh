#!/usr/bin/env bash
# Scaling of data-parallel training from 1 to 2 processes on one machine (docs/benchmarks.md,
# "Distributed data parallel"): the W2 shape (batch 64, T = 25, Linear(784,256) -> LIB(256) ->
# Linear(256,10) -> LI(10), cross-entropy, Adam), one thread per process, the global batch fixed,
# 1 and 2 processes alternating for ROUNDS rounds. Prints ms per step of each run.
#   bench/distributed_scaling.sh [build dir] [rounds] [steps]
set -euo pipefail
BUILD=${1:-build}
ROUNDS=${2:-3}
STEPS=${3:-30}
EXE="$BUILD/examples/train_distributed"
export OMP_NUM_THREADS=1
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-$(bash "$(dirname "$0")/../scripts/openblas-coretype.sh")}
ARGS=(--steps "$STEPS" --batch 64 --time-steps 25 --inputs 784 --hidden 256 --classes 10 --dataset 640)
unset RANK WORLD_SIZE MASTER_ADDR MASTER_PORT
for round in $(seq "$ROUNDS"); do
  "$EXE" "${ARGS[@]}" | grep "ms per step"
  port=$((29600 + round))
  for r in 1 0; do
    RANK=$r WORLD_SIZE=2 LOCAL_RANK=$r MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$EXE" "${ARGS[@]}" &
  done | grep "ms per step"
  wait
done
