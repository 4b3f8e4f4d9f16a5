#!/usr/bin/env python3
"""PyTorch peer of `dsx bench`: one training step of the classifier head
(nn.Linear + F.cross_entropy, forward, backward, SGD update) in float32 on
the same shapes, with the same record fields as `dsx bench --json`.

    OMP_WAIT_POLICY=PASSIVE bench/peers/torch_xent.py --device cpu --shapes 4096x784x10
    bench/peers/torch_xent.py --device cuda            # eager and torch.compile
    bench/peers/torch_xent.py --device cuda --modes fp32,tf32,bf16

--modes (CUDA only): fp32 (PyTorch's default: no TF32), tf32
(torch.backends.cuda.matmul.allow_tf32), bf16 (torch.autocast to bfloat16;
cross_entropy runs in float32 under autocast). On CUDA the record also has
state_bytes (parameters and their gradients), input_bytes (x and y) and
extra_bytes = max_memory_allocated − both: the activations, logits and
workspace, the figure `dsx bench` reports as extra_bytes.

Timing: warm-up steps, then the median of --steps timed steps. On CPU each
step is timed with perf_counter (the step returns the loss as a Python float,
so it has finished); on CUDA with CUDA events around the step, synchronised
before reading, and torch.cuda.max_memory_allocated is reported.
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


def parse_shapes(s):
    out = []
    for f in s.split(","):
        b, n, t = (int(v) for v in f.strip().split("x"))
        out.append((b, n, t))
    return out


def bench(B, N, T, device, variant, steps, warmup, seed=42, mode="fp32"):
    cuda = device.startswith("cuda")
    if cuda:
        # Made on the device: a 128256×4096 weight drawn on the CPU takes long.
        g = torch.Generator(device=device).manual_seed(seed)
        x = torch.randn(B, N, generator=g, device=device)
        y = torch.randint(0, T, (B,), generator=g, device=device)
        model = torch.nn.Linear(N, T, device=device)
        with torch.no_grad():
            model.weight.copy_(torch.randn(T, N, generator=g, device=device) * 0.01)
            model.bias.zero_()
    else:
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(B, N, generator=g).to(device)
        y = torch.randint(0, T, (B,), generator=g).to(device)
        model = torch.nn.Linear(N, T).to(device)
        with torch.no_grad():
            model.weight.copy_(torch.randn(T, N, generator=g) * 0.01)
            model.bias.zero_()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
        torch.backends.cudnn.allow_tf32 = mode == "tf32"

    def step():
        opt.zero_grad(set_to_none=True)
        if mode == "bf16":
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
                loss = F.cross_entropy(model(x), y)
        else:
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    fn = step
    if variant == "torch-compile":
        torch._dynamo.reset()
        fn = torch.compile(step)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    for _ in range(warmup):
        fn().item()
    ms = []
    for _ in range(steps):
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
    med = statistics.median(ms)
    rec = {
        "B": B, "N": N, "T": T,
        "device": "cuda" if cuda else "cpu",
        "variant": variant, "dtype": "float32", "steps": steps,
        "ms_per_step": med, "ms_min": min(ms), "ms_max": max(ms),
        "gflops": 4.0 * B * N * T / (med * 1e6),
        "peer": "torch " + torch.__version__,
        "threads": torch.get_num_threads(),
    }
    if cuda:
        peak = torch.cuda.max_memory_allocated()
        state = 2 * 4 * (N * T + T)
        inputs = x.numel() * x.element_size() + y.numel() * y.element_size()
        rec["max_memory_allocated"] = peak
        rec["mode"] = mode
        rec["state_bytes"] = state
        rec["input_bytes"] = inputs
        rec["extra_bytes"] = peak - state - inputs
        del model, opt, x, y, fn
        torch.cuda.empty_cache()
    return rec


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--shapes", default="4096x784x10,4096x1024x1000")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                    help="CPU threads (default: the cores this process may use)")
    ap.add_argument("--modes", default="fp32", help="CUDA matmul modes: fp32, tf32, bf16 (comma-separated)")
    ap.add_argument("--variants", default=None,
                    help="comma-separated: torch-eager, torch-compile (default: eager on cpu, both on cuda)")
    args = ap.parse_args()
    if args.steps < 1:
        sys.exit("--steps must be ≥ 1")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = args.device
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("torch_xent.py: CUDA is not available")
    variants = args.variants.split(",") if args.variants else (
        ["torch-eager", "torch-compile"] if device == "cuda" else ["torch-eager"])
    recs = []
    modes = args.modes.split(",") if device == "cuda" else ["fp32"]
    for B, N, T in parse_shapes(args.shapes):
        for m in modes:
            for v in variants:
                recs.append(bench(B, N, T, device, v, args.steps, args.warmup, mode=m))
                if device == "cuda":
                    torch.cuda.empty_cache()
                print("torch_xent.py:", json.dumps(recs[-1]), file=sys.stderr, flush=True)
    json.dump(recs, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
