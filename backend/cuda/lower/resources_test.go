package lower

import (
	"testing"

	k "dsx/cudakernels"
)

// TestKernelResources: every kernel, launched with the largest block and
// shared memory the lowering gives it (MaxLaunch), fits an sm_90 block by
// ptxas's figures (cudakernels/resources.sm_90.txt, which make kernels
// regenerates): no spills, registers × threads ≤ 65,536, static plus
// dynamic shared memory ≤ 48 KiB, threads within __launch_bounds__. Every
// kernel launched with 1,024 threads declares __launch_bounds__(1024).
func TestKernelResources(t *testing.T) {
	rs, err := k.KernelResources()
	if err != nil {
		t.Fatal(err)
	}
	for _, kk := range k.Kernels {
		r, ok := rs[kk.Name]
		if !ok {
			t.Errorf("%s: no ptxas figures in resources.sm_90.txt", kk.Name)
			continue
		}
		if r.SpillStores != 0 || r.SpillLoads != 0 {
			t.Errorf("%s spills: %d bytes stored, %d loaded (ptxas -arch=sm_90)", kk.Name, r.SpillStores, r.SpillLoads)
		}
		threads, shmem, ok := MaxLaunch(kk.Name)
		if !ok {
			t.Errorf("%s: no step launches it (MaxLaunch)", kk.Name)
			continue
		}
		if err := k.CheckLaunch(kk.Name, threads, shmem); err != nil {
			t.Errorf("launched by the lowering with %d threads and %d bytes of dynamic shared memory: %v", threads, shmem, err)
		}
		if threads == 1024 && k.MaxThreads(kk.Name) != 1024 {
			t.Errorf("%s is launched with 1,024 threads without __launch_bounds__(1024)", kk.Name)
		}
		t.Logf("%-18s %4d threads %6d B dynamic shared: %3d registers (%5d a block), %4d B static shared", kk.Name, threads, shmem, r.Registers, r.Registers*threads, r.SharedBytes)
	}
}
