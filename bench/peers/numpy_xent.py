#!/usr/bin/env python3
"""numpy peer of `dsx bench`: the same training step written by hand in
float32 (z = x·W + b, softmax cross-entropy with the row maximum subtracted,
dz = (p − y)/B, dW = xᵀ·dz, db = Σ dz, SGD update), with the record fields
of `dsx bench --json`. numpy's products go to the system BLAS (OpenBLAS on
Debian with libopenblas0).
"""
import argparse
import json
import statistics
import sys
import time

import numpy as np


def parse_shapes(s):
    return [tuple(int(v) for v in f.strip().split("x")) for f in s.split(",")]


def bench(B, N, T, steps, warmup, seed=42):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, N), dtype=np.float32)
    y = rng.integers(0, T, B)
    W = (rng.standard_normal((N, T), dtype=np.float32) * np.float32(0.01)).astype(np.float32)
    b = np.zeros(T, np.float32)
    lr = np.float32(1e-3)
    rows = np.arange(B)
    z = np.empty((B, T), np.float32)
    dW = np.empty((N, T), np.float32)

    def step():
        np.matmul(x, W, out=z)
        np.add(z, b, out=z)
        m = z.max(axis=1, keepdims=True)
        z_m = z - m
        e = np.exp(z_m)
        s = e.sum(axis=1, keepdims=True, dtype=np.float64)
        loss = float(np.mean(np.log(s[:, 0]) - z_m[rows, y]))
        e *= (1.0 / (s * B)).astype(np.float32)  # p/B
        e[rows, y] -= np.float32(1.0 / B)          # (p − y)/B
        np.matmul(x.T, e, out=dW)
        db = e.sum(axis=0)
        W[...] -= lr * dW
        b[...] -= lr * db
        return loss

    for _ in range(warmup):
        step()
    ms = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        ms.append((time.perf_counter() - t0) * 1e3)
    med = statistics.median(ms)
    return {"B": B, "N": N, "T": T, "device": "cpu", "variant": "numpy", "dtype": "float32",
            "steps": steps, "ms_per_step": med, "ms_min": min(ms), "ms_max": max(ms),
            "gflops": 4.0 * B * N * T / (med * 1e6), "peer": "numpy " + np.__version__}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shapes", default="4096x784x10,4096x1024x1000")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()
    if args.steps < 1:
        sys.exit("--steps must be ≥ 1")
    json.dump([bench(B, N, T, args.steps, args.warmup) for B, N, T in parse_shapes(args.shapes)], sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
