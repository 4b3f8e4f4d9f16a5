// xent.cu — fused softmax + cross-entropy, forward and gradient in one pass
// pair over each row of logits, for every option of graph.LossOptions.
//
// Fuses: the bias add of x·W + b, logit soft-capping (ẑ = c·tanh(z/c)), the
// row maximum, Σ exp(ẑ − max), the target coefficients a_c (hard label with
// class weights, ignore_index and label smoothing, or probability targets),
// the row's cross-entropy Σ a_c·(m − ẑ_c) + S·log Σ exp(ẑ − m) and z-loss
// λ·lse², both times their reduction scales, and the gradient
// sc·(S·p_c − a_c) + sz·2λ·lse·p_c (times 1 − tanh² with a cap) written IN
// PLACE over the logits. The row arithmetic is xent_row.cuh, shared by both
// kernels and equal to graph.RowTerms / graph.RowGradScaled.
//
// Never stores: the B×T probabilities, exp(ẑ), the capped logits, or the row
// max / lse (they live in registers and one shared-memory slot per warp).
// Two kernels: xent_t<Tmax> (T ≤ Tmax ≤ 4096) holds a row and its
// exp(ẑ − max) in the registers of one to eight warps, so global memory is
// read once and written once; xent runs a row per block of up to 512 threads
// and caches a row of at most 40 KiB in shared memory so that global memory
// is read once; a longer row is read a second time for the gradient (from
// HBM at large T: a float32 row of T = 256,000 is 1 MB, and the rows in
// flight on every SM are far past L2).
//
// A row with a logit that is NaN or +Inf (or ±Inf under a soft cap), ignored
// or not, gets loss NaN, as the CPU's graph.rowExp decides; a lone −Inf logit
// gets p = 0 (PyTorch's way of masking a class) and makes the loss +Inf only
// where the target weighs it. The host reads the reduced loss before the
// optimizer runs and reports the row instead of stepping.
//
// Every scalar parameter is 8 bytes wide (long long or double): gorgonia.org/cu
// copies each kernel argument as 8 bytes. The Go side of every signature is
// a struct in args.go (TestSignatures checks them).
//
// Names: rows ≤ B valid rows, T classes, ld ≥ T the row stride of z (elements).

#include <math.h>

#include "bf16.cuh"
#include "xent_acc.cuh"
#include "xent_row.cuh"

// The flags (XENT_SOFT, XENT_IGNORE, XENT_GRAD, XENT_MEAN, XENT_CACHE), the
// label decode and the target coefficients are xent_row.cuh's.

// XENT_ARGS: the parameters of every xent kernel (args.go: Xent).
//   z       rows×ld  logits in; the gradient out when XENT_GRAD (may be NaN past T)
//   tg      rows     hard labels stored as F, or rows×ldt probabilities (XENT_SOFT)
//   w       T        class weights (double), or NULL for all 1
//   rowloss rows     per-row loss sc·ce + sz·zl (double): summed by xent_reduce
//   losses  rows     the same in F (Reduction None, where sc = sz = 1), or NULL
//   scalep  2        the reduction scales sc (cross-entropy) and sz (z-loss), from xent_scale
//   bias    T        added to each row of z as it is read (the bias of
//                    x·W + b, fused here instead of a pass over z), or NULL
//   g16     rows×T   the gradient again, rounded to bfloat16 (dense, row
//                    stride T), for the bfloat16-storage layer's products
//                    dW = xᵀ·dz and dx = dz·Wᵀ; or NULL. Written where the
//                    gradient is written, so no pass converts it.
// gscale multiplies the gradient (the upstream gradient of the loss); wsum is
// Σ_c w_c; eps the label smoothing; ignore the ignore_index; softcap the cap c
// (0: none); zloss the z-loss λ (0: none).
#define XENT_PARAMS(F)                                                                        \
    F *z, long long ld, const F *tg, long long ldt, const double *w, double *rowloss,        \
        F *losses, const double *scalep, long long rows, long long T, long long flags,       \
        long long ignore, double eps, double wsum, double gscale, double softcap,            \
        double zloss, const F *bias, unsigned short *g16
#define XENT_ARGS z, ld, tg, ldt, w, rowloss, losses, scalep, rows, T, flags, ignore, eps, wsum, gscale, softcap, zloss, bias, g16

// xent_rows: one block per row (gridDim.x = rows), blockDim.x a multiple of 32.
template <typename F>
__device__ void xent_rows(XENT_PARAMS(F)) {
    extern __shared__ unsigned char smem_raw[];
    long long r = blockIdx.x;
    if (r >= rows) return;
    F *zr = z + r * ld;
    const bool soft = flags & XENT_SOFT;
    const F *yr = soft ? tg + r * ldt : 0;
    const bool cache = flags & XENT_CACHE;
    F *row = cache ? (F *)smem_raw : zr;

    bool ignored = false, bad = false;
    const long long label = soft ? -1 : xent_label(tg, r, T, flags, ignore, ignored, bad);
    const double k = eps / (double)T;
    const bool hit = !soft && !ignored && !bad;
    // z[label] is read before any thread overwrites the row with its gradient.
    double zy = hit ? xent_cap((double)(bias ? zr[label] + bias[label] : zr[label]), softcap) : 0.0;

    // Pass 1: one read of the row: online max / Σexp, and Σ α_c·(m − ẑ_c).
    Acc acc;
    acc.m = -INFINITY; acc.s = 0; acc.d = 0; acc.A = 0;
    const bool sums = soft || eps != 0;
    for (long long c = threadIdx.x; c < T; c += blockDim.x) {
        F zv = bias ? zr[c] + bias[c] : zr[c];
        if (cache) row[c] = zv;
        double raw = (double)zv;
        double v = xent_cap(raw, softcap);
        double alpha = sums ? xent_alpha(soft, w, yr, c, eps, k) : 0.0;
        acc_add(acc, raw, v, alpha, sums, softcap);
    }
    Acc tot = block_reduce(acc);   // also a barrier for the cached row
    double L = log(tot.s);
    if (isinf(tot.m) || isnan(tot.m)) L = NAN;

    double wy = hit ? weight(w, label) : 0;
    XentRowLoss rl = xent_row_loss(soft, ignored, bad, tot.m, L, tot.d, tot.A, zy, wy, eps, k, wsum, zloss);
    const double sc = scalep[0], sz = scalep[1];
    if (threadIdx.x == 0) {
        rowloss[r] = sc * rl.ce + sz * rl.zl;
        if (losses) losses[r] = (F)(rl.ce + rl.zl);
    }
    if (!(flags & XENT_GRAD)) return;

    // Pass 2: the gradient, over the row in place.
    const double gsc = sc * gscale, zf = sz * gscale * 2.0 * zloss * (tot.m + L);
    if (!soft && (ignored || (gsc == 0 && zf == 0))) {
        for (long long c = threadIdx.x; c < T; c += blockDim.x) {
            zr[c] = (F)0;
            if (g16) g16[r * T + c] = 0;
        }
        return;
    }
    for (long long c = threadIdx.x; c < T; c += blockDim.x) {
        F zv = (!cache && bias) ? row[c] + bias[c] : row[c];
        double raw = (double)zv;
        double p = exp((xent_cap(raw, softcap) - tot.m) - L);
        double g = xent_grad(p, xent_coef(soft, w, yr, c, label, eps, k), rl.S, gsc, zf, xent_dcap(raw, softcap));
        if (bad) g = NAN;
        zr[c] = (F)g;
        if (g16) g16[r * T + c] = bf16_round((float)g);
    }
}

extern "C" __global__ void xent_f32(XENT_PARAMS(float)) { xent_rows<float>(XENT_ARGS); }
extern "C" __global__ void xent_f64(XENT_PARAMS(double)) { xent_rows<double>(XENT_ARGS); }

// exp_nonpos(x) = exp(x) for x ≤ 0 (−∞ included), in float64 without
// branches, so that the unrolled loops below pipeline: x = k·ln2 + r with
// |r| ≤ ln2/2 (k by the 1.5·2⁵² shift, ln2 in two parts as fdlibm), exp(r) by
// its Taylor polynomial of degree 13 (truncation < 1e-17 relative) in Horner
// form, then 2^k added to the exponent. Error < 1 ulp (0.87 ulp measured
// against long double on 2·10⁷ arguments in [−708, 0]). Results below 2⁻¹⁰²¹
// (x < −708) are returned as 0: they are under 1e-307, far below every
// tolerance, and every use adds them to a sum ≥ 1 or multiplies them by
// 1/Σ ≤ 1. NaN in gives an unspecified value: callers make the row NaN.
__device__ __forceinline__ double exp_nonpos(double x) {
    const double shift = 6755399441055744.0;   // 1.5·2⁵²
    double t = fma(x, 1.4426950408889634, shift);
    int k = __double2loint(t);
    double kd = t - shift;
    double r = fma(kd, -6.93147180369123816490e-01, x);
    r = fma(kd, -1.90821492927058770002e-10, r);
    double p = 1.0 / 6227020800.0;
    p = fma(p, r, 1.0 / 479001600.0);
    p = fma(p, r, 1.0 / 39916800.0);
    p = fma(p, r, 1.0 / 3628800.0);
    p = fma(p, r, 1.0 / 362880.0);
    p = fma(p, r, 1.0 / 40320.0);
    p = fma(p, r, 1.0 / 5040.0);
    p = fma(p, r, 1.0 / 720.0);
    p = fma(p, r, 1.0 / 120.0);
    p = fma(p, r, 1.0 / 24.0);
    p = fma(p, r, 1.0 / 6.0);
    p = fma(p, r, 0.5);
    p = fma(p, r, 1.0);
    p = fma(p, r, 1.0);
    double y = __hiloint2double(__double2hiint(p) + (k << 20), __double2loint(p));
    return x < -708.0 ? 0.0 : y;
}

template <typename F>
__device__ __forceinline__ F fmax_t(F a, F b);
template <>
__device__ __forceinline__ float fmax_t<float>(float a, float b) { return fmaxf(a, b); }
template <>
__device__ __forceinline__ double fmax_t<double>(double a, double b) { return fmax(a, b); }

// Shared slots for combining the W warps of a row (W > 1): two sets, each
// reused every row; a barrier sits between each set's writes and reads, and
// each set's next writes come after the other set's barrier.
template <typename F, int W>
struct RowSlots {
    F mx[W];
    F zl[W];
    int nan[W];
    double s[W], a[W], S[W];
};

// xent_tile_rows: the same arithmetic as xent_rows for rows of T ≤ 32·W·K,
// each row held in registers by W warps (32·W threads; thread i holds columns
// i + 32·W·j, j < K). W = 1: a row per warp, warps stride over the rows, any
// block size that is a multiple of 32, no shared memory, no barriers. W > 1:
// blockDim.x = 32·W, a row per block (blocks stride over the rows), warp
// results combined in shared memory, two __syncthreads per row.
// The maximum is taken first (exact), so Σ exp(z − max) needs no rescaling,
// and each exp(z_c − max) stays in registers for the gradient: p_c =
// exp(z_c − max)·(1/Σ). No soft-capping here (softcap must be 0: the
// lowering sends capped rows to xent, whose registers the tanh does not
// crowd; caps serve large vocabularies, which take xent anyway). Warp sums are butterflies (__shfl_xor_sync: every
// lane gets the same bits), then the warps' sums are added in warp order:
// fixed order, deterministic.
template <typename F, int K, int W>
__device__ void xent_tile_rows(XENT_PARAMS(F)) {
    __shared__ RowSlots<F, W> slot[W > 1 ? 2 : 1];
    const unsigned full = 0xffffffffu;
    const int lane = threadIdx.x & 31;
    const int wid = W > 1 ? (int)(threadIdx.x >> 5) : 0;   // warp within the row
    const int tid = W > 1 ? (int)threadIdx.x : lane;        // thread within the row
    const int tpr = 32 * W;
    long long r = W > 1 ? (long long)blockIdx.x : (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    const long long stride = W > 1 ? (long long)gridDim.x : (long long)gridDim.x * (blockDim.x >> 5);
    const bool soft = flags & XENT_SOFT;
    const double k = eps / (double)T;
    const double sc = scalep[0], sz = scalep[1];
    for (; r < rows; r += stride) {
        F *zr = z + r * ld;
        const F *yr = soft ? tg + r * ldt : 0;
        bool ignored = false, bad = false;
        const long long label = soft ? -1 : xent_label(tg, r, T, flags, ignore, ignored, bad);
        const bool hit = !soft && !ignored && !bad;
        // Column indices fit an int (T ≤ 32·W·K ≤ 4096); lab is the label's
        // column when hit, else −1 (no column): only hit rows use z[label],
        // and the gradient's label term is 0 (probability targets) or the
        // whole row NaN (bad label) otherwise.
        const int Ti = (int)T;
        const int lab = hit ? (int)label : -1;
        // The row, once, into registers (−∞ past T); its raw maximum; NaN if
        // any logit is NaN or ±Inf; z[label]. The loads are predicated, all
        // issued before any use (offsets from one row pointer: few
        // registers), and the bias is added after them (also predicated:
        // −∞ stays −∞, so columns past T are never the maximum).
        F v[K];
#pragma unroll
        for (int j = 0; j < K; j++) {
            const int c = tid + tpr * j;
            v[j] = c < Ti ? zr[c] : (F)(-INFINITY);
        }
        if (bias) {
            F bv[K];
#pragma unroll
            for (int j = 0; j < K; j++) {
                const int c = tid + tpr * j;
                bv[j] = c < Ti ? bias[c] : (F)0;
            }
#pragma unroll
            for (int j = 0; j < K; j++) v[j] += bv[j];
        }
        F mx = (F)(-INFINITY), zl = 0;
        bool nan = false;
#pragma unroll
        for (int j = 0; j < K; j++) {
            mx = fmax_t<F>(mx, v[j]);
            nan |= tid + tpr * j < Ti && (isnan(v[j]) || v[j] == (F)INFINITY);   // a lone −Inf: p = 0
            if (tid + tpr * j == lab) zl = v[j];
        }
        for (int off = 16; off > 0; off >>= 1) mx = fmax_t<F>(mx, __shfl_xor_sync(full, mx, off));
        nan = __any_sync(full, nan);
        if (hit) zl = __shfl_sync(full, zl, (int)(label & 31));
        if (W > 1) {
            RowSlots<F, W> &o = slot[0];
            if (lane == 0) {
                o.mx[wid] = mx;
                o.nan[wid] = nan;
                o.zl[wid] = zl;
            }
            __syncthreads();
            mx = o.mx[0];
            nan = o.nan[0];
#pragma unroll
            for (int i = 1; i < W; i++) {
                mx = fmax_t<F>(mx, o.mx[i]);
                nan |= o.nan[i];
            }
            if (hit) zl = o.zl[(int)((label % tpr) >> 5)];
        }
        const double zy = hit ? (double)zl : 0.0;
        const double m = nan ? (double)NAN : (double)mx;

        // Σ exp(ẑ − m); exp(ẑ − m) stays in registers (0 past T).
        double e[K];
        double s = 0;
#pragma unroll
        for (int j = 0; j < K; j++) {
            e[j] = exp_nonpos((double)v[j] - m);
            s += e[j];
        }
        // Σ α_c·(m − ẑ_c) (and Σ a_c for probability targets): only with
        // label smoothing or probability targets, from the row in global
        // memory (not yet overwritten; L1/L2).
        double d = 0, Sa = 0;
        const bool sums = soft || eps != 0;
        if (sums) {
            for (long long c = tid; c < T; c += tpr) {
                double x = (double)(bias ? zr[c] + bias[c] : zr[c]);
                double alpha = xent_alpha(soft, w, yr, c, eps, k);
                Sa += alpha;
                if (alpha != 0) d += alpha * (m - x);   // 0·(m − (−Inf)) would be NaN
            }
        }
        for (int off = 16; off > 0; off >>= 1) {
            s += __shfl_xor_sync(full, s, off);
            if (sums) {
                d += __shfl_xor_sync(full, d, off);
                Sa += __shfl_xor_sync(full, Sa, off);
            }
        }
        if (W > 1) {
            RowSlots<F, W> &o = slot[W > 1 ? 1 : 0];
            if (lane == 0) {
                o.s[wid] = s;
                o.a[wid] = d;
                o.S[wid] = Sa;
            }
            __syncthreads();
            s = o.s[0];
            d = o.a[0];
            Sa = o.S[0];
#pragma unroll
            for (int i = 1; i < W; i++) {
                s += o.s[i];
                d += o.a[i];
                Sa += o.S[i];
            }
        }
        double L = log(s);
        double inv = 1.0 / s;
        if (isinf(m) || isnan(m)) L = inv = NAN;

        const double wy = hit ? weight(w, label) : 0;
        XentRowLoss rl = xent_row_loss(soft, ignored, bad, m, L, d, Sa, zy, wy, eps, k, wsum, zloss);
        if (tid == 0) {
            rowloss[r] = sc * rl.ce + sz * rl.zl;
            if (losses) losses[r] = (F)(rl.ce + rl.zl);
        }
        if (!(flags & XENT_GRAD)) continue;

        // The gradient, over the row in place.
        const double gsc = sc * gscale, zf = sz * gscale * 2.0 * zloss * (m + L);
        if (!soft && (ignored || (gsc == 0 && zf == 0))) {
            for (long long c = tid; c < T; c += tpr) {
                zr[c] = (F)0;
                if (g16) g16[r * T + c] = 0;
            }
            continue;
        }
        if (!soft && !w) {   // a_c = ε/T, and 1 − ε more at the label; every column computed, then stores predicated
#pragma unroll
            for (int j = 0; j < K; j++) {
                const int c = tid + tpr * j;
                double g = xent_grad(e[j] * inv, xent_coef(false, w, yr, c, lab, eps, k), rl.S, gsc, zf, 1.0);
                if (bad) g = NAN;
                if (c < Ti) {
                    zr[c] = (F)g;
                    if (g16) g16[r * T + c] = bf16_round((float)g);
                }
            }
            continue;
        }
#pragma unroll
        for (int j = 0; j < K; j++) {
            const int c = tid + tpr * j;
            if (c < Ti) {
                double g = xent_grad(e[j] * inv, xent_coef(soft, w, yr, c, lab, eps, k), rl.S, gsc, zf, 1.0);
                if (bad) g = NAN;
                zr[c] = (F)g;
                if (g16) g16[r * T + c] = bf16_round((float)g);
            }
        }
    }
}

// xent_t<Tmax>_<F>: xent_tile_rows for T ≤ Tmax; arguments as xent_<F>, no
// dynamic shared memory (XENT_CACHE is ignored). Blocks: W = 1, a multiple of
// 32 threads ≤ 256 (a row per warp); W > 1, exactly 32·W threads.
// MB32/MB64: the blocks of NT threads an SM must hold (__launch_bounds__'s
// minimum), which caps the registers a thread: chosen (ptxas -v, sm_90) as
// the most blocks that compile without spills, and never fewer than the
// kernel gets without a minimum (xent_t128: 3, since the non-finite check
// and the non-cancelling sums; 4 before); xent_t1024_f32 (T = 1000): 96 registers,
// 20 warps an SM, against 168 and 12 with unconditional loads and no minimum.
#define XENT_TILE(TMAX, K, W, NT, MB32, MB64)                                                    \
    extern "C" __global__ void __launch_bounds__(NT, MB32) xent_t##TMAX##_f32(XENT_PARAMS(float)) { \
        xent_tile_rows<float, K, W>(XENT_ARGS);                                                  \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(NT, MB64) xent_t##TMAX##_f64(XENT_PARAMS(double)) { \
        xent_tile_rows<double, K, W>(XENT_ARGS);                                                 \
    }
XENT_TILE(32, 1, 1, 256, 4, 4)
XENT_TILE(64, 2, 1, 256, 4, 4)
XENT_TILE(128, 4, 1, 256, 3, 3)
XENT_TILE(256, 8, 1, 256, 3, 3)
XENT_TILE(512, 16, 1, 256, 2, 2)
XENT_TILE(1024, 16, 2, 64, 10, 8)
XENT_TILE(2048, 16, 4, 128, 5, 4)
XENT_TILE(4096, 16, 8, 256, 2, 2)

// xent_scale: one block (up to 1024 threads). Writes the reduction scales:
// scalep[0] for the cross-entropy, scalep[1] for the z-loss. For mean,
// 1 / (Σ over non-ignored rows of w[label]) and 1 / (the number of
// non-ignored rows) for hard targets, 1/rows for both with probability
// targets, 0 when the sum is 0; 1 for sum and none.
//   tg     rows   hard labels stored as F (unused for soft targets)
//   w      T      class weights, or NULL
//   scalep 2      out
template <typename F>
__device__ void xent_scale_t(const F *tg, const double *w, double *scalep, long long rows,
                             long long T, long long flags, long long ignore) {
    __shared__ double part[32], kpart[32];
    if (!(flags & XENT_MEAN)) {
        if (threadIdx.x == 0) scalep[0] = scalep[1] = 1.0;
        return;
    }
    double d = 0, kept = 0;
    if (flags & XENT_SOFT) {
        d = kept = (double)rows;
    } else {
        // Rows r = threadIdx.x + i·blockDim.x in order of i, their labels
        // loaded eight at a time.
        double s = 0, n = 0;
        for (long long r0 = threadIdx.x; r0 < rows; r0 += 8LL * blockDim.x) {
            F lab[8];   // unconditional loads (past the rows: the last row, skipped below)
#pragma unroll
            for (int u = 0; u < 8; u++) lab[u] = tg[min(r0 + u * (long long)blockDim.x, rows - 1)];
#pragma unroll
            for (int u = 0; u < 8; u++) {
                long long y = (long long)(double)lab[u];
                if (r0 + u * (long long)blockDim.x >= rows) continue;
                if ((flags & XENT_IGNORE) && y == ignore) continue;
                n += 1;
                if (y < 0 || y >= T) continue;
                s += weight(w, y);
            }
        }
        for (int off = 16; off > 0; off >>= 1) {
            s += __shfl_down_sync(0xffffffffu, s, off);
            n += __shfl_down_sync(0xffffffffu, n, off);
        }
        if ((threadIdx.x & 31) == 0) {
            part[threadIdx.x >> 5] = s;
            kpart[threadIdx.x >> 5] = n;
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            for (int i = 0; i < (int)(blockDim.x >> 5); i++) {
                d += part[i];
                kept += kpart[i];
            }
        }
    }
    if (threadIdx.x == 0) {
        scalep[0] = d == 0 ? 0.0 : 1.0 / d;
        scalep[1] = kept == 0 ? 0.0 : 1.0 / kept;
    }
}

// xent_scale and xent_reduce run as one block of 1024 threads
// (lower.ReduceDims): __launch_bounds__(1024) holds nvcc to the 64
// registers a thread that such a block can have.
extern "C" __global__ void __launch_bounds__(1024) xent_scale_f32(const float *tg, const double *w, double *scalep,
                                          long long rows, long long T, long long flags,
                                          long long ignore) {
    xent_scale_t<float>(tg, w, scalep, rows, T, flags, ignore);
}

extern "C" __global__ void __launch_bounds__(1024) xent_scale_f64(const double *tg, const double *w, double *scalep,
                                          long long rows, long long T, long long flags,
                                          long long ignore) {
    xent_scale_t<double>(tg, w, scalep, rows, T, flags, ignore);
}

// xent_reduce: one block (up to 1024 threads). out[0] = Σ_r rowloss[r] (the
// row losses already carry their reduction scales), summed in a fixed order
// (deterministic); only this scalar crosses the bus.
//   rowloss rows   per-row losses (double)
//   out     1      the loss (double)
extern "C" __global__ void __launch_bounds__(1024) xent_reduce(const double *rowloss, double *out, long long rows) {
    __shared__ double part[32];
    double s = 0;   // rows threadIdx.x + i·blockDim.x in order of i, loaded eight at a time
    for (long long r0 = threadIdx.x; r0 < rows; r0 += 8LL * blockDim.x) {
        double v[8];   // unconditional loads (past the rows: the last row, not added)
#pragma unroll
        for (int u = 0; u < 8; u++) v[u] = rowloss[min(r0 + u * (long long)blockDim.x, rows - 1)];
#pragma unroll
        for (int u = 0; u < 8; u++) {
            if (r0 + u * (long long)blockDim.x < rows) s += v[u];
        }
    }
    for (int off = 16; off > 0; off >>= 1) s += __shfl_down_sync(0xffffffffu, s, off);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = s;
    __syncthreads();
    if (threadIdx.x == 0) {
        double t = 0;
        for (int i = 0; i < (int)(blockDim.x >> 5); i++) t += part[i];
        out[0] = t;
    }
}
