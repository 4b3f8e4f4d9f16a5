// selftest.cu — kernels that test the shim itself (cudashim.h, harness.cc),
// compiled into the harness beside cudakernels' modules and launched by
// hostkern's TestShim*; never part of the GPU build.

// shim_exchange: out[tid·8 + k] for a block of whole warps: k = 0..3 the
// lane read by __shfl_xor_sync (mask 5), __shfl_down_sync (3),
// __shfl_sync (lane 7) and __any_sync (lane 9 only); k = 4 the block's sum
// of threadIdx.x through shared memory and __syncthreads; k = 5, 6 threadIdx,
// k = 7 blockIdx.x.
extern "C" __global__ void shim_exchange(long long *out) {
    __shared__ long long sum[32];
    const unsigned full = 0xffffffffu;
    const int tid = threadIdx.x + threadIdx.y * blockDim.x, lane = tid & 31, w = tid >> 5;
    long long *o = out + ((long long)blockIdx.x * blockDim.x * blockDim.y + tid) * 8;
    o[0] = __shfl_xor_sync(full, (long long)lane, 5);
    o[1] = __shfl_down_sync(full, (long long)lane, 3);
    o[2] = __shfl_sync(full, (long long)lane, 7);
    o[3] = __any_sync(full, lane == 9);
    long long s = tid;
    for (int off = 16; off > 0; off >>= 1) s += __shfl_down_sync(full, s, off);
    if (lane == 0) sum[w] = s;
    __syncthreads();
    long long t = 0;
    for (int i = 0; i < (int)(blockDim.x * blockDim.y) / 32; i++) t += sum[i];
    o[4] = t;
    o[5] = threadIdx.x;
    o[6] = threadIdx.y;
    o[7] = blockIdx.x;
}

// shim_divergent: half a warp waits at __syncthreads, the other half at a
// shuffle: a deadlock the harness must name.
extern "C" __global__ void shim_divergent(long long *out) {
    if ((threadIdx.x & 31) < 16) {
        __syncthreads();
    } else {
        out[threadIdx.x] = __shfl_sync(0xffffffffu, (long long)threadIdx.x, 0);
    }
}

// shim_exited: lane 3 returns, the others shuffle with a full mask.
extern "C" __global__ void shim_exited(long long *out) {
    if (threadIdx.x == 3) return;
    out[threadIdx.x] = __shfl_sync(0xffffffffu, (long long)threadIdx.x, 0);
}

// shim_uninit: thread 0 reads another warp's shared slot before anyone
// wrote it (no barrier): NaN, as fresh shared memory is.
extern "C" __global__ void shim_uninit(double *out) {
    __shared__ double slot[2];
    if (threadIdx.x == 32) slot[1] = 1.0;
    if (threadIdx.x == 0) out[0] = slot[1];
}
