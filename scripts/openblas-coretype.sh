#!/usr/bin/env bash
# Prints the OpenBLAS core type to force on this machine, or nothing when OpenBLAS's own choice
# is right. Debian's OpenBLAS (0.3.21) does not recognise some virtualised Xeons and falls back
# to its "Prescott" (SSE3) kernels: slower, and rounding differently from the AVX2 / AVX-512
# kernels the golden data was made with. An explicit OPENBLAS_CORETYPE is always kept.
set -u
if [ -n "${OPENBLAS_CORETYPE:-}" ]; then echo "$OPENBLAS_CORETYPE"; exit 0; fi
detected=$(OPENBLAS_VERBOSE=2 python3 -c "import ctypes; ctypes.CDLL('libopenblas.so.0')" 2>&1 | sed -n 's/^Core: //p')
case "$detected" in
  Prescott|Core2|Katmai|Coppermine|Northwood|Banias|Atom|Generic|"") ;;
  *) exit 0 ;;  # a kernel for this CPU was found (or OpenBLAS is missing: nothing to force)
esac
[ -n "$detected" ] || exit 0
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
has() { case " $flags " in *" $1 "*) return 0 ;; esac; return 1; }
if has avx512f && has avx512bw && has avx512vl && has avx512dq; then echo SkylakeX
elif has avx2 && has fma; then echo Haswell
fi
