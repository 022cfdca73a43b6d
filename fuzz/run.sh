#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (make fuzz). A crash, sanitizer report, leak, timeout or
# out-of-memory stops with exit 1; the input that caused it is in BUILD/fuzz-artifacts/.
#   fuzz/run.sh BUILD_DIR SECONDS [TARGET...]
set -euo pipefail
build=${1:?build dir}
seconds=${2:-60}
shift 2 || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(pt_container unpickler arch nir)
here=$(cd "$(dirname "$0")" && pwd)
seeds="$build/fuzz-seeds"
[ -d "$seeds" ] || /usr/bin/python3 "$here/make_corpus.py" "$seeds"
mkdir -p "$build/fuzz-artifacts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export OMP_NUM_THREADS=1
failed=0
for t in "${targets[@]}"; do
  corpus="$build/fuzz-corpus/$t"   # grows across runs; the seeds stay as generated
  mkdir -p "$corpus" "$seeds/$t"
  echo "fuzz: $t for ${seconds}s"
  if ! "$build/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
      -max_len=1048576 -print_final_stats=1 -artifact_prefix="$build/fuzz-artifacts/$t-" \
      "$corpus" "$seeds/$t" > "$build/fuzz-artifacts/$t.log" 2>&1; then
    echo "fuzz: $t FAILED (log: $build/fuzz-artifacts/$t.log)"
    tail -40 "$build/fuzz-artifacts/$t.log"
    failed=1
  else
    grep -E "stat::number_of_executed_units|cov:" "$build/fuzz-artifacts/$t.log" | tail -2
  fi
done
exit $failed
