// cudashim.h — enough of CUDA's programming model for the kernels of
// cudakernels/*.cu to compile with the host's C++ compiler and run on the
// CPU, unchanged, for the tests (package dsx/backend/cuda/hostkern builds
// them; nothing here is used on a GPU).
//
// No maintained CPU implementation of CUDA or HIP is packaged for Debian 12
// (HIP-CPU is not; Debian's hipcc targets AMD GPUs, pocl runs OpenCL), so
// this is a small one of our own. What it implements:
//
//   - every CUDA thread of a block is a fiber (ucontext) with its own stack;
//     blocks run one after another; the threads of a block run in turn, each
//     until it reaches a point where it must wait for others (below), in
//     thread order or reversed (DSX_SHIM_ORDER=reverse), so that a result
//     that depends on the order shows;
//   - threadIdx, blockIdx, blockDim, gridDim (x and y; z is 1);
//   - shared memory per block: __shared__ variables are static storage that
//     the runtime fills with 0xff bytes (NaN) before every block (hostkern
//     registers each one when it copies the sources: DSX_SHARED_REG; the
//     first thread to declare one fills it the first time), and the
//     dynamic shared memory of a launch ends at a guard page, so that a read
//     past its size faults;
//   - __syncthreads: a barrier of every thread of the block that has not
//     exited;
//   - __shfl_sync, __shfl_down_sync, __shfl_xor_sync and __any_sync: a
//     warp-wide exchange in lockstep: it happens when every lane of the mask
//     has reached it, each lane gets what the lane it reads had passed (the
//     values are taken before any lane goes on); width 32 only;
//   - a launch that cannot finish is an error naming what each thread waits
//     for: a barrier that some threads never reach while others wait at a
//     warp exchange, a warp exchange whose mask names a lane that exited or
//     does not exist, lanes of one warp at different exchanges;
//   - under ThreadSanitizer (-fsanitize=thread, `make test-kernels-tsan`)
//     every fiber is a TSan fiber, switches between them do not synchronise,
//     and only __syncthreads (and the end of a block) orders memory between
//     threads, so a missing barrier is reported as a data race. Warp
//     exchanges pass values but order no memory. Blocks of one launch are
//     ordered one after another: races between blocks are not reported.
//   - the intrinsics the kernels use: __double2hiint, __double2loint,
//     __hiloint2double, __float_as_uint, min; #pragma unroll is ignored.
//
// Not modelled: more than one block at a time, warps of other than 32
// lanes, atomics, __syncwarp, textures, streams. Floating point is the
// host's (glibc's exp, log, tanh; fma as written): results differ from the
// GPU's in the last bits, which the tests' tolerances allow for.

#ifndef DSX_CUDASHIM_H
#define DSX_CUDASHIM_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <utility>

#define __host__
#define __device__
#define __global__
#define __forceinline__ inline
#define __launch_bounds__(...)
// The warp and block reductions of xent_acc.cuh are compiled.
#define __CUDACC__ 1

struct uint3 {
    unsigned int x, y, z;
};
typedef uint3 dim3;

namespace dsx {

// Thread is one CUDA thread of the running block (a fiber).
struct Thread;

// What a thread waits for (Thread::state).
enum State { RUN = 0, BAR = 1, WARP = 2, DONE = 3 };
// Warp exchanges (Thread::op).
enum Op { SHFL_IDX = 1, SHFL_DOWN = 2, SHFL_XOR = 3, ANY = 4 };

// The runtime (harness.cc). The running thread and the launch's geometry
// are relaxed atomics: under ThreadSanitizer the fibers read what the
// scheduler wrote without ordering anything else.
inline std::atomic<void *> current{nullptr};
inline std::atomic<unsigned> cur_tx{0}, cur_ty{0};
inline std::atomic<unsigned> g_bx{0}, g_by{0}, g_Bx{1}, g_By{1}, g_Gx{1}, g_Gy{1};
inline std::atomic<unsigned char *> g_dyn{nullptr};
inline uint3 thread_idx() { return uint3{cur_tx.load(std::memory_order_relaxed), cur_ty.load(std::memory_order_relaxed), 0}; }
inline uint3 block_idx() { return uint3{g_bx.load(std::memory_order_relaxed), g_by.load(std::memory_order_relaxed), 0}; }
inline uint3 block_dim() { return uint3{g_Bx.load(std::memory_order_relaxed), g_By.load(std::memory_order_relaxed), 1}; }
inline uint3 grid_dim() { return uint3{g_Gx.load(std::memory_order_relaxed), g_Gy.load(std::memory_order_relaxed), 1}; }
inline unsigned char *dynamic_shared() { return g_dyn.load(std::memory_order_relaxed); }
void syncthreads();
uint64_t warp_op(int op, unsigned mask, uint64_t bits, int size, int arg, int width);
// register_shared records a __shared__ variable (once per address; the
// runtime fills it with 0xff bytes before every later block).
void register_shared(void *p, size_t n, const char *name);

// Kernels: hostkern generates DSX_KERNEL(name) for every kernel of
// cudakernels.Kernels; the harness launches them by name with their
// arguments as 8-byte words (every kernel parameter is 8 bytes, as
// gorgonia.org/cu passes them: a parameter of another width does not
// compile here).
typedef void (*Invoker)(const uint64_t *args);
void register_kernel(const char *name, int nargs, Invoker f);
struct KernelReg {
    KernelReg(const char *name, int nargs, Invoker f) { register_kernel(name, nargs, f); }
};
template <typename T>
inline T from_bits(uint64_t b) {
    static_assert(sizeof(T) == 8, "a kernel parameter that is not 8 bytes wide");
    T v;
    memcpy(&v, &b, 8);
    return v;
}
template <typename... A, size_t... I>
inline void call(void (*f)(A...), const uint64_t *a, std::index_sequence<I...>) {
    f(from_bits<A>(a[I])...);
}
template <typename... A>
inline void invoke(void (*f)(A...), const uint64_t *a) {
    call(f, a, std::index_sequence_for<A...>{});
}
template <typename... A>
constexpr int arity(void (*)(A...)) {
    return (int)sizeof...(A);
}

template <typename T>
inline T shfl(int op, unsigned mask, T v, int arg, int width) {
    static_assert(sizeof(T) <= 8, "a warp exchange of more than 8 bytes");
    uint64_t bits = 0;
    memcpy(&bits, &v, sizeof(T));
    bits = warp_op(op, mask, bits, (int)sizeof(T), arg, width);
    T r;
    memcpy(&r, &bits, sizeof(T));
    return r;
}

}  // namespace dsx

#define threadIdx (::dsx::thread_idx())
#define blockIdx (::dsx::block_idx())
#define blockDim (::dsx::block_dim())
#define gridDim (::dsx::grid_dim())
#define warpSize 32
// A __shared__ declaration is rewritten by hostkern into static storage
// followed by DSX_SHARED_REG(name) for each name it declares; extern
// __shared__ arrays (dynamic shared memory) into a pointer to
// DSX_DYNAMIC_SHARED.
#define DSX_SHARED_REG(name) ::dsx::register_shared((void *)&(name), sizeof(name), #name)
#define DSX_DYNAMIC_SHARED (::dsx::dynamic_shared())
#define DSX_KERNEL(name)                                                                                 \
    static ::dsx::KernelReg name##_dsx_kernel_reg(#name, ::dsx::arity(&name),                              \
                                                  [](const uint64_t *a) { ::dsx::invoke(&name, a); });

inline void __syncthreads() { ::dsx::syncthreads(); }

template <typename T>
inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
    return ::dsx::shfl(::dsx::SHFL_IDX, mask, v, src, width);
}
template <typename T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    return ::dsx::shfl(::dsx::SHFL_DOWN, mask, v, (int)delta, width);
}
template <typename T>
inline T __shfl_xor_sync(unsigned mask, T v, int laneMask, int width = 32) {
    return ::dsx::shfl(::dsx::SHFL_XOR, mask, v, laneMask, width);
}
inline int __any_sync(unsigned mask, int pred) {
    return (int)::dsx::warp_op(::dsx::ANY, mask, pred != 0, 4, 0, 32);
}

inline int __double2hiint(double d) {
    uint64_t u;
    memcpy(&u, &d, 8);
    return (int)(uint32_t)(u >> 32);
}
inline int __double2loint(double d) {
    uint64_t u;
    memcpy(&u, &d, 8);
    return (int)(uint32_t)u;
}
inline double __hiloint2double(int hi, int lo) {
    uint64_t u = ((uint64_t)(uint32_t)hi << 32) | (uint32_t)lo;
    double d;
    memcpy(&d, &u, 8);
    return d;
}
inline unsigned int __float_as_uint(float f) {
    unsigned int u;
    memcpy(&u, &f, 4);
    return u;
}

// CUDA's min and max are overloaded for the integer types; the kernels call
// them on long long and int.
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline int min(int a, int b) { return a < b ? a : b; }
inline unsigned int min(unsigned int a, unsigned int b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }

#endif
