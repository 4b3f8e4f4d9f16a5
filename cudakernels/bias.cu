// bias.cu — the bias of logits = x·W + b and its gradient db = Σ_rows G.
//
// bias_add is graph.BiasAdd(x·W, b) where something other than the loss
// reads the logits (the forward pass that returns them): one in-place add
// over the product x·W that never stores a rows×T repeated bias. When only
// the loss reads x·W, its first kernel (xent, xent_t<Tmax>, xvocab_stats or
// log_softmax) adds b as it reads each row and bias_add is not launched.
// colsum (graph.ColSum of the rows×T gradient: db) sums each column in
// double in a fixed order: slabs of rows in parallel, then the slabs' sums
// (S×T doubles).
// to_bf16 makes the bfloat16 copies of product operands.
//
// Every scalar parameter is 8 bytes wide (gorgonia.org/cu copies each kernel
// argument as 8 bytes). rows ≤ B valid rows, T columns, ld ≥ T row stride.

#include "bf16.cuh"

// bias_add: z[r, c] += b[c] for r < rows, c < T. 2-D grid-stride loop.
//   z  rows×ld
//   b  T
template <typename F>
__device__ void bias_add_t(F *z, long long ld, const F *b, long long rows, long long T) {
    for (long long r = blockIdx.y; r < rows; r += gridDim.y) {
        for (long long c = blockIdx.x * (long long)blockDim.x + threadIdx.x; c < T;
             c += (long long)gridDim.x * blockDim.x) {
            z[r * ld + c] += b[c];
        }
    }
}

extern "C" __global__ void bias_add_f32(float *z, long long ld, const float *b, long long rows, long long T) {
    bias_add_t<float>(z, ld, b, rows, T);
}
extern "C" __global__ void bias_add_f64(double *z, long long ld, const double *b, long long rows, long long T) {
    bias_add_t<double>(z, ld, b, rows, T);
}

// colsum in two kernels, deterministic (fixed order, double sums):
// colsum_part: block (32, 8) over 32 columns × one slab of rows; slab s of S
// covers rows [s·R, min((s+1)·R, rows)), R = ceil(rows/S); it writes
// part[s·T + c] = Σ over its slab of g[r, c]. Grid (ceil(T/32), S).
// colsum_fin: db[c] = Σ_s part[s·T + c] (+ db[c] when acc ≠ 0: a chunked
// batch accumulates its chunks). Grid-stride over T.
//   g    rows×ld
//   part S×T (double)
//   db   T
template <typename F>
__device__ void colsum_part_t(const F *g, long long ld, double *part, long long rows, long long T, long long S) {
    __shared__ double sh[8][33];
    long long c = blockIdx.x * 32LL + threadIdx.x;
    long long R = (rows + S - 1) / S;
    long long r0 = blockIdx.y * R, r1 = min(rows, r0 + R);
    double s = 0;
    if (c < T) {
        for (long long r = r0 + threadIdx.y; r < r1; r += 8) s += (double)g[r * ld + c];
    }
    sh[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && c < T) {
        double t = 0;
        for (int i = 0; i < 8; i++) t += sh[i][threadIdx.x];
        part[blockIdx.y * T + c] = t;
    }
}

template <typename F>
__device__ void colsum_fin_t(const double *part, F *db, long long T, long long S, long long acc) {
    for (long long c = blockIdx.x * (long long)blockDim.x + threadIdx.x; c < T;
         c += (long long)gridDim.x * blockDim.x) {
        double s = acc ? (double)db[c] : 0.0;
        for (long long i0 = 0; i0 < S; i0 += 8) {   // in order of i, loaded eight at a time
            double v[8];   // unconditional loads (past S: slab S − 1, not added)
#pragma unroll
            for (int u = 0; u < 8; u++) v[u] = part[min(i0 + u, S - 1) * T + c];
#pragma unroll
            for (int u = 0; u < 8; u++) {
                if (i0 + u < S) s += v[u];
            }
        }
        db[c] = (F)s;
    }
}

extern "C" __global__ void colsum_part_f32(const float *g, long long ld, double *part, long long rows, long long T, long long S) {
    colsum_part_t<float>(g, ld, part, rows, T, S);
}
extern "C" __global__ void colsum_part_f64(const double *g, long long ld, double *part, long long rows, long long T, long long S) {
    colsum_part_t<double>(g, ld, part, rows, T, S);
}
extern "C" __global__ void colsum_fin_f32(const double *part, float *db, long long T, long long S, long long acc) {
    colsum_fin_t<float>(part, db, T, S, acc);
}
extern "C" __global__ void colsum_fin_f64(const double *part, double *db, long long T, long long S, long long acc) {
    colsum_fin_t<double>(part, db, T, S, acc);
}

// to_bf16: dst[i] = src[i] rounded to bfloat16 (nearest, ties to even; NaN
// stays NaN), for the bf16 matmul mode's operand copies. Grid-stride over n.
//   src n float32, dst n bfloat16 (as 16-bit integers)
extern "C" __global__ void to_bf16(const float *src, unsigned short *dst, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        dst[i] = bf16_round(src[i]);
    }
}
