//go:build !gpu

package main

// ncclStatus: NCCL is the gpu build's (dsx-gpu, which dsx hands a GPU run
// over to).
func ncclStatus() string { return "in the GPU build only (dsx-gpu loads libnccl.so.2)" }
