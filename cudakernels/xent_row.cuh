// xent_row.cuh — the per-row arithmetic of the fused softmax + cross-entropy,
// written once for xent.cu's two kernels and xvocab.cu's tiles:
// graph.RowTerms and graph.RowGradScaled in float64; with the loss kernels'
// flags, the label decode and the target coefficients (unfused.cu uses
// these too). Everything here is __host__ __device__ and scalar, so that
// cudakernels' TestRowMath compiles it for the host with g++ and checks it
// against the Go reference without a GPU.
//
// Names: ẑ_c = c·tanh(z_c/c) are the soft-capped logits (ẑ = z without a
// cap), m = max_c ẑ_c, L = log Σ_c exp(ẑ_c − m), lse = m + L; a_c are the
// target's coefficients and S = Σ_c a_c:
//   hard label y:  a_c = (1−ε)·w_y·[c = y] + (ε/T)·w_c,  S = (1−ε)·w_y + (ε/T)·Σw
//   probabilities: a_c = w_c·((1−ε)·y_c + ε/T)
// The loss is written so that no two large numbers are subtracted:
//   ce = Σ_c a_c·(m − ẑ_c) + S·L     (every term ≥ 0)
//   zl = λ·lse²                      (z-loss; 0 for an ignored row)
// and the gradient of sc·ce + sz·zl is, with p_c = exp((ẑ_c − m) − L),
//   g_c = sc·(S·p_c − a_c) + sz·2λ·lse·p_c,   times 1 − tanh²(z_c/c) with a cap.

#ifndef XENT_ROW_CUH
#define XENT_ROW_CUH

#include <math.h>

// Flags of the loss kernels (xent.cu, xvocab.cu, unfused.cu): one set, the
// Xent* constants of args.go (TestSignatures checks the values).
#define XENT_SOFT 1LL       // targets are rows×T probabilities
#define XENT_IGNORE 2LL     // ignore_index is in use
#define XENT_GRAD 4LL       // write the gradient over z (xent.cu)
#define XENT_MEAN 8LL       // reduction mean (xent_scale only)
#define XENT_CACHE 16LL     // cache the row in dynamic shared memory (T·sizeof(F) bytes; xent_f32/_f64)

// weight is w_c, or 1 without class weights (w NULL).
__host__ __device__ __forceinline__ double weight(const double *w, long long c) {
    return w ? w[c] : 1.0;
}

// xent_label reads row r's hard label from tg (labels stored as F): the
// label, whether it is ignored (XENT_IGNORE and label = ignore), and whether
// it is bad (not ignored and not an integer in [0, T)).
template <typename F>
__host__ __device__ __forceinline__ long long xent_label(const F *tg, long long r, long long T, long long flags,
                                                         long long ignore, bool &ignored, bool &bad) {
    double yl = (double)tg[r];
    long long label = (long long)yl;
    ignored = (flags & XENT_IGNORE) && label == ignore;
    bad = !ignored && (label < 0 || label >= T || (double)label != yl);
    return label;
}

// xent_alpha is α_c, the weight of class c in the sums d = Σ α_c·(m − ẑ_c)
// and A = Σ α_c that the kernels gather: a_c for probability targets (yr the
// row's probabilities), w_c for a hard label (with smoothing; yr unread).
// k = ε/T.
template <typename F>
__host__ __device__ __forceinline__ double xent_alpha(bool soft, const double *w, const F *yr, long long c, double eps,
                                                      double k) {
    return soft ? weight(w, c) * ((1.0 - eps) * (double)yr[c] + k) : weight(w, c);
}

// xent_coef is a_c, the target's coefficient of class c (above): as
// xent_alpha for probability targets; (ε/T)·w_c, plus (1−ε)·w_c at the
// label, for a hard label.
template <typename F>
__host__ __device__ __forceinline__ double xent_coef(bool soft, const double *w, const F *yr, long long c,
                                                     long long label, double eps, double k) {
    if (soft) return xent_alpha(soft, w, yr, c, eps, k);
    double a = k * weight(w, c);
    if (c == label) a += (1.0 - eps) * weight(w, c);
    return a;
}

// xent_cap is the soft-capped logit c·tanh(v/c), or v when c is 0.
__host__ __device__ __forceinline__ double xent_cap(double v, double c) {
    return c > 0 ? c * tanh(v / c) : v;
}

// xent_dcap is ∂ẑ/∂z = 1 − tanh²(v/c) for a raw logit v, or 1 without a cap.
__host__ __device__ __forceinline__ double xent_dcap(double v, double c) {
    if (c <= 0) return 1.0;
    double t = tanh(v / c);
    return 1.0 - t * t;
}

// XentRowLoss is a row's coefficients and loss terms.
struct XentRowLoss {
    double S;    // Σ_c a_c
    double wy;   // w_y (hard labels)
    double ce;   // cross-entropy, before the reduction's scale
    double zl;   // z-loss, before the reduction's scale
};

// xent_row_loss finishes a row from what the kernel gathered over it:
//   m, L  the capped logits' maximum (NaN when a raw logit is NaN or +Inf, or
//         ±Inf under a cap:
//         then the whole row is NaN, ignored or not) and log Σ exp(ẑ − m)
//   d     Σ_c a_c·(m − ẑ_c) for probability targets; for hard labels with
//         smoothing Σ_c w_c·(m − ẑ_c); else unused
//   Sa    Σ_c a_c for probability targets
//   zy    ẑ at the label (hard labels that are kept)
// soft, ignored and bad (a label that is not an integer in [0, T)) describe
// the target; wy is the label's class weight, k = ε/T.
__host__ __device__ __forceinline__ XentRowLoss xent_row_loss(bool soft, bool ignored, bool bad, double m, double L,
                                                             double d, double Sa, double zy, double wy, double eps,
                                                             double k, double wsum, double lambda) {
    XentRowLoss r;
    r.wy = 0;
    r.zl = 0;
    if (isnan(m) || isnan(L)) {   // a non-finite logit
        r.S = r.ce = r.zl = NAN;
        return r;
    }
    if (soft) {
        r.S = Sa;
        r.ce = d + Sa * L;
    } else if (ignored) {
        r.S = 0;
        r.ce = 0;
        return r;
    } else if (bad) {
        r.S = r.ce = NAN;
    } else {
        r.wy = wy;
        r.S = (1.0 - eps) * wy + k * wsum;
        r.ce = (1.0 - eps) * wy * (m - zy) + r.S * L;
        if (eps != 0) r.ce += k * d;
    }
    if (lambda > 0) {
        double lse = m + L;
        r.zl = lambda * lse * lse;
    }
    return r;
}

// xent_grad is one element's gradient: p the softmax probability, ac its
// coefficient a_c, sc the cross-entropy's scale, zf = sz·2λ·lse the z-loss's
// coefficient of p, dcap = xent_dcap(z_c, c).
__host__ __device__ __forceinline__ double xent_grad(double p, double ac, double S, double sc, double zf, double dcap) {
    return (sc * (S * p - ac) + zf * p) * dcap;
}

#endif
