#!/usr/bin/env bash
# Streaming benchmarks, C++ next to the Python baseline, one thread each.
# Usage: scripts/bench.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build}
core=$(bash "$(dirname "$0")/openblas-coretype.sh")
if [ -n "$core" ]; then export OPENBLAS_CORETYPE=$core; fi
export OMP_NUM_THREADS=1
"$build/bench/bench_streaming" --benchmark_min_time=0.5 --benchmark_format=json >"$build/bench_cpp.json"
/usr/bin/python3 bench/python_baseline.py 1 >"$build/bench_py.jsonl"
/usr/bin/python3 - "$build/bench_cpp.json" "$build/bench_py.jsonl" <<'PY'
import json, sys
cpp = json.load(open(sys.argv[1]))["benchmarks"]
py = {}
for line in open(sys.argv[2]):
    r = json.loads(line); py[r["name"]] = r["us"]
names = {"0": "LI", "1": "LIB", "2": "DSRLITS"}
print(f"{'workload (one timestep, 1 thread)':55s} {'C++ us':>9s} {'Python us':>10s} {'speed-up':>9s}")
for b in cpp:
    name = b["name"].replace("BM_", "")
    if name.startswith("LayerStep/layer:"):
        parts = name.split("/")
        name = "LayerStep/" + names[parts[1].split(":")[1]] + "/" + "/".join(parts[2:])
    us = b["real_time"] / 1e3 if b["time_unit"] == "ns" else b["real_time"]
    base = py.get(name)
    ratio = f"{base / us:8.1f}x" if base else ""
    print(f"{name:55s} {us:9.2f} {base if base else float('nan'):10.2f} {ratio:>9s}")
PY
