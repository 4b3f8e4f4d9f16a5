#!/usr/bin/env bash
# Draws bench/results.png, the figure the README shows beside its GPU
# figures, from the records those figures quote, and nothing else: the
# fp32 rows of the latest device call at each shape, each shape's dsx and
# PyTorch eager rows from the same call (bench/RESULTS.md):
#   32768×1024×1000   bench/results-gpu-final.json (commit 4890a64's kernel)
#   8192×4096×32000   bench/results-gpu-xent.json  (commit 35e3ec3's)
#   8192×4096×128256  bench/results-gpu.json       (commit b0bb3de's; not re-run since)
# The selection is written to bench/results-gpu-readme.json, which
# cmd/dsx's TestReadmeFigure checks against the README's caption and the
# PNG against a fresh drawing. Run from the project root after make build.
#
# usage: bench/readme-figure.sh
set -euo pipefail
cd "$(dirname "$0")/.."
/usr/bin/python3 - <<'PY'
import json
def pick(name, T):
    return [r for r in json.load(open("bench/" + name)) if r["T"] == T and r.get("mode", "fp32") == "fp32"]
rows = pick("results-gpu-final.json", 1000) + pick("results-gpu-xent.json", 32000) + pick("results-gpu.json", 128256)
with open("bench/results-gpu-readme.json", "w") as f:
    json.dump(rows, f, indent=2)
    f.write("\n")
PY
bin/dsx bench --device none --peers bench/results-gpu-readme.json --plot bench/results.png
