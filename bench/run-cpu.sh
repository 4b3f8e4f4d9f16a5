#!/usr/bin/env bash
# Side-by-side CPU benchmark: dsx's pure-Go build, dsx's OpenBLAS build,
# PyTorch and numpy, on the same shapes, interleaved round by round so that
# background load hits all four alike. Prints a markdown table of the median
# over rounds of each round's median step time, and writes the raw records.
#
#   bench/run-cpu.sh [ROUNDS] [SHAPES]       (defaults: 3, the three issue shapes)
#   STEPS=20 WARMUP=3 OUT=dir bench/run-cpu.sh   (raw JSON records go to OUT, a temporary dir by default)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
SHAPES=${2:-4096x784x10,1024x784x10,4096x1024x1000}
STEPS=${STEPS:-20}
WARMUP=${WARMUP:-3}
OUT=${OUT:-$(mktemp -d)}
PY=${PY:-/usr/bin/python3} # Debian's python3-torch and python3-numpy live there
mkdir -p "$OUT" bin
rm -f "$OUT"/*.json

CGO_ENABLED=0 go build -o bin/dsx ./cmd/dsx
CGO_ENABLED=1 go build -tags openblas -o bin/dsx-openblas ./cmd/dsx

export OMP_WAIT_POLICY=PASSIVE
IFS=, read -ra shapes <<<"$SHAPES"
for r in $(seq 1 "$ROUNDS"); do
	for s in "${shapes[@]}"; do
		echo "round $r: $s" >&2
		bin/dsx bench --device cpu --json --shapes "$s" --steps "$STEPS" --warmup "$WARMUP" >"$OUT/r$r-$s-go.json"
		bin/dsx-openblas bench --device cpu --json --shapes "$s" --steps "$STEPS" --warmup "$WARMUP" >"$OUT/r$r-$s-openblas.json"
		"$PY" bench/peers/torch_xent.py --device cpu --shapes "$s" --steps "$STEPS" --warmup "$WARMUP" >"$OUT/r$r-$s-torch.json"
		"$PY" bench/peers/numpy_xent.py --shapes "$s" --steps "$STEPS" --warmup "$WARMUP" >"$OUT/r$r-$s-numpy.json"
	done
done

"$PY" - "$OUT" "$SHAPES" <<'PY'
import glob, json, statistics, sys
out, shapes = sys.argv[1], sys.argv[2].split(",")
cols = [("go", "dsx pure Go"), ("openblas", "dsx OpenBLAS"), ("torch", "PyTorch"), ("numpy", "numpy")]
print("| B×N×T | " + " | ".join(c[1] + " ms" for c in cols) + " | pure Go / PyTorch | OpenBLAS / PyTorch |")
print("|---|" + "---:|" * (len(cols) + 2))
for s in shapes:
    med = {}
    for key, _ in cols:
        v = []
        for f in sorted(glob.glob(f"{out}/r*-{s}-{key}.json")):
            v += [rec["ms_per_step"] for rec in json.load(open(f))]
        med[key] = statistics.median(v) if v else float("nan")
    row = [s.replace("x", "×")] + [f"{med[k]:.2f}" for k, _ in cols]
    row += [f"{med['go'] / med['torch']:.2f}×", f"{med['openblas'] / med['torch']:.2f}×"]
    print("| " + " | ".join(row) + " |")
PY
