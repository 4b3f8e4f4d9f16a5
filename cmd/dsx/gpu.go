//go:build gpu

package main

// The gpu build (dsx-gpu) links the CUDA backend; see device.go for how the
// pure-Go dsx hands over to it.
import _ "dsx/backend/cuda"
