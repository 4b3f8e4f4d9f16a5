// bias.cu — the bias of logits = x·W + b and its gradient db = Σ_rows G.
//
// bias_add fuses Gorgonia's Reshape(1,T) → Repeat0(rows) → elementwise + into
// one in-place add over the product x·W: it never stores the rows×T repeated
// bias that the graph describes.
// colsum (Σ[0] of the rows×T gradient) sums each column in double in a fixed
// order; it never stores partial sums in global memory.
//
// Every scalar parameter is 8 bytes wide (gorgonia.org/cu copies each kernel
// argument as 8 bytes). rows ≤ B valid rows, T columns, ld ≥ T row stride.

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

// colsum: db[c] = Σ_{r < rows} g[r, c]. One thread per column, coalesced
// across columns.
//   g   rows×ld
//   db  T
template <typename F>
__device__ void colsum_t(const F *g, long long ld, F *db, long long rows, long long T) {
    for (long long c = blockIdx.x * (long long)blockDim.x + threadIdx.x; c < T;
         c += (long long)gridDim.x * blockDim.x) {
        double s = 0;
        for (long long r = 0; r < rows; r++) s += (double)g[r * ld + c];
        db[c] = (F)s;
    }
}

extern "C" __global__ void colsum_f32(const float *g, long long ld, float *db, long long rows, long long T) {
    colsum_t<float>(g, ld, db, rows, T);
}
extern "C" __global__ void colsum_f64(const double *g, long long ld, double *db, long long rows, long long T) {
    colsum_t<double>(g, ld, db, rows, T);
}
