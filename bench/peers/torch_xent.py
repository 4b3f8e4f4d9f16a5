#!/usr/bin/env python3
"""The peers of `dsx bench`: one training step of the classifier head
(logits = x·Wᵀ + b, softmax cross-entropy, backward for the gradients asked
for, SGD update) on the same shapes and the same inputs (bench/peers/
benchdata.py draws them bit for bit as dsx does), with the same record
fields as `dsx bench --json`. Variants:

    torch-eager     F.linear + F.cross_entropy (PyTorch eager)
    torch-compile   the same step under torch.compile
    cce             Apple's Cut Cross-Entropy, linear_cross_entropy (impl "cce")
    liger-flce      Liger Kernel's LigerFusedLinearCrossEntropyFunction

    OMP_WAIT_POLICY=PASSIVE bench/peers/torch_xent.py --device cpu --shapes 4096x784x10
    bench/peers/torch_xent.py --device cuda --variants torch-eager,torch-compile,cce,liger-flce \\
        --storage bf16 --grads W,b,x --inputs random,lm --shapes 8192x4096x128256

The fused peers are imported from $PYTHONPATH (the GPU machine's .gpu/run
puts ../shared/peers there; with a network: pip install cut-cross-entropy
liger-kernel). A variant that does not import or run is a record with
"skipped" holding the exact error, and the others go on.

Precision (--modes, --storage), as dsx's backend.Config:
  fp32        float32 everything (PyTorch's default: TF32 off);
  tf32        float32 tensors, products on TF32 tensor cores;
  bf16        float32 tensors and weights, the product under torch.autocast
              (operands converted to bfloat16 every step);
  --storage bf16   mixed precision as trainers keep it: x, dx and W's working
              copy in bfloat16, float32 master weights updated by the SGD step
              (W32 += −lr·dW, then W ← bf16(W32)), b in float32; the loss and
              the softmax in float32 inside each implementation.
Gradients (--grads): W,b (default, as `dsx bench`) or W,b,x (dx too, as a
layer below the head needs; the step the fused peers time).

Memory (CUDA): state_bytes = the parameters, their gradients and master
copies; input_bytes = x, y and dx; extra_bytes = max_memory_allocated during
the timed steps minus both (and minus the shape's draw of x, W and y, which
every variant's tensors are copied from): logits, workspace, activations — the figure
`dsx bench` reports as extra_bytes.

Timing: --warmup steps, then the median of --steps timed steps; on CPU with
perf_counter around a step that ends by reading the loss, on CUDA with CUDA
events, synchronised before reading.

Each record also has loss0 and entropy0: the loss and the mean softmax
entropy (nats) of the first ≤256 rows at the initial parameters, computed in
float64 — the same figures for every implementation of one shape and
inputs kind, and dsx's, when the inputs are the same.
"""
import argparse
import json
import os
import statistics
import sys
import time

# OpenMP threads spin after a parallel region unless told otherwise; on a
# small machine that steals cycles from the next step. Must precede import.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchdata  # noqa: E402

VARIANTS = ("torch-eager", "torch-compile", "cce", "liger-flce")
LR = 1e-3


def parse_shapes(s):
    out = []
    for f in s.split(","):
        b, n, t = (int(v) for v in f.strip().split("x"))
        out.append((b, n, t))
    return out


def nbytes(*ts):
    return sum(t.numel() * t.element_size() for t in ts if t is not None)


def loss_fn(variant, softcap, zloss):
    """The variant's loss of (x, W, b, y), W being T×N; raises with the exact
    error when the variant cannot be imported. Returns (fn, version)."""
    if variant in ("torch-eager", "torch-compile"):
        def f(x, W, b, y):
            z = F.linear(x, W, b).float()
            if softcap:
                z = softcap * torch.tanh(z / softcap)
            loss = F.cross_entropy(z, y)
            if zloss:
                loss = loss + zloss * torch.logsumexp(z, dim=1).pow(2).mean()
            return loss
        return f, "torch " + torch.__version__
    if variant == "cce":
        import cut_cross_entropy
        from cut_cross_entropy import linear_cross_entropy

        def f(x, W, b, y):
            if zloss:
                loss, lse = linear_cross_entropy(x, W, y, bias=b, softcap=softcap or None, return_lse=True)
                return loss + zloss * lse.float().pow(2).mean()
            return linear_cross_entropy(x, W, y, bias=b, softcap=softcap or None)
        return f, "cut_cross_entropy " + getattr(cut_cross_entropy, "__version__", "?")
    if variant == "liger-flce":
        import liger_kernel
        from liger_kernel.ops.fused_linear_cross_entropy import LigerFusedLinearCrossEntropyFunction as L

        def f(x, W, b, y):
            out = L.apply(x, W, y, b, None, -100, float(zloss or 0.0), 0.0, "mean", softcap or None)
            return out[0] if isinstance(out, tuple) else out
        ver = getattr(liger_kernel, "__version__", None)
        if ver is None:
            try:
                from importlib.metadata import version
                ver = version("liger-kernel")
            except Exception:  # the unpacked sources carry no metadata
                ver = "0.8.2 (../shared/peers)"
        return f, "liger_kernel " + ver
    raise ValueError(f"unknown variant {variant!r}: want one of {', '.join(VARIANTS)}")


def row_stats(x, W, b, y, rows=256):
    """loss0 and entropy0 (float64) of the first rows at the given parameters."""
    with torch.no_grad():
        r = min(rows, x.shape[0])
        z = (x[:r].double() @ W.double().t()) + b.double()
        lse = torch.logsumexp(z, dim=1)
        p = torch.exp(z - lse[:, None])
        ent = -(p * (z - lse[:, None])).sum(dim=1)
        loss = lse - z.gather(1, y[:r, None]).squeeze(1)
        return float(loss.mean()), float(ent.mean())


class Setup:
    """The tensors of one shape, precision and gradient set; fresh per variant."""

    def __init__(self, base, device, mode, storage, grads):
        x32, W32n, y = base  # x B×N, W N×T (dsx's layout), y B
        self.bf16 = storage == "bf16"
        self.y = y
        want_x = "x" in grads
        W = W32n.t().contiguous()  # T×N, as nn.Linear keeps it
        b = torch.zeros(W.shape[0], device=device)
        if self.bf16:
            self.W32, self.b32 = W, b
            self.W = W.to(torch.bfloat16).requires_grad_()
            self.b = b.clone().requires_grad_()
            self.x = x32.to(torch.bfloat16).requires_grad_(want_x)
        else:
            self.W32 = self.b32 = None
            self.W, self.b = W.requires_grad_(), b.requires_grad_()
            self.x = x32.clone().requires_grad_(want_x)
        self.mode = mode

    def forward(self, f):
        b = self.b.to(torch.bfloat16) if self.bf16 else self.b
        if self.mode == "bf16" and not self.bf16:
            with torch.autocast(device_type=self.x.device.type, dtype=torch.bfloat16):
                return f(self.x, self.W, b, self.y)
        return f(self.x, self.W, b, self.y)

    def step(self, f):
        self.W.grad = self.b.grad = self.x.grad = None
        loss = self.forward(f)
        loss.backward()
        with torch.no_grad():
            if self.bf16:  # float32 master weights, then the bfloat16 copy
                self.W32.add_(self.W.grad, alpha=-LR)
                self.W.copy_(self.W32)
                self.b32.add_(self.b.grad, alpha=-LR)
                self.b.copy_(self.b32)
            else:
                self.W.add_(self.W.grad, alpha=-LR)
                self.b.add_(self.b.grad, alpha=-LR)
        return loss

    def state_bytes(self):
        return nbytes(self.W, self.b, self.W.grad, self.b.grad, self.W32, self.b32)

    def input_bytes(self):
        return nbytes(self.x, self.y, self.x.grad)


def bench(base, B, N, T, device, variant, o, mode, storage, kind, stats):
    cuda = device.startswith("cuda")
    rec = {"B": B, "N": N, "T": T, "device": "cuda" if cuda else "cpu", "variant": variant,
           "dtype": "float32", "mode": mode, "storage": storage or "fp32", "grads": o.grads,
           "inputs": kind, "steps": o.steps, "loss0": stats[0], "entropy0": stats[1]}
    if o.softcap:
        rec["softcap"] = o.softcap
    if o.z_loss:
        rec["z_loss"] = o.z_loss
    try:
        f, rec["peer"] = loss_fn(variant, o.softcap, o.z_loss)
    except Exception as e:  # an import error: recorded exactly, the others go on
        rec["skipped"] = f"{type(e).__name__}: {e}"
        return rec
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
        torch.backends.cudnn.allow_tf32 = mode == "tf32"
    s = Setup(base, device, mode, storage, o.grads)
    fn = lambda: s.step(f)  # noqa: E731
    try:
        if variant == "torch-compile":
            torch._dynamo.reset()
            fn = torch.compile(fn)
        for _ in range(o.warmup):
            fn().item()
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        ms = []
        for _ in range(o.steps):
            if cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                torch.cuda.synchronize()
                ms.append(start.elapsed_time(end))
            else:
                t0 = time.perf_counter()
                fn().item()
                ms.append((time.perf_counter() - t0) * 1e3)
    except Exception as e:
        rec["skipped"] = f"{type(e).__name__}: {e}".strip()[:2000]
        del s
        if cuda:
            torch.cuda.empty_cache()
        return rec
    med = statistics.median(ms)
    products = 3 if "x" in o.grads else 2
    rec.update({"ms_per_step": med, "ms_min": min(ms), "ms_max": max(ms),
                "gflops": 2.0 * products * B * N * T / (med * 1e6), "threads": torch.get_num_threads()})
    if cuda:
        peak = torch.cuda.max_memory_allocated()
        rec["max_memory_allocated"] = peak
        rec["state_bytes"] = s.state_bytes()
        rec["input_bytes"] = s.input_bytes()
        # The shape's draw (x, W, y: each variant's Setup copies it) stays
        # allocated throughout: not the variant's memory.
        rec["extra_bytes"] = peak - rec["state_bytes"] - rec["input_bytes"] - nbytes(*base)
    if o.check:
        rec.update(check(s, f, base, device, o))
    del s, fn
    if cuda:
        torch.cuda.empty_cache()
    return rec


def check(s, f, base, device, o):
    """The variant's loss and gradients at the initial parameters against the
    float32 eager layer's, on the host: |Δloss|, max|ΔdW|/max|dW|, ..."""
    x32, W32n, y = base
    ref = Setup(base, device, "fp32", None, o.grads)
    rf, _ = loss_fn("torch-eager", o.softcap, o.z_loss)
    torch.backends.cuda.matmul.allow_tf32 = False
    ref_loss = ref.forward(rf)
    ref_loss.backward()
    want = {"dw": ref.W.grad.float().cpu(), "db": ref.b.grad.float().cpu()}
    if ref.x.grad is not None:
        want["dx"] = ref.x.grad.float().cpu()
    ref_loss = float(ref_loss)
    del ref
    t = Setup(base, device, s.mode, "bf16" if s.bf16 else None, o.grads)
    loss = t.forward(f)
    loss.backward()
    got = {"dw": t.W.grad, "db": t.b.grad, "dx": t.x.grad}
    out = {"checked": True, "loss_diff": abs(float(loss) - ref_loss)}
    for k, w in want.items():
        g = got[k].float().cpu()
        out[k + "_rel_diff"] = float((g - w).abs().max() / w.abs().max().clamp_min(1e-30))
    del t
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--shapes", default="4096x784x10,4096x1024x1000")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                    help="CPU threads (default: the cores this process may use)")
    ap.add_argument("--modes", default="fp32", help="matmul modes: fp32, tf32, bf16 (comma-separated; tf32 on CUDA only)")
    ap.add_argument("--storage", default="fp32", help="fp32, bf16 or both (comma-separated); bf16 implies mode bf16")
    ap.add_argument("--variants", default=None,
                    help=f"comma-separated: {', '.join(VARIANTS)} (default: torch-eager on cpu, all on cuda)")
    ap.add_argument("--grads", default="W,b", help="W,b or W,b,x: the gradients each step computes")
    ap.add_argument("--inputs", default="random", help="random, lm or both (comma-separated): see benchdata.py")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--softcap", type=float, default=0.0, help="logit soft-capping C (0: off)")
    ap.add_argument("--z-loss", type=float, default=0.0, help="z-loss λ (0: off)")
    ap.add_argument("--check", action="store_true", help="loss and gradient differences from the fp32 eager layer")
    o = ap.parse_args()
    if o.steps < 1 or o.warmup < 0:
        sys.exit("torch_xent.py: --steps must be ≥ 1 and --warmup ≥ 0")
    if o.grads not in ("W,b", "W,b,x"):
        sys.exit("torch_xent.py: --grads: want W,b or W,b,x")
    torch.set_num_threads(o.threads)
    device = o.device
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("torch_xent.py: CUDA is not available")
    variants = o.variants.split(",") if o.variants else (list(VARIANTS) if device == "cuda" else ["torch-eager"])
    for v in variants:
        if v not in VARIANTS:
            sys.exit(f"torch_xent.py: --variants: {v!r}: want one of {', '.join(VARIANTS)}")
    modes = o.modes.split(",")
    storages = o.storage.split(",")
    for st in storages:
        if st not in ("fp32", "bf16"):
            sys.exit(f"torch_xent.py: --storage: {st!r}: want fp32 or bf16")
    recs = []
    for B, N, T in parse_shapes(o.shapes):
        for kind in o.inputs.split(","):
            x, W, y = benchdata.make_inputs(kind, B, N, T, o.seed, torch_device=device)
            base = (x, W, y)
            stats = row_stats(x, W.t(), torch.zeros(T, device=device), y)
            for st in storages:
                for m in (["bf16"] if st == "bf16" else modes):
                    for v in variants:
                        recs.append(bench(base, B, N, T, device, v, o, m, st if st == "bf16" else None, kind, stats))
                        print("torch_xent.py:", json.dumps(recs[-1]), file=sys.stderr, flush=True)
            del x, W, y, base
            if device == "cuda":
                torch.cuda.empty_cache()
    json.dump(recs, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
