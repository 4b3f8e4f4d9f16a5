//go:build gpu

package cuda

import (
	"fmt"
	"hash/fnv"
	"os"

	"dsx/backend/cuda/run"
	"dsx/cudakernels"
	"dsx/dist"
	"dsx/dist/nccl"

	"gorgonia.org/cu"
)

// EnvNCCL set to "off" makes data-parallel layers reduce dW and db through
// host copies over the job's communicator instead of NCCL.
const EnvNCCL = "DSX_NCCL"

// Reducer is NCCL over comm (run.Collectives) when libnccl.so.2 loads;
// else nil and why. (Ranks that share a GPU, which NCCL refuses, are found
// by the run layer from every rank's Device.)
func (gpu) Reducer(comm dist.Comm) (run.Reducer, string) {
	if os.Getenv(EnvNCCL) == "off" {
		return nil, EnvNCCL + "=off"
	}
	v, err := nccl.Load()
	if err != nil {
		return nil, err.Error()
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

// Device is a hash of the host's name and the GPU's PCI domain, bus and
// device: the same GPU, whatever ordinal CUDA_VISIBLE_DEVICES gives it.
func (r *ncclReducer) Device() uint64 {
	h := fnv.New64a()
	host, _ := os.Hostname()
	h.Write([]byte(host))
	pci, err := device.dev.Attributes(cu.PciDomainID, cu.PciBusID, cu.PciDeviceID)
	if err != nil {
		pci = []int{-1, device.ord} // the ordinal, in this process's view
	}
	fmt.Fprint(h, pci)
	return h.Sum64()
}

func (r *ncclReducer) AllReduce(p cudakernels.Ptr, n int, f32 bool) error {
	return r.c.AllReduce(uintptr(p), n, f32, 0)
}
