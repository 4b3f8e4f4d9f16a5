// optim.cu — optimizer updates applied on the device, parameters and state
// never leaving it. Formulas are backend.Optimizer's (PyTorch's):
//   SGD:   g += wd·w;  v = momentum·v + g (when momentum ≠ 0);  w −= lr·v (or lr·g)
//   Adam:  g += wd·w (Adam) or w −= lr·wd·w (AdamW, decoupled);
//          m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;
//          w −= lr · (m / bc1) / (√(v / bc2) + eps),  bc1 = 1−β1^t, bc2 = 1−β2^t
//
// Each fuses weight decay, the moment updates and the parameter update into
// one elementwise pass; it never stores the decayed gradient or m̂, v̂. The
// gradient buffer is only read. Arithmetic is in double, stored in F.
//
// w16, when not NULL (float32 layers with bfloat16 storage), receives each
// updated weight rounded to bfloat16: the copy the products read, refreshed
// by the step itself rather than by a conversion pass.
//
// Every scalar parameter is 8 bytes wide (gorgonia.org/cu copies each kernel
// argument as 8 bytes). n is the element count of w, g and the state.

#include "bf16.cuh"

// sgd: grid-stride over n.
//   w  n   parameters (in/out)
//   g  n   gradient
//   v  n   momentum buffer (in/out), unused when momentum = 0 (may be NULL)
//   w16 n  bfloat16 copy of w (out), or NULL
template <typename F>
__device__ void sgd_t(F *w, const F *g, F *v, long long n, double lr, double momentum, double wd,
                      unsigned short *w16) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        double wi = (double)w[i];
        double gi = (double)g[i] + wd * wi;
        if (momentum != 0) {
            double vi = momentum * (double)v[i] + gi;
            v[i] = (F)vi;
            gi = vi;
        }
        F nw = (F)(wi - lr * gi);
        w[i] = nw;
        if (w16) w16[i] = bf16_round((float)nw);
    }
}

extern "C" __global__ void sgd_f32(float *w, const float *g, float *v, long long n, double lr,
                                   double momentum, double wd, unsigned short *w16) {
    sgd_t<float>(w, g, v, n, lr, momentum, wd, w16);
}
extern "C" __global__ void sgd_f64(double *w, const double *g, double *v, long long n, double lr,
                                   double momentum, double wd, unsigned short *w16) {
    sgd_t<double>(w, g, v, n, lr, momentum, wd, w16);
}

// adam: grid-stride over n. decoupled ≠ 0 selects AdamW.
//   w  n   parameters (in/out)
//   g  n   gradient
//   m  n   first moment (in/out)
//   v  n   second moment (in/out)
//   w16 n  bfloat16 copy of w (out), or NULL
template <typename F>
__device__ void adam_t(F *w, const F *g, F *m, F *v, long long n, double lr, double b1, double b2,
                       double eps, double wd, long long decoupled, double bc1, double bc2,
                       unsigned short *w16) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        double wi = (double)w[i];
        double gi = (double)g[i];
        if (decoupled) {
            wi -= lr * wd * wi;
        } else {
            gi += wd * wi;
        }
        double mi = b1 * (double)m[i] + (1.0 - b1) * gi;
        double vi = b2 * (double)v[i] + (1.0 - b2) * gi * gi;
        m[i] = (F)mi;
        v[i] = (F)vi;
        F nw = (F)(wi - lr * (mi / bc1) / (sqrt(vi / bc2) + eps));
        w[i] = nw;
        if (w16) w16[i] = bf16_round((float)nw);
    }
}

extern "C" __global__ void adam_f32(float *w, const float *g, float *m, float *v, long long n,
                                    double lr, double b1, double b2, double eps, double wd,
                                    long long decoupled, double bc1, double bc2, unsigned short *w16) {
    adam_t<float>(w, g, m, v, n, lr, b1, b2, eps, wd, decoupled, bc1, bc2, w16);
}
extern "C" __global__ void adam_f64(double *w, const double *g, double *m, double *v, long long n,
                                    double lr, double b1, double b2, double eps, double wd,
                                    long long decoupled, double bc1, double bc2, unsigned short *w16) {
    adam_t<double>(w, g, m, v, n, lr, b1, b2, eps, wd, decoupled, bc1, bc2, w16);
}
