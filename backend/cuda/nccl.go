//go:build gpu

package cuda

import (
	"fmt"
	"os"

	"dsx/backend/cuda/run"
	"dsx/cudakernels"
	"dsx/dist"
	"dsx/dist/nccl"
)

// EnvNCCL set to "off" makes data-parallel layers reduce dW and db through
// host copies over the job's communicator instead of NCCL.
const EnvNCCL = "DSX_NCCL"

// Reducer is NCCL over comm (run.Collectives) when libnccl.so.2 loads and
// this process's GPU is its local rank's; else nil and why.
func (gpu) Reducer(comm dist.Comm) (run.Reducer, string) {
	if os.Getenv(EnvNCCL) == "off" {
		return nil, EnvNCCL + "=off"
	}
	v, err := nccl.Load()
	if err != nil {
		return nil, err.Error()
	}
	if device.ord != comm.LocalRank() {
		return nil, fmt.Sprintf("GPU %d serves local rank %d: NCCL needs each rank on the GPU of its local rank", device.ord, comm.LocalRank())
	}
	return &ncclReducer{world: comm, version: v}, ""
}

// ncclReducer all-reduces device buffers with NCCL on the default stream,
// where the layer's kernels and cuBLAS run: the all-reduce starts after
// backward's last kernel and the optimizer's kernels after it, without the
// host waiting in between.
type ncclReducer struct {
	world   dist.Comm
	version string
	c       *nccl.Comm
}

func (r *ncclReducer) Name() string { return fmt.Sprintf("NCCL %s on the device", r.version) }

// Init broadcasts rank 0's id over the job's communicator, then joins the
// NCCL communicator with this process's GPU current.
func (r *ncclReducer) Init() error {
	id, err := nccl.UniqueID(r.world)
	if err != nil {
		return err
	}
	return onDevice(func() error {
		r.c, err = nccl.InitRank(id, r.world.Size(), r.world.Rank())
		return err
	})
}

func (r *ncclReducer) AllReduce(p cudakernels.Ptr, n int, f32 bool) error {
	return r.c.AllReduce(uintptr(p), n, f32, 0)
}
