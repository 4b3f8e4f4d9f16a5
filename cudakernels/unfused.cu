// unfused.cu — softmax cross-entropy as separate kernels, the way PyTorch
// eager runs F.cross_entropy: the reference the fused kernel (xent.cu) is
// measured against, selected by backend.Config.Xent = "unfused".
//
//   forward:  log_softmax  z → lp          (a second rows×T buffer)
//             nll          lp, labels → per-row losses
//   backward: nll_grad     g = −scale·w_y at the label, 0 elsewhere (over z)
//             log_softmax_grad  g ← g − exp(lp)·Σ g   (in place over z)
//
// Hard targets with optional class weights and ignore_index only (no label
// smoothing, no probability targets). The reduction scale comes from
// xent_scale (xent.cu). Arithmetic in double, stored in F.
//
// Every scalar parameter is 8 bytes wide (gorgonia.org/cu copies each kernel
// argument as 8 bytes). rows valid rows, T classes, row stride T.

#include <math.h>

#include "xent_row.cuh"   // XENT_IGNORE, xent_label, weight

template <typename F>
__device__ double block_sum(double v) {
    __shared__ double part[32];
    __shared__ double total;
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    if (lane == 0) part[w] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        double t = 0;
        for (int i = 0; i < (int)(blockDim.x >> 5); i++) t += part[i];
        total = t;
    }
    __syncthreads();
    double r = total;
    __syncthreads();
    return r;
}

__device__ double block_max(double v) {
    __shared__ double part[32];
    __shared__ double total;
    for (int off = 16; off > 0; off >>= 1) v = fmax(v, __shfl_down_sync(0xffffffffu, v, off));
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    if (lane == 0) part[w] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        double t = -INFINITY;
        for (int i = 0; i < (int)(blockDim.x >> 5); i++) t = fmax(t, part[i]);
        total = t;
    }
    __syncthreads();
    double r = total;
    __syncthreads();
    return r;
}

// log_softmax: one block per row. With v = z + bias (bias may be NULL: the
// bias of x·W + b is added as z is read, as PyTorch adds it in the product's
// epilogue), lp[r, c] = v − max − log Σ exp(v − max).
template <typename F>
__device__ void log_softmax_t(const F *z, F *lp, long long rows, long long T, const F *bias) {
    long long r = blockIdx.x;
    if (r >= rows) return;
    const F *zr = z + r * T;
    F *lr = lp + r * T;
#define ZV(c) (bias ? (double)(zr[c] + bias[c]) : (double)zr[c])
    double m = -INFINITY;
    for (long long c = threadIdx.x; c < T; c += blockDim.x) m = fmax(m, ZV(c));
    m = block_max(m);
    double s = 0;
    for (long long c = threadIdx.x; c < T; c += blockDim.x) s += exp(ZV(c) - m);
    s = block_sum<F>(s);
    double lse = m + log(s);
    for (long long c = threadIdx.x; c < T; c += blockDim.x) lr[c] = (F)(ZV(c) - lse);
#undef ZV
}

// nll: with l = −w[y]·lp[r, y] (0 for an ignored row), rowloss[r] = scale·l
// (the reduction scale scalep[0], so that xent_reduce only sums) and
// losses[r] = l in F when non-NULL (Reduction None, where the scale is 1).
// One thread per row.
template <typename F>
__device__ void nll_t(const F *lp, const F *tg, const double *w, double *rowloss, F *losses,
                      const double *scalep, long long rows, long long T, long long flags, long long ignore) {
    const double scale = scalep[0];
    for (long long r = blockIdx.x * (long long)blockDim.x + threadIdx.x; r < rows;
         r += (long long)gridDim.x * blockDim.x) {
        bool ignored, bad;
        const long long y = xent_label(tg, r, T, flags, ignore, ignored, bad);
        double l;
        if (ignored) {
            l = 0;
        } else if (bad) {
            l = NAN;
        } else {
            l = -weight(w, y) * (double)lp[r * T + y];
        }
        rowloss[r] = scale * l;
        if (losses) losses[r] = (F)l;
    }
}

// nll_grad: g[r, c] = −scale·gscale·w[y] for c = y, else 0. Grid-stride
// over rows×T.
template <typename F>
__device__ void nll_grad_t(F *g, const F *tg, const double *w, const double *scalep,
                           long long rows, long long T, long long flags, long long ignore, double gscale) {
    double scale = scalep[0] * gscale;
    long long n = rows * T;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        long long r = i / T, c = i - r * T;
        bool ignored, bad;
        const long long y = xent_label(tg, r, T, flags, ignore, ignored, bad);
        double v = 0;
        if (c == y && !ignored) v = -scale * weight(w, y);
        g[i] = (F)v;
    }
}

// log_softmax_grad: one block per row, in place: g ← g − exp(lp)·Σ_c g.
template <typename F>
__device__ void log_softmax_grad_t(F *g, const F *lp, long long rows, long long T) {
    long long r = blockIdx.x;
    if (r >= rows) return;
    F *gr = g + r * T;
    const F *lr = lp + r * T;
    double s = 0;
    for (long long c = threadIdx.x; c < T; c += blockDim.x) s += (double)gr[c];
    s = block_sum<F>(s);
    for (long long c = threadIdx.x; c < T; c += blockDim.x) gr[c] = (F)((double)gr[c] - exp((double)lr[c]) * s);
}

#define INST(S, F)                                                                                   \
    extern "C" __global__ void log_softmax_##S(const F *z, F *lp, long long rows, long long T,        \
                                               const F *bias) {                                      \
        log_softmax_t<F>(z, lp, rows, T, bias);                                                      \
    }                                                                                                \
    extern "C" __global__ void nll_##S(const F *lp, const F *tg, const double *w, double *rowloss,   \
                                       F *losses, const double *scalep, long long rows, long long T, \
                                       long long flags, long long ignore) {                          \
        nll_t<F>(lp, tg, w, rowloss, losses, scalep, rows, T, flags, ignore);                        \
    }                                                                                                \
    extern "C" __global__ void nll_grad_##S(F *g, const F *tg, const double *w, const double *scalep, \
                                            long long rows, long long T, long long flags,            \
                                            long long ignore, double gscale) {                       \
        nll_grad_t<F>(g, tg, w, scalep, rows, T, flags, ignore, gscale);                             \
    }                                                                                                \
    extern "C" __global__ void log_softmax_grad_##S(F *g, const F *lp, long long rows, long long T) { \
        log_softmax_grad_t<F>(g, lp, rows, T);                                                       \
    }

INST(f32, float)
INST(f64, double)
