#!/usr/bin/env bash
# The GPU benchmark of bench/RESULTS.md, on a machine with an NVIDIA GPU,
# PyTorch with CUDA, and the .gpu/ folder made by the workspace's gpu/pack
# (Go, vendored modules, CUDA 11.8 headers). From the repository root:
#   OUT=/tmp/out bench/run-gpu.sh
# then, where Go builds: dsx bench --device none --peers $OUT/dsx.json,$OUT/torch_fp32.json,$OUT/torch_mixed.json --plot bench/results.png
set -uo pipefail
OUT=${OUT:-/tmp/dsx-bench}; mkdir -p "$OUT"
SHAPES=${SHAPES:-32768x1024x1000,8192x4096x32000,8192x4096x128256}
STEPS=${STEPS:-20}
export GPU_LINK_LOOSE=1
t0=$SECONDS
log() { echo "run-gpu: $* ($((SECONDS - t0)) s)" | tee -a "$OUT/log.txt" >&2; }
bash .gpu/run go build -tags gpu -o /tmp/dsx-gpu ./cmd/dsx >>"$OUT/log.txt" 2>&1 || { log "build failed"; tail -40 "$OUT/log.txt"; exit 1; }
log built
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'; } >>"$OUT/log.txt" 2>&1
/tmp/dsx-gpu devices >>"$OUT/log.txt" 2>&1
/tmp/dsx-gpu bench --device cuda --shapes "$SHAPES" --modes fp32,tf32,bf16 --steps "$STEPS" --warmup 2 --check --json >"$OUT/dsx.json" 2>>"$OUT/log.txt"
log "dsx bench rc=$?"
python3 bench/peers/torch_xent.py --device cuda --shapes "$SHAPES" --modes fp32 --steps "$STEPS" --warmup 3 >"$OUT/torch_fp32.json" 2>>"$OUT/torch.log"
log "torch fp32 rc=$?"
python3 bench/peers/torch_xent.py --device cuda --shapes "$SHAPES" --modes tf32,bf16 --variants torch-eager --steps "$STEPS" --warmup 3 >"$OUT/torch_mixed.json" 2>>"$OUT/torch.log"
log "torch tf32,bf16 rc=$?"
if [[ ${TESTS:-1} == 1 ]]; then
  timeout "${TEST_TIMEOUT:-240}" bash .gpu/run go test -tags gpu -count=1 ./backend/... ./cudakernels/ >"$OUT/test.log" 2>&1
  log "gpu tests rc=$?"
fi
