#!/usr/bin/env bash
# Side-by-side CPU benchmark: the default bin/dsx with the system's BLAS
# loaded at run time, the same binary with DSX_BLAS=off (gonum), PyTorch and
# numpy, on the same shapes, interleaved shape by shape and round by round
# (the order reversed every other round) so that background load hits all
# alike. Prints a markdown table: per column the median over rounds of each
# process's median step time, with the range over rounds, and the ratio to
# PyTorch taken per round (the two ran seconds apart) as median and range.
#
#   bench/run-cpu.sh [ROUNDS] [SHAPES]       (defaults: 7, the three issue shapes)
#   ROUNDS=9 STEPS=50 WARMUP=10 bench/run-cpu.sh
# Steps per process: by default 100 timed after 10 warm-up for shapes under
# 10^8 multiply-adds (a process's first ~10 steps are slower), 10 after 3
# up to 10^10, 3 after 1 above (bench/RESULTS.md's protocol); STEPS and
# WARMUP set all.
#   COLS=dsx,torch bench/run-cpu.sh          (columns: dsx, off, thr, whole, torch, torchhuge, numpy, base;
#                                            thr: DSX_BLAS_THREADS=$(nproc), the library's own threads;
#                                            whole: dsx with --chunk-rows B, the batch never chunked;
#                                            torchhuge: PyTorch with GLIBC_TUNABLES=glibc.malloc.hugetlb=1,
#                                            so that its large buffers are reused on huge pages)
#   GRADS=W,b,x bench/run-cpu.sh            (the gradients every column computes: W,b (default) or W,b,x)
# Every process runs under /usr/bin/time: a second table gives its peak
# resident memory (max RSS: the inputs, parameters and everything the step
# holds) and the ratios to PyTorch's.
#   PLOT=file.png bench/run-cpu.sh ...       (also draws time and peak memory against T:
#                                            go run ./bench/plotcpu, one series per column)
#   BASE=/path/to/other/dsx bench/run-cpu.sh (adds column base: that binary as it is, e.g. an
#                                            older build, to check "no slower than before")
#   OUT=dir keeps the raw JSON records (a temporary folder by default).
# The BLAS's own settings pass through: OPENBLAS_CORETYPE=SkylakeX, say,
# applies to dsx, PyTorch and numpy alike (all three load Debian's OpenBLAS).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-${ROUNDS:-7}}
SHAPES=${2:-${SHAPES:-4096x784x10,1024x784x10,4096x1024x1000}}
COLS=${COLS:-dsx,off,torch,numpy${BASE:+,base}}
GRADS=${GRADS:-W,b}
OUT=${OUT:-$(mktemp -d)}
PY=${PY:-/usr/bin/python3} # Debian's python3-torch and python3-numpy live there
mkdir -p "$OUT" bin
rm -f "$OUT"/*.json

CGO_ENABLED=0 go build -o bin/dsx ./cmd/dsx
bin/dsx devices --json >"$OUT/devices.json"
echo "bin/dsx: $(bin/dsx devices | grep -m1 'BLAS:' | sed 's/^ *//')" >&2

export OMP_WAIT_POLICY=PASSIVE
args() { # shape: the bench flags, with steps for its size unless set
  local b n t; IFS=x read -r b n t <<<"$1"
  local steps=100 warm=10
  if ((b * n * t >= 10000000000)); then steps=3 warm=1
  elif ((b * n * t >= 100000000)); then steps=10 warm=3; fi
  echo --shapes "$1" --steps "${STEPS:-$steps}" --warmup "${WARMUP:-$warm}" --grads "$GRADS"
}
T() { /usr/bin/time -f %M -o "$RSS" "$@"; } # the command, its peak RSS (KiB) into $RSS
run() { # column, shape
  case $1 in
  dsx) T bin/dsx bench --device cpu --json $(args "$2") ;;
  off) DSX_BLAS=off T bin/dsx bench --device cpu --json $(args "$2") ;;
  thr) DSX_BLAS_THREADS=$(nproc) T bin/dsx bench --device cpu --json $(args "$2") ;;
  whole) T bin/dsx bench --device cpu --json --chunk-rows "${2%%x*}" $(args "$2") ;;
  base) T "$BASE" bench --device cpu --json $(args "$2") ;;
  torch) T "$PY" bench/peers/torch_xent.py --device cpu $(args "$2") ;;
  torchhuge) GLIBC_TUNABLES=glibc.malloc.hugetlb=1 T "$PY" bench/peers/torch_xent.py --device cpu $(args "$2") ;;
  numpy) T "$PY" bench/peers/numpy_xent.py $(args "$2") ;;
  *) echo "run-cpu.sh: unknown column $1" >&2; exit 2 ;;
  esac
}
IFS=, read -ra shapes <<<"$SHAPES"
IFS=, read -ra cols <<<"$COLS"
for r in $(seq 1 "$ROUNDS"); do
  order=("${cols[@]}")
  if ((r % 2 == 0)); then
    order=(); for ((i = ${#cols[@]} - 1; i >= 0; i--)); do order+=("${cols[i]}"); done
  fi
  for s in "${shapes[@]}"; do
    echo "round $r/$ROUNDS: $s" >&2
    for c in "${order[@]}"; do
      RSS="$OUT/r$r-$s-$c.rss" run "$c" "$s" >"$OUT/r$r-$s-$c.json" 2>"$OUT/r$r-$s-$c.err" || { cat "$OUT/r$r-$s-$c.err" >&2; exit 1; }
    done
  done
done

"$PY" - "$OUT" "$SHAPES" "$COLS" "$ROUNDS" "$GRADS" <<'PY'
import glob, json, statistics, sys
out, shapes, cols, rounds = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(","), int(sys.argv[4])
names = {"dsx": "dsx (BLAS)", "off": "dsx DSX_BLAS=off", "thr": "dsx DSX_BLAS_THREADS=n", "whole": "dsx unchunked",
         "base": "base", "torch": "PyTorch", "torchhuge": "PyTorch hugetlb", "numpy": "numpy"}
peers = [p for p in ("torch", "torchhuge") if p in cols]
ratios = [(c, p) for p in peers for c in cols if c not in peers]
def ms(r, s, c):
    try:
        recs = json.load(open(f"{out}/r{r}-{s}-{c}.json"))
    except (OSError, ValueError):
        return None
    return statistics.median(rec["ms_per_step"] for rec in recs)
def rss(r, s, c):  # MiB
    try:
        return int(open(f"{out}/r{r}-{s}-{c}.rss").read().split()[-1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
def cell(v, fmt):
    v = [x for x in v if x is not None]
    if not v:
        return "–"
    return f"{fmt(statistics.median(v))} ({fmt(min(v))}–{fmt(max(v))})"
def table(get, unit, fmt):
    print("| B×N×T | " + " | ".join([names[c] + " " + unit for c in cols] + [names[c] + " / " + names[p] for c, p in ratios]) + " |")
    print("|---|" + "---:|" * (len(cols) + len(ratios)))
    for s in shapes:
        per = {c: [get(r, s, c) for r in range(1, rounds + 1)] for c in cols}
        row = [s.replace("x", "×")] + [cell(per[c], fmt) for c in cols]
        for c, p in ratios:
            rat = [a / b for a, b in zip(per[c], per[p]) if a and b]
            row.append(cell(rat, lambda x: f"{x:.2f}×"))
        print("| " + " | ".join(row) + " |")
print(f"Step time, gradients {sys.argv[5]}:\n")
table(ms, "ms", lambda x: f"{x:.2f}")
print(f"\nPeak memory (max RSS of the process):\n")
table(rss, "MiB", lambda x: f"{x:.0f}")
print(f"\n{rounds} rounds, {json.load(open(out + '/devices.json'))['backends'][-1].get('blas', {}).get('name', '?')} loaded by bin/dsx; raw records in {out}")
PY
if [[ -n ${PLOT:-} ]]; then
  go run ./bench/plotcpu -dir "$OUT" -shapes "$SHAPES" -cols "$COLS" -rounds "$ROUNDS" -out "$PLOT"
fi
