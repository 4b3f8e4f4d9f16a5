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
# above (bench/RESULTS.md's protocol); STEPS and WARMUP set both.
#   COLS=dsx,torch bench/run-cpu.sh          (columns: dsx, off, thr, torch, numpy, base;
#                                            thr: DSX_BLAS_THREADS=$(nproc), the library's own threads)
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
  if ((b * n * t >= 100000000)); then steps=10 warm=3; fi
  echo --shapes "$1" --steps "${STEPS:-$steps}" --warmup "${WARMUP:-$warm}"
}
run() { # column, shape
  case $1 in
  dsx) bin/dsx bench --device cpu --json $(args "$2") ;;
  off) DSX_BLAS=off bin/dsx bench --device cpu --json $(args "$2") ;;
  thr) DSX_BLAS_THREADS=$(nproc) bin/dsx bench --device cpu --json $(args "$2") ;;
  base) "$BASE" bench --device cpu --json $(args "$2") ;;
  torch) "$PY" bench/peers/torch_xent.py --device cpu $(args "$2") ;;
  numpy) "$PY" bench/peers/numpy_xent.py $(args "$2") ;;
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
      run "$c" "$s" >"$OUT/r$r-$s-$c.json" 2>"$OUT/r$r-$s-$c.err" || { cat "$OUT/r$r-$s-$c.err" >&2; exit 1; }
    done
  done
done

"$PY" - "$OUT" "$SHAPES" "$COLS" "$ROUNDS" <<'PY'
import glob, json, statistics, sys
out, shapes, cols, rounds = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(","), int(sys.argv[4])
names = {"dsx": "dsx (BLAS)", "off": "dsx DSX_BLAS=off", "thr": "dsx DSX_BLAS_THREADS=n", "base": "base", "torch": "PyTorch", "numpy": "numpy"}
ratio_cols = [c for c in cols if c != "torch"] if "torch" in cols else []
print("| B×N×T | " + " | ".join([names[c] + " ms" for c in cols] + [names[c] + " / PyTorch" for c in ratio_cols]) + " |")
print("|---|" + "---:|" * (len(cols) + len(ratio_cols)))
def ms(r, s, c):
    try:
        recs = json.load(open(f"{out}/r{r}-{s}-{c}.json"))
    except (OSError, ValueError):
        return None
    return statistics.median(rec["ms_per_step"] for rec in recs)
def cell(v, fmt):
    v = [x for x in v if x is not None]
    if not v:
        return "–"
    return f"{fmt(statistics.median(v))} ({fmt(min(v))}–{fmt(max(v))})"
for s in shapes:
    per = {c: [ms(r, s, c) for r in range(1, rounds + 1)] for c in cols}
    row = [s.replace("x", "×")] + [cell(per[c], lambda x: f"{x:.2f}") for c in cols]
    for c in ratio_cols:
        rat = [a / b for a, b in zip(per[c], per["torch"]) if a and b]
        row.append(cell(rat, lambda x: f"{x:.2f}×"))
    print("| " + " | ".join(row) + " |")
print(f"\n{rounds} rounds, {json.load(open(out + '/devices.json'))['backends'][-1].get('blas', {}).get('name', '?')} loaded by bin/dsx; raw records in {out}")
PY
