// xent_acc.cuh — a row's running softmax statistics, merged across threads,
// warps and (xvocab.cu) vocabulary tiles, shared by the loss kernels.

#ifndef XENT_ACC_CUH
#define XENT_ACC_CUH

#include <math.h>

// Acc is one thread's (then a block's) part of a row, gathered in one read:
// the running maximum m of the capped logits (NaN once a raw logit is not
// finite), s = Σ exp(ẑ − m), d = Σ α_c·(m − ẑ_c) and A = Σ α_c, where α_c is
// a_c (probability targets) or w_c (hard labels with smoothing). When m
// grows by δ, every earlier term of d grows by α·δ: d += δ·A, a sum of
// non-negative terms (no cancellation).
struct Acc {
    double m;
    double s;
    double d;
    double A;
};

// acc_part is one side's d moved to the maximum m.
__device__ __forceinline__ double acc_part(const Acc &x, double m) {
    return x.A != 0 ? x.d + (m - x.m) * x.A : x.d;
}

__device__ __forceinline__ void acc_merge(Acc &x, const Acc &y) {
    double m = fmax(x.m, y.m);
    double s = 0, d = 0;
    if (m != -INFINITY) {
        if (x.s != 0 || isnan(x.s)) s += x.s * exp(x.m - m);
        if (y.s != 0 || isnan(y.s)) s += y.s * exp(y.m - m);
        d = acc_part(x, m) + acc_part(y, m);
    }
    if (isnan(x.m) || isnan(y.m)) m = NAN;
    x.m = m;
    x.s = s;
    x.d = d;
    x.A += y.A;
}

#ifdef __CUDACC__   // the warp and block reductions (the host build of TestRowMath leaves them out)
__device__ __forceinline__ Acc acc_shfl(const Acc &x, int off) {
    Acc y;
    y.m = __shfl_down_sync(0xffffffffu, x.m, off);
    y.s = __shfl_down_sync(0xffffffffu, x.s, off);
    y.d = __shfl_down_sync(0xffffffffu, x.d, off);
    y.A = __shfl_down_sync(0xffffffffu, x.A, off);
    return y;
}

// block_reduce: blockDim.x is a multiple of 32 and ≤ 1024; every thread gets
// the block's result.
__device__ Acc block_reduce(Acc v) {
    __shared__ Acc warp[32];   // one slot per warp
    __shared__ Acc total;
    for (int off = 16; off > 0; off >>= 1) {
        Acc o = acc_shfl(v, off);
        acc_merge(v, o);
    }
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    if (lane == 0) warp[w] = v;
    __syncthreads();
    if (w == 0) {
        int nw = blockDim.x >> 5;
        Acc x;
        if (lane < nw) {
            x = warp[lane];
        } else {
            x.m = -INFINITY; x.s = 0; x.d = 0; x.A = 0;
        }
        for (int off = 16; off > 0; off >>= 1) {
            Acc o = acc_shfl(x, off);
            acc_merge(x, o);
        }
        if (lane == 0) total = x;
    }
    __syncthreads();
    Acc r = total;
    __syncthreads();   // total and warp[] may be reused by the caller
    return r;
}

#endif

// acc_add adds one logit to a thread's Acc: raw as read (bias added), v
// its capped value, alpha its α (0 unless sums). NaN, +Inf, or ±Inf under a
// cap (tanh hides it) make the row NaN, ignored or not; a lone −Inf gets
// p = 0 (as graph.rowExp) and makes d, so the loss, +Inf only if α > 0.
__device__ __forceinline__ void acc_add(Acc &acc, double raw, double v, double alpha, bool sums, double softcap) {
    if (v > acc.m) {
        acc.s = acc.s * exp(acc.m - v) + 1.0;
        if (acc.A != 0) acc.d += (v - acc.m) * acc.A;
        acc.m = v;
    } else if (v != -INFINITY || isnan(v)) {
        acc.s += exp(v - acc.m);
        if (sums) acc.d += alpha * (acc.m - v);
    } else if (alpha != 0) {
        acc.d = INFINITY;   // a −Inf logit the target weighs: the loss is +Inf
    }
    acc.A += alpha;
    if (isnan(raw) || (isinf(raw) && (raw > 0 || softcap > 0))) acc.m = NAN;
}

#endif
