// xent.cu — fused softmax + cross-entropy, forward and gradient in one pass
// pair over each row of logits, for every option of graph.LossOptions.
//
// Fuses: row maximum, Σ exp(z − max) (online, in one read of the row),
// log-sum-exp, the target coefficients a_c (hard label with class weights,
// ignore_index and label smoothing, or probability targets), the row's loss
// S·lse − Σ a_c·z_c, and the gradient scale·(S·p_c − a_c) written IN PLACE
// over the logits. The arithmetic is graph.RowLoss / graph.RowGrad.
//
// Never stores: the B×T probabilities, exp(z), or the row max / lse (they
// live in registers and one shared-memory slot per warp). A row of at most
// 40 KiB is cached in shared memory so that global memory is read once; a
// longer row is read a second time for the gradient (from L2).
//
// Every scalar parameter is 8 bytes wide (long long or double): gorgonia.org/cu
// copies each kernel argument as 8 bytes.
//
// Names: rows ≤ B valid rows, T classes, ld ≥ T the row stride of z (elements).

#include <math.h>

#define XENT_SOFT 1LL       // targets are rows×T probabilities
#define XENT_IGNORE 2LL     // ignore_index is in use
#define XENT_GRAD 4LL       // write the gradient over z
#define XENT_MEAN 8LL       // reduction mean (xent_scale only)
#define XENT_CACHE 16LL     // cache the row in dynamic shared memory (T·sizeof(F) bytes)

struct Acc {
    double m;   // running max
    double s;   // Σ exp(z − m)
    double a;   // Σ a_c·z_c (or Σ w_c·z_c for hard targets with smoothing)
    double S;   // Σ a_c (soft targets)
};

__device__ __forceinline__ void acc_merge(Acc &x, const Acc &y) {
    double m = fmax(x.m, y.m);
    double s = 0;
    if (m == -INFINITY) {
        s = 0;
    } else {
        if (x.s != 0 || isnan(x.s)) s += x.s * exp(x.m - m);
        if (y.s != 0 || isnan(y.s)) s += y.s * exp(y.m - m);
    }
    if (isnan(x.m) || isnan(y.m)) m = NAN;
    x.m = m;
    x.s = s;
    x.a += y.a;
    x.S += y.S;
}

__device__ __forceinline__ Acc acc_shfl(const Acc &x, int off) {
    Acc y;
    y.m = __shfl_down_sync(0xffffffffu, x.m, off);
    y.s = __shfl_down_sync(0xffffffffu, x.s, off);
    y.a = __shfl_down_sync(0xffffffffu, x.a, off);
    y.S = __shfl_down_sync(0xffffffffu, x.S, off);
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
            x.m = -INFINITY; x.s = 0; x.a = 0; x.S = 0;
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

__device__ __forceinline__ double weight(const double *w, long long c) {
    return w ? w[c] : 1.0;
}

// xent_rows: one block per row (gridDim.x = rows), blockDim.x a multiple of 32.
//   z       rows×ld  logits in; the gradient out when XENT_GRAD (may be NaN past T)
//   tg      rows     hard labels stored as F, or rows×ldt probabilities (XENT_SOFT)
//   w       T        class weights (double), or NULL for all 1
//   rowloss rows     per-row loss before the reduction scale (double)
//   losses  rows     the same in F, or NULL
//   scalep  1        the reduction scale (from xent_scale), device memory
//   bias    T        added to each row of z as it is read (the bias of
//                    x·W + b, fused here instead of a pass over z), or NULL
// gscale multiplies the gradient (the upstream gradient of the loss); wsum is
// Σ_c w_c; eps the label smoothing; ignore the ignore_index.
template <typename F>
__device__ void xent_rows(F *z, long long ld, const F *tg, long long ldt,
                          const double *w, double *rowloss, F *losses,
                          const double *scalep, long long rows, long long T,
                          long long flags, long long ignore, double eps,
                          double wsum, double gscale, const F *bias) {
    extern __shared__ unsigned char smem_raw[];
    long long r = blockIdx.x;
    if (r >= rows) return;
    F *zr = z + r * ld;
    const bool soft = flags & XENT_SOFT;
    const F *yr = soft ? tg + r * ldt : 0;
    const bool cache = flags & XENT_CACHE;
    F *row = cache ? (F *)smem_raw : zr;

    long long label = -1;
    bool ignored = false, bad = false;
    if (!soft) {
        double yl = (double)tg[r];
        label = (long long)yl;
        ignored = (flags & XENT_IGNORE) && label == ignore;
        bad = !ignored && (label < 0 || label >= T || (double)label != yl);
    }
    const double k = eps / (double)T;
    // z[label] is read before any thread overwrites the row with its gradient.
    double zy = (!soft && !ignored && !bad) ? (double)(bias ? zr[label] + bias[label] : zr[label]) : 0.0;

    // Pass 1: one read of the row: online max / Σexp, and Σ a_c·z_c.
    Acc acc;
    acc.m = -INFINITY; acc.s = 0; acc.a = 0; acc.S = 0;
    for (long long c = threadIdx.x; c < T; c += blockDim.x) {
        F zv = bias ? zr[c] + bias[c] : zr[c];
        if (cache) row[c] = zv;
        double v = (double)zv;
        if (v > acc.m) {
            acc.s = acc.s * exp(acc.m - v) + 1.0;
            acc.m = v;
        } else if (v != -INFINITY || isnan(v)) {
            acc.s += exp(v - acc.m);
        }
        if (isnan(v)) acc.m = NAN;
        if (soft) {
            double a = weight(w, c) * ((1.0 - eps) * (double)yr[c] + k);
            acc.S += a;
            acc.a += a * v;
        } else if (eps != 0) {
            acc.a += weight(w, c) * v;
        }
    }
    Acc tot = block_reduce(acc);   // also a barrier for the cached row
    double lse = tot.m + log(tot.s);
    if (isinf(tot.m) || isnan(tot.m)) lse = NAN;

    double S, loss;
    double wy = 0;
    if (soft) {
        S = tot.S;
        loss = S * lse - tot.a;
    } else if (ignored) {
        S = 0;
        loss = 0;
    } else if (bad) {
        S = NAN;
        loss = NAN;
    } else {
        wy = weight(w, label);
        S = (1.0 - eps) * wy + k * wsum;
        double az = (1.0 - eps) * wy * zy;
        if (eps != 0) az += k * tot.a;
        loss = S * lse - az;
    }
    if (threadIdx.x == 0) {
        rowloss[r] = loss;
        if (losses) losses[r] = (F)loss;
    }
    if (!(flags & XENT_GRAD)) return;

    // Pass 2: the gradient, over the row in place.
    double scale = scalep[0] * gscale;
    if (!soft) {
        if (ignored || scale == 0) {
            for (long long c = threadIdx.x; c < T; c += blockDim.x) zr[c] = (F)0;
            return;
        }
        double ay = scale * (1.0 - eps) * wy;
        for (long long c = threadIdx.x; c < T; c += blockDim.x) {
            F zv = (!cache && bias) ? row[c] + bias[c] : row[c];
            double p = exp((double)zv - lse);
            double g = scale * (S * p - k * weight(w, c));
            if (c == label) g -= ay;
            if (bad) g = NAN;
            zr[c] = (F)g;
        }
        return;
    }
    for (long long c = threadIdx.x; c < T; c += blockDim.x) {
        double a = weight(w, c) * ((1.0 - eps) * (double)yr[c] + k);
        F zv = (!cache && bias) ? row[c] + bias[c] : row[c];
        double p = exp((double)zv - lse);
        zr[c] = (F)(scale * (S * p - a));
    }
}

extern "C" __global__ void xent_f32(float *z, long long ld, const float *tg, long long ldt,
                                    const double *w, double *rowloss, float *losses,
                                    const double *scalep, long long rows, long long T,
                                    long long flags, long long ignore, double eps,
                                    double wsum, double gscale, const float *bias) {
    xent_rows<float>(z, ld, tg, ldt, w, rowloss, losses, scalep, rows, T, flags, ignore, eps, wsum, gscale, bias);
}

extern "C" __global__ void xent_f64(double *z, long long ld, const double *tg, long long ldt,
                                    const double *w, double *rowloss, double *losses,
                                    const double *scalep, long long rows, long long T,
                                    long long flags, long long ignore, double eps,
                                    double wsum, double gscale, const double *bias) {
    xent_rows<double>(z, ld, tg, ldt, w, rowloss, losses, scalep, rows, T, flags, ignore, eps, wsum, gscale, bias);
}

// xent_scale: one block. Writes the reduction scale to scalep[0]: for mean,
// 1 / (Σ over non-ignored rows of w[label]) for hard targets or 1/rows for
// probability targets, 0 when that sum is 0; 1 for sum and none.
//   tg     rows   hard labels stored as F (unused for soft targets)
//   w      T      class weights, or NULL
//   scalep 1      out
template <typename F>
__device__ void xent_scale_t(const F *tg, const double *w, double *scalep, long long rows,
                             long long T, long long flags, long long ignore) {
    __shared__ double part[32];
    if (!(flags & XENT_MEAN)) {
        if (threadIdx.x == 0) scalep[0] = 1.0;
        return;
    }
    double d = 0;
    if (flags & XENT_SOFT) {
        d = (double)rows;
    } else {
        double s = 0;
        for (long long r = threadIdx.x; r < rows; r += blockDim.x) {
            long long y = (long long)(double)tg[r];
            if ((flags & XENT_IGNORE) && y == ignore) continue;
            if (y < 0 || y >= T) continue;
            s += weight(w, y);
        }
        for (int off = 16; off > 0; off >>= 1) s += __shfl_down_sync(0xffffffffu, s, off);
        if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = s;
        __syncthreads();
        if (threadIdx.x == 0) {
            for (int i = 0; i < (int)(blockDim.x >> 5); i++) d += part[i];
        }
    }
    if (threadIdx.x == 0) scalep[0] = d == 0 ? 0.0 : 1.0 / d;
}

extern "C" __global__ void xent_scale_f32(const float *tg, const double *w, double *scalep,
                                          long long rows, long long T, long long flags,
                                          long long ignore) {
    xent_scale_t<float>(tg, w, scalep, rows, T, flags, ignore);
}

extern "C" __global__ void xent_scale_f64(const double *tg, const double *w, double *scalep,
                                          long long rows, long long T, long long flags,
                                          long long ignore) {
    xent_scale_t<double>(tg, w, scalep, rows, T, flags, ignore);
}

// xent_reduce: one block of 256 threads. out[0] = scalep[0] · Σ_r rowloss[r],
// summed in a fixed order (deterministic); only this scalar crosses the bus.
//   rowloss rows   per-row losses (double)
//   scalep  1      the reduction scale
//   out     1      the loss (double)
extern "C" __global__ void xent_reduce(const double *rowloss, const double *scalep, double *out,
                                       long long rows) {
    __shared__ double part[32];
    double s = 0;
    for (long long r = threadIdx.x; r < rows; r += blockDim.x) s += rowloss[r];
    for (int off = 16; off > 0; off >>= 1) s += __shfl_down_sync(0xffffffffu, s, off);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = s;
    __syncthreads();
    if (threadIdx.x == 0) {
        double t = 0;
        for (int i = 0; i < (int)(blockDim.x >> 5); i++) t += part[i];
        out[0] = t * scalep[0];
    }
}
