#!/usr/bin/env bash
# Compile every .cu here to PTX with CUDA 11.8's nvcc for compute_52 (PTX
# .version 7.8, which drivers ≥ 520 load and JIT for any newer GPU), and record
# the SHA-256 of each source (and of the .cuh headers they include) in kernels.sha256 so that hash_test.go fails when
# a .cu changed without regenerating, and ptxas's resources of each entry for
# sm_90 in resources.sm_90.txt. Called by `make kernels`; TestPTXRegenerates
# runs it on a copy and wants every output byte for byte.
#
# NVCC may name an nvcc 11.8; otherwise ../scripts/nvcc-11.8 fetches one
# into ~/.cache/nvcc-11.8 (nothing is installed system-wide).
set -euo pipefail
cd "$(dirname "$0")"
nvcc=${NVCC:-$(../scripts/nvcc-11.8)/bin/nvcc}
ver=$("$nvcc" --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p')
[[ $ver == 11.8 ]] || { echo "gen.sh: $nvcc is CUDA $ver; want 11.8 (PTX that drivers ≥ 520 load)" >&2; exit 1; }
: >kernels.sha256.tmp
for cu in *.cu; do
  ptx=${cu%.cu}.ptx
  "$nvcc" -ptx -arch=compute_52 -std=c++14 -O3 -allow-unsupported-compiler -o "$ptx.tmp" "$cu"
  mv "$ptx.tmp" "$ptx"
  sha256sum "$cu" >>kernels.sha256.tmp
  echo "gen.sh: $cu → $ptx ($(grep -m1 '^\.version' "$ptx"))" >&2
done
sha256sum *.cuh >>kernels.sha256.tmp   # headers the .cu files include
mv kernels.sha256.tmp kernels.sha256
# What ptxas makes of each entry for sm_90 (H100, H200): registers a thread,
# spills, static shared memory, stack; read by resources.go, checked
# against the launches the lowering makes (lower's TestKernelResources) and
# by the emulator at every launch.
ptxas=$(dirname "$nvcc")/ptxas
{
  echo "# ptxas -arch=sm_90 -v of every entry (CUDA $ver): name registers spill_stores spill_loads smem_bytes stack_bytes"
  for ptx in *.ptx; do
    "$ptxas" -arch=sm_90 -v "$ptx" -o /dev/null 2>&1 | awk '
      /Compiling entry function/ { gsub(/\x27/, "", $0); match($0, /function [^ ]+/); name = substr($0, RSTART + 9, RLENGTH - 9); gsub(/[\047]/, "", name) }
      /bytes stack frame/ { stack = $1; st = $5; ld = $9 }
      /Used [0-9]+ registers/ { regs = $5; smem = 0; if (match($0, /[0-9]+ bytes smem/)) smem = substr($0, RSTART, RLENGTH - 11) + 0
                               print name, regs, st, ld, smem, stack }'
  done | sort
} >resources.sm_90.tmp
mv resources.sm_90.tmp resources.sm_90.txt
