//go:build gpu

package main

import "dsx/dist/nccl"

// ncclStatus is the NCCL that data-parallel CUDA layers reduce with, or
// why there is none.
func ncclStatus() string {
	v, err := nccl.Load()
	if err != nil {
		return err.Error() + " (dW and db are reduced through host copies)"
	}
	return "NCCL " + v
}
