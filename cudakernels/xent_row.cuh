// xent_row.cuh — the per-row arithmetic of the fused softmax + cross-entropy
// (xent.cu), written once for both of its kernels: graph.RowTerms and
// graph.RowGradScaled in float64. Everything here is __host__ __device__ and
// scalar, so that cudakernels' TestRowMath compiles it for the host with g++
// and checks it against the Go reference without a GPU.
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
