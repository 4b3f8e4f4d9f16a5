#!/usr/bin/env python3
"""The benchmark's inputs, bit for bit as dsx's internal/benchdata draws them
(read its package doc for the distributions), in numpy or PyTorch (on any
device), so that `dsx bench` and the peers time the same step on the same
numbers. Every value is a function of (seed, stream, index): integer hashing
in int64 without overflow, then single float32 operations.

    python3 bench/peers/benchdata.py --kind lm --shapes 8x16x50,1x37x129   # digests (numpy)
    python3 bench/peers/benchdata.py --kind lm --shapes 8x16x50 --torch
    python3 bench/peers/benchdata.py --kind lm --shapes 8192x4096x128256 --stats   # what a fused loss sees

make_inputs(kind, B, N, T, seed, torch_device=None) returns (x B×N float32,
W N×T float32, y B int64); on PyTorch, W is made in row blocks to bound the
temporary memory.
"""
import argparse
import hashlib
import json
import math
import sys

M32 = 0xFFFFFFFF
SIGMA, ALPHA, DELTA_PER_L2 = 1.5, 1.0, 0.6
PERM1, PERM2 = 1000003, 1000033
STREAM_X, STREAM_W, STREAM_Y, STREAM_LEVEL = 1, 2, 3, 4


def _mul32(x, c):
    """(x·c) mod 2³² for int64 arrays x in [0, 2³²) without overflowing int64."""
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & M32


def _hash(x):
    """lowbias32 on int64 arrays (or Python ints) holding uint32 values."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    x = x ^ (x >> 16)
    return x


def _key(seed, stream):
    return _hash((seed + stream * 0x9E3779B9) & M32)


class _NP:
    def __init__(self):
        import numpy as np
        self.np = np

    def arange(self, lo, hi):
        return self.np.arange(lo, hi, dtype=self.np.int64)

    def f32(self, v):
        return v.astype(self.np.float32)

    def scalar(self, v):
        return self.np.float32(v)

    def empty_f32(self, *shape):
        return self.np.empty(shape, dtype=self.np.float32)


class _Torch:
    def __init__(self, device):
        import torch
        self.torch, self.device = torch, device

    def arange(self, lo, hi):
        return self.torch.arange(lo, hi, dtype=self.torch.int64, device=self.device)

    def f32(self, v):
        return v.to(self.torch.float32)

    def scalar(self, v):
        import numpy as np  # the float32 rounding of a Python float, as Go's float32(v)
        return float(np.float32(v))

    def empty_f32(self, *shape):
        return self.torch.empty(shape, dtype=self.torch.float32, device=self.device)


def _unit(xp, h):
    """The top 24 bits of h, centred, times 2⁻²³: float32 in [−1, 1), exact."""
    return xp.f32((h >> 8) - (1 << 23)) * (1.0 / (1 << 23))


def lm_params(N, T):
    """The LM kind's float32 scalars, computed as Go's LMParams does."""
    import numpy as np
    l2 = T.bit_length() - 1
    delta = DELTA_PER_L2 * l2
    s = np.float32(3 * SIGMA / math.sqrt(N - 1))
    s64 = float(s)
    gamma = np.float32(3 * delta / ((N - 1) * (s64 * s64)))
    p = PERM2 if T % PERM1 == 0 else PERM1
    return {"s": s, "gamma": gamma, "delta": np.float32(delta), "p": p}


def make_inputs(kind, B, N, T, seed=42, torch_device=None, block=1 << 24):
    if B * N >= 1 << 32 or N * T >= 1 << 32:
        raise ValueError(f"shape {B}x{N}x{T}: B·N and N·T must be below 2**32")
    if kind == "lm" and N < 2:
        raise ValueError("lm inputs need N >= 2")
    xp = _NP() if torch_device is None else _Torch(torch_device)
    kx, kw, ky, kl = (_key(seed, s) for s in (STREAM_X, STREAM_W, STREAM_Y, STREAM_LEVEL))
    rows = xp.arange(0, B)
    W = xp.empty_f32(N * T)
    if kind == "random":
        sx, sw = xp.scalar(math.sqrt(3)), xp.scalar(0.01 * math.sqrt(3))
        for lo in range(0, N * T, block):
            i = xp.arange(lo, min(lo + block, N * T))
            W[lo:lo + len(i)] = _unit(xp, _hash(i ^ kw)) * sw
        x = _unit(xp, _hash(xp.arange(0, B * N) ^ kx)) * sx
        y = _hash(rows ^ ky) % T
        return x.reshape(B, N), W.reshape(N, T), y
    if kind != "lm":
        raise ValueError(f"inputs {kind!r}: want random or lm")
    p = lm_params(N, T)
    s, gamma = xp.scalar(p["s"]), xp.scalar(p["gamma"])
    q = pow(p["p"] % T, -1, T) if T > 1 else 0
    j = xp.arange(0, T)
    r = (j * q) % T
    level = xp.f32(_bit_length(xp, r + 1) - 1)
    W[0:T] = level * (-ALPHA)
    for lo in range(T, N * T, block):
        i = xp.arange(lo, min(lo + block, N * T))
        W[lo:lo + len(i)] = _unit(xp, _hash(i ^ kw)) * s
    W = W.reshape(N, T)
    lmax = T.bit_length() - 1
    h = _hash(rows ^ ky)
    lev = _hash(rows ^ kl) % (lmax + 1)
    pw = _shl1(xp, lev)
    r = (pw - 1) + h % pw
    r = _where(xp, r >= T, h % T, r)
    y = (r * p["p"]) % T
    u = _unit(xp, _hash(xp.arange(0, B * N) ^ kx)).reshape(B, N)
    g = W[:, y].T * gamma          # B×N: γ·W[k, y_b], rounded to float32
    x = u + g                       # rounded again
    x[:, 0] = 1
    return x, W, y


def _bit_length(xp, v):
    """bit_length of each element of a positive int64 array, exactly."""
    out = v * 0
    v = v + 0
    for s in (32, 16, 8, 4, 2, 1):
        big = v >= (1 << s)
        out = out + big * s
        v = _where(xp, big, v >> s, v)
    return out + (v > 0) * 1


def _shl1(xp, v):
    """2**v for an int64 array v."""
    if isinstance(xp, _NP):
        return xp.np.left_shift(1, v)
    return xp.torch.ones_like(v) << v


def _where(xp, c, a, b):
    if isinstance(xp, _NP):
        return xp.np.where(c, a, b)
    return xp.torch.where(c, a, b)


def digests(x, W, y):
    """SHA-256 of the little-endian bytes of x, W (float32) and y (as int32)."""
    import numpy as np
    def b(a, dt):
        if hasattr(a, "cpu"):
            a = a.cpu().numpy()
        return np.ascontiguousarray(a).astype(dt).tobytes()
    return {"x": hashlib.sha256(b(x, "<f4")).hexdigest(), "W": hashlib.sha256(b(W, "<f4")).hexdigest(),
            "y": hashlib.sha256(b(y, "<i4")).hexdigest()}


def stats(x, W, y, rows=256, eps=2.0 ** -12, block=(128, 256)):
    """What the inputs look like to a fused loss, from the first rows in
    float64 (numpy): the mean loss and softmax entropy (nats) at b = 0, the
    share of softmax entries above CCE's filter threshold eps (2⁻¹², bfloat16's
    resolution / 32), and the share of rows×classes blocks holding any such
    entry, with the classes in id order and sorted by their mean logit (as
    CCE's vocabulary sorting does)."""
    import numpy as np
    if hasattr(x, "cpu"):
        x, W, y = x.cpu().numpy(), W.cpu().numpy(), y.cpu().numpy()
    r = min(rows, x.shape[0])
    z = x[:r].astype(np.float64) @ W.astype(np.float64)
    m = z.max(axis=1, keepdims=True)
    lse = m + np.log(np.exp(z - m).sum(axis=1, keepdims=True))
    lp = z - lse
    p = np.exp(lp)
    keep = p > eps
    out = {"rows": r, "loss0": float((lse[:, 0] - z[np.arange(r), y[:r]]).mean()),
           "entropy0": float(-(p * lp).sum(axis=1).mean()), "above_eps": float(keep.mean())}
    bb, bv = min(block[0], r), block[1]
    for name, order in (("blocks_kept_id_order", np.arange(z.shape[1])),
                        ("blocks_kept_sorted", np.argsort(-z.mean(axis=0), kind="stable"))):
        k = keep[:, order]
        nb, nv = r // bb, -(-k.shape[1] // bv)
        k = np.pad(k[:nb * bb], ((0, 0), (0, nv * bv - k.shape[1])))
        out[name] = float(k.reshape(nb, bb, nv, bv).any(axis=(1, 3)).mean())
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", default="lm", help="random or lm")
    ap.add_argument("--shapes", default="8x16x50", help="comma-separated BxNxT: one JSON line of digests each")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--torch", action="store_true", help="draw with PyTorch on the CPU instead of numpy")
    ap.add_argument("--stats", action="store_true", help="print stats() of each shape instead of digests")
    args = ap.parse_args()
    for shape in args.shapes.split(","):
        B, N, T = (int(v) for v in shape.split("x"))
        x, W, y = make_inputs(args.kind, B, N, T, args.seed, torch_device="cpu" if args.torch else None)
        if args.stats:
            print(json.dumps({"shape": shape, "kind": args.kind, **stats(x, W, y)}))
            continue
        d = digests(x, W, y)
        if hasattr(x, "cpu"):
            x, W, y = x.numpy(), W.numpy(), y.numpy()
        d.update({"shape": shape, "x0": [float(v) for v in x.reshape(-1)[:4]],
                  "W0": [float(v) for v in W.reshape(-1)[:4]], "y0": [int(v) for v in y[:4]]})
        print(json.dumps(d))


if __name__ == "__main__":
    main()
