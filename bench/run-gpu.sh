#!/usr/bin/env bash
# Issue 8's benchmark in ONE device call: dsx and its peers (PyTorch eager,
# torch.compile, Cut Cross-Entropy, Liger FLCE) on the same shapes and the
# same inputs (internal/benchdata = bench/peers/benchdata.py, bit for bit),
# the step with dx (--grads W,b,x), float32 and bfloat16 storage, random and
# LM-like inputs; then the merged table and plot, and Nsight Compute on
# dsx's kernels. From the repository root of a GPU machine with .gpu/ (the
# workspace's gpu/pack: Go, vendored modules, CUDA 11.8 headers, the peers):
#
#   OUT=$OUT/bench bench/run-gpu.sh
#
# and, to check the plumbing on a machine without a GPU (pure-Go dsx on the
# CPU, PyTorch on the CPU; the fused peers then record why they cannot run):
#
#   DEVICE=cpu SHAPES=256x64x1000 STEPS=3 OUT=/tmp/b bench/run-gpu.sh
#
# Stages (STAGES=, comma-separated, default all): build, dsx, peers, merge,
# ncu. Each stage has a time limit (LIMIT_<STAGE>=seconds) so that one slow
# stage cannot eat the call; every stage logs to $OUT/log.txt.
# Precision: fp32 rows (float32 storage) on random inputs, where the values
# change no one's arithmetic; bf16 rows (x, dx, W's copy in bfloat16,
# float32 master weights) on random AND lm inputs, where CCE's gradient
# filtering can skip work (the LM inputs' distribution: internal/benchdata).
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-/tmp/dsx-bench}; mkdir -p "$OUT"
# On the GPU machine everything runs through .gpu/run (RUN): it has no Go of
# its own, the binary needs the CUDA libraries .gpu/run points at, and the
# peers import from $DSX_PEERS, which .gpu/run unpacks and puts on
# PYTHONPATH. (A shell function would not do: `timeout go ...` runs the
# program, never a function.)
if [[ $DEVICE == cuda ]]; then
  SHAPES=${SHAPES:-8192x4096x128256,8192x2304x256000,32768x1024x1000}
  VARIANTS=${VARIANTS:-torch-eager,torch-compile,cce,liger-flce}
  DSX_VARIANTS=${DSX_VARIANTS:-chunked,tiled}
  RUN=(bash .gpu/run)
  PY=${PY:-python3}
  BIN=${BIN:-/tmp/dsx-gpu} TAGS="-tags gpu"
  [[ -f .gpu/run ]] || { echo "run-gpu: no .gpu/run here (../shared/gpu/pack makes it)" >&2; exit 2; }
else
  SHAPES=${SHAPES:-256x64x1000}
  VARIANTS=${VARIANTS:-torch-eager,torch-compile,cce,liger-flce}
  DSX_VARIANTS=${DSX_VARIANTS:-graph,chunked}
  RUN=()
  PY=${PY:-/usr/bin/python3}
  BIN=${BIN:-/tmp/dsx-cpu} TAGS=""
  export CGO_ENABLED=0
fi
STEPS=${STEPS:-10}
WARMUP=${WARMUP:-3}
STAGES=${STAGES:-build,dsx,peers,merge,ncu}
export GPU_LINK_LOOSE=1 PYTHONUNBUFFERED=1
[[ -n ${DSX_PEERS:-} ]] && export PYTHONPATH=$DSX_PEERS${PYTHONPATH:+:$PYTHONPATH}
t0=$SECONDS
log() { echo "run-gpu: $* ($((SECONDS - t0)) s)" | tee -a "$OUT/log.txt" >&2; }
want() { [[ ,$STAGES, == *,$1,* ]]; }
limit() { local v=LIMIT_$1; echo "${!v:-$2}"; }
# said RC: a stage's exit status in words; timeout's 124 (or 137 after its
# KILL) is a stage killed by its time limit, not a failure of its own.
said() { case $1 in 0) echo "rc=0" ;; 124|137) echo "KILLED by its time limit (rc=$1)" ;; *) echo "FAILED (rc=$1)" ;; esac; }

if want build; then
  # shellcheck disable=SC2086
  # A fresh machine compiles the whole module with cgo: 600 s by default.
  timeout "$(limit BUILD 600)" "${RUN[@]}" go build $TAGS -o "$BIN" ./cmd/dsx >>"$OUT/log.txt" 2>&1
  rc=$?
  if (( rc != 0 )); then
    (( rc == 124 || rc == 137 )) && log "build KILLED by its time limit ($(limit BUILD 600) s)" || log "build FAILED (rc=$rc)"
    exit 1
  fi
  log "built $BIN"
  { command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    "${RUN[@]}" "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
    "${RUN[@]}" "$BIN" devices; } >>"$OUT/log.txt" 2>&1
fi

common=(--shapes "$SHAPES" --grads W,b,x --steps "$STEPS" --warmup "$WARMUP")
if want dsx; then
  # fp32 rows on random inputs, bf16-storage rows on both kinds, each with
  # --check against the fp32 unchunked layer.
  timeout "$(limit DSX 420)" "${RUN[@]}" "$BIN" bench --device "$DEVICE" "${common[@]}" --variants "$DSX_VARIANTS" \
    --storage fp32 --inputs random --check --json >"$OUT/dsx-fp32.json" 2>>"$OUT/log.txt"
  log "dsx bench fp32 $(said $?)"
  timeout "$(limit DSX 420)" "${RUN[@]}" "$BIN" bench --device "$DEVICE" "${common[@]}" --variants "$DSX_VARIANTS" \
    --storage bf16 --inputs random,lm --check --json >"$OUT/dsx-bf16.json" 2>>"$OUT/log.txt"
  log "dsx bench bf16 $(said $?)"
fi

if want peers; then
  timeout "$(limit PEERS 600)" "${RUN[@]}" "$PY" bench/peers/torch_xent.py --device "$DEVICE" "${common[@]}" --variants "$VARIANTS" \
    --storage fp32 --inputs random --check >"$OUT/peers-fp32.json" 2>>"$OUT/peers.log"
  log "peers fp32 $(said $?)"
  timeout "$(limit PEERS 600)" "${RUN[@]}" "$PY" bench/peers/torch_xent.py --device "$DEVICE" "${common[@]}" --variants "$VARIANTS" \
    --storage bf16 --inputs random,lm --check >"$OUT/peers-bf16.json" 2>>"$OUT/peers.log"
  log "peers bf16 $(said $?)"
  grep -h '"skipped"' "$OUT"/peers-*.json | sort | uniq -c | tee -a "$OUT/log.txt" >&2
fi

if want merge; then
  files=$(ls "$OUT"/dsx-*.json "$OUT"/peers-*.json 2>/dev/null | paste -sd,)
  "${RUN[@]}" "$BIN" bench --device none --peers "$files" --plot "$OUT/plot.png" >"$OUT/table.txt" 2>>"$OUT/log.txt"
  log "merged rc=$? into table.txt and plot.png"
  "${RUN[@]}" "$BIN" bench --device none --peers "$files" --json >"$OUT/all.json" 2>>"$OUT/log.txt"
  cat "$OUT/table.txt" >&2
fi

if want ncu && [[ $DEVICE == cuda ]]; then
  # Nsight Compute on one bf16 step of the Llama-3 head: every dsx kernel of
  # the step (cuBLAS's too), clocks left alone (METHOD.md), a summary as CSV.
  ncu=$(command -v ncu || ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
  if [[ -n $ncu ]]; then
    timeout "$(limit NCU 240)" "${RUN[@]}" "$ncu" --clock-control none --target-processes all --launch-skip 0 --launch-count 60 \
      --section SpeedOfLight --section LaunchStats --section Occupancy --csv --page details \
      "$BIN" bench --device cuda --shapes "${NCU_SHAPE:-8192x4096x128256}" --grads W,b,x --storage bf16 \
      --inputs lm --variants tiled --steps 1 --warmup 0 >"$OUT/ncu.csv" 2>>"$OUT/log.txt"
    log "ncu $(said $?) ($(wc -l <"$OUT/ncu.csv") lines)"
  else
    log "ncu not found"
  fi
fi
log done
