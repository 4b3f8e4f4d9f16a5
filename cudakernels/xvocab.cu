// xvocab.cu — the fused softmax + cross-entropy over vocabulary tiles, for
// layers whose rows×T logits must never exist (Config.VocabTile): the
// logits of a row chunk are made Vt columns at a time by cuBLAS, and these
// kernels carry each row's statistics from tile to tile.
//
//   pass 1, per tile:  z_t = x·W[:, c0:c0+Vt]      (cuBLAS)
//                      xvocab_stats: the tile's max, Σ exp, smoothing sums
//                      merged into the row's running Acc; ẑ at the label
//   after the tiles:   xvocab_finish: L = log Σ exp(ẑ − m), the row loss
//                      (xent_row_loss, as xent.cu) and the row's m, L, S
//   pass 2, per tile:  z_t again (cuBLAS: the logits are recomputed, not kept)
//                      xvocab_grad: the gradient over z_t in place (and in
//                      bfloat16) and its column sums by row slab (db's
//                      share, finished by colsum_fin), then cuBLAS adds its
//                      share of dW and dx.
//
// Fuses the bias add, soft-capping, the online log-sum-exp and the target
// coefficients, as xent.cu does, with the same row arithmetic
// (xent_acc.cuh, xent_row.cuh). Never stores: the rows×T logits,
// probabilities or gradient (one rows×Vt tile exists at a time), exp(ẑ).
// Stores per row: Acc (4 doubles), ẑ_y, then m, L, S (3 doubles).
//
// Every scalar parameter is 8 bytes wide (gorgonia.org/cu copies each kernel
// argument as 8 bytes); the Go side of each signature is in args.go.
//
// Names: rows valid rows of the chunk, T classes, Vt ≤ T columns in this
// tile starting at column c0; the tile z_t is rows×Vt, dense.

#include <math.h>

#include "bf16.cuh"
#include "xent_acc.cuh"
#include "xent_row.cuh"

// Flags: XENT_SOFT and XENT_IGNORE (xent_row.cuh), which also decodes the
// labels (xent_label) and gives the target coefficients (xent_alpha,
// xent_coef).

// xvocab_stats: one block per row (gridDim.x = rows), blockDim.x a multiple
// of 32.
//   z     rows×Vt  the tile's logits (x·W only: the bias is added here)
//   tg    rows     hard labels stored as F, or rows×T probabilities
//   w     T        class weights (double), or NULL
//   bias  T        the bias (the whole of it; columns c0.. are read), or NULL
//   acc   rows×4   the row's running Acc {m, s, d, A} (in/out; set when first)
//   zy    rows     ẑ at the row's label, written by the tile that holds it
// eps the label smoothing, softcap the cap (0: none).
template <typename F>
__device__ void xvocab_stats_t(const F *z, long long c0, long long Vt, const F *tg, const double *w, const F *bias,
                               double *acc, double *zy, long long rows, long long T, long long flags,
                               long long ignore, double eps, double softcap, long long first) {
    long long r = blockIdx.x;
    if (r >= rows) return;
    const F *zr = z + r * Vt;
    const bool soft = flags & XENT_SOFT;
    const F *yr = soft ? tg + r * T : 0;
    bool ignored = false, bad = false;
    long long label = soft ? -1 : xent_label(tg, r, T, flags, ignore, ignored, bad);
    const double k = eps / (double)T;
    const bool sums = soft || eps != 0;
    Acc a;
    a.m = -INFINITY; a.s = 0; a.d = 0; a.A = 0;
    for (long long j = threadIdx.x; j < Vt; j += blockDim.x) {
        long long c = c0 + j;
        F zv = bias ? zr[j] + bias[c] : zr[j];
        double raw = (double)zv;
        double alpha = sums ? xent_alpha(soft, w, yr, c, eps, k) : 0.0;
        acc_add(a, raw, xent_cap(raw, softcap), alpha, sums, softcap);
        if (!soft && !ignored && !bad && c == label) zy[r] = xent_cap(raw, softcap);
    }
    Acc tot = block_reduce(a);
    if (threadIdx.x == 0) {
        Acc *row = (Acc *)(acc + 4 * r);
        if (first) {
            *row = tot;
        } else {
            Acc x = *row;
            acc_merge(x, tot);
            *row = x;
        }
    }
}

extern "C" __global__ void xvocab_stats_f32(const float *z, long long c0, long long Vt, const float *tg, const double *w,
                                            const float *bias, double *acc, double *zy, long long rows, long long T,
                                            long long flags, long long ignore, double eps, double softcap, long long first) {
    xvocab_stats_t<float>(z, c0, Vt, tg, w, bias, acc, zy, rows, T, flags, ignore, eps, softcap, first);
}
extern "C" __global__ void xvocab_stats_f64(const double *z, long long c0, long long Vt, const double *tg, const double *w,
                                            const double *bias, double *acc, double *zy, long long rows, long long T,
                                            long long flags, long long ignore, double eps, double softcap, long long first) {
    xvocab_stats_t<double>(z, c0, Vt, tg, w, bias, acc, zy, rows, T, flags, ignore, eps, softcap, first);
}

// xvocab_finish: a thread per row (grid-stride).
//   acc     rows×4  the rows' Acc after the last tile
//   zy      rows    ẑ at the label
//   tg      rows    hard labels stored as F (unused for probabilities)
//   w       T       class weights, or NULL
//   rowloss rows    sc·ce + sz·zl (double), out
//   losses  rows    ce + zl in F, or NULL
//   scalep  2       the reduction scales (xent_scale)
//   st      rows×3  out: m, L and S, for xvocab_grad
// wsum is Σ_c w_c, zloss the z-loss λ.
template <typename F>
__device__ void xvocab_finish_t(const double *acc, const double *zy, const F *tg, const double *w, double *rowloss,
                                F *losses, const double *scalep, double *st, long long rows, long long T,
                                long long flags, long long ignore, double eps, double wsum, double zloss) {
    for (long long r = blockIdx.x * (long long)blockDim.x + threadIdx.x; r < rows;
         r += (long long)gridDim.x * blockDim.x) {
        const bool soft = flags & XENT_SOFT;
        bool ignored = false, bad = false;
        long long label = soft ? -1 : xent_label(tg, r, T, flags, ignore, ignored, bad);
        const double m = acc[4 * r], s = acc[4 * r + 1], d = acc[4 * r + 2], A = acc[4 * r + 3];
        double L = log(s);
        if (isinf(m) || isnan(m)) L = NAN;
        const bool hit = !soft && !ignored && !bad;
        const double wy = hit ? weight(w, label) : 0;
        XentRowLoss rl = xent_row_loss(soft, ignored, bad, m, L, d, A, hit ? zy[r] : 0.0, wy, eps, eps / (double)T,
                                       wsum, zloss);
        rowloss[r] = scalep[0] * rl.ce + scalep[1] * rl.zl;
        if (losses) losses[r] = (F)(rl.ce + rl.zl);
        st[3 * r] = m;
        st[3 * r + 1] = L;
        st[3 * r + 2] = rl.S;
    }
}

extern "C" __global__ void xvocab_finish_f32(const double *acc, const double *zy, const float *tg, const double *w,
                                             double *rowloss, float *losses, const double *scalep, double *st,
                                             long long rows, long long T, long long flags, long long ignore, double eps,
                                             double wsum, double zloss) {
    xvocab_finish_t<float>(acc, zy, tg, w, rowloss, losses, scalep, st, rows, T, flags, ignore, eps, wsum, zloss);
}
extern "C" __global__ void xvocab_finish_f64(const double *acc, const double *zy, const double *tg, const double *w,
                                             double *rowloss, double *losses, const double *scalep, double *st,
                                             long long rows, long long T, long long flags, long long ignore, double eps,
                                             double wsum, double zloss) {
    xvocab_finish_t<double>(acc, zy, tg, w, rowloss, losses, scalep, st, rows, T, flags, ignore, eps, wsum, zloss);
}

// xvocab_grad: blockIdx.y strides over the rows, blockIdx.x·blockDim.x +
// threadIdx.x over the tile's columns. The gradient of sc·ce + sz·zl times
// gscale over the tile, in place, and in bfloat16 to g16 (rows×Vt, dense)
// when not NULL; with part, each thread's column sum over its rows
// (r ≡ blockIdx.y mod gridDim.y, in order) to part[blockIdx.y·Vt + j]: the
// slabs colsum_fin adds into db (so db costs no second read of the tile).
//   z    rows×Vt  the tile's logits x·W (in), the gradient (out)
//   st   rows×3   m, L, S from xvocab_finish
//   part gridDim.y×Vt  column sums by slab (double, out), or NULL
// the other arguments as xvocab_stats and xvocab_finish.
template <typename F>
__device__ void xvocab_grad_t(F *z, long long c0, long long Vt, const F *tg, const double *w, const F *bias,
                              const double *st, const double *scalep, unsigned short *g16, double *part, long long rows,
                              long long T, long long flags, long long ignore, double eps, double gscale,
                              double softcap, double zloss) {
    const long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (j >= Vt) return;
    const long long c = c0 + j;
    const bool soft = flags & XENT_SOFT;
    const double k = eps / (double)T;
    const double gsc = scalep[0] * gscale;
    double colsum = 0;
    for (long long r = blockIdx.y; r < rows; r += gridDim.y) {
        bool ignored = false, bad = false;
        long long label = soft ? -1 : xent_label(tg, r, T, flags, ignore, ignored, bad);
        double g = 0;
        if (soft || !ignored) {
            const double m = st[3 * r], L = st[3 * r + 1], S = st[3 * r + 2];
            const double zf = scalep[1] * gscale * 2.0 * zloss * (m + L);
            double raw = (double)(bias ? z[r * Vt + j] + bias[c] : z[r * Vt + j]);
            double p = exp((xent_cap(raw, softcap) - m) - L);
            const double ac = xent_coef(soft, w, soft ? tg + r * T : tg, c, label, eps, k);
            g = bad ? NAN : xent_grad(p, ac, S, gsc, zf, xent_dcap(raw, softcap));
        }
        z[r * Vt + j] = (F)g;
        if (g16) g16[r * Vt + j] = bf16_round((float)g);
        colsum += (double)(F)g;   // db sums the gradient as stored
    }
    if (part) part[blockIdx.y * Vt + j] = colsum;
}

extern "C" __global__ void xvocab_grad_f32(float *z, long long c0, long long Vt, const float *tg, const double *w,
                                           const float *bias, const double *st, const double *scalep,
                                           unsigned short *g16, double *part, long long rows, long long T, long long flags,
                                           long long ignore, double eps, double gscale, double softcap, double zloss) {
    xvocab_grad_t<float>(z, c0, Vt, tg, w, bias, st, scalep, g16, part, rows, T, flags, ignore, eps, gscale, softcap, zloss);
}
extern "C" __global__ void xvocab_grad_f64(double *z, long long c0, long long Vt, const double *tg, const double *w,
                                           const double *bias, const double *st, const double *scalep,
                                           unsigned short *g16, double *part, long long rows, long long T, long long flags,
                                           long long ignore, double eps, double gscale, double softcap, double zloss) {
    xvocab_grad_t<double>(z, c0, Vt, tg, w, bias, st, scalep, g16, part, rows, T, flags, ignore, eps, gscale, softcap, zloss);
}
