#!/usr/bin/env bash
# Compile every .cu here to PTX with CUDA 11.8's nvcc for compute_52 (PTX
# .version 7.8, which drivers ≥ 520 load and JIT for any newer GPU), and record
# the SHA-256 of each source (and of the .cuh headers they include) in kernels.sha256 so that hash_test.go fails when
# a .cu changed without regenerating. Called by `make kernels`.
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
