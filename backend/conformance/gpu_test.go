//go:build gpu

package conformance

// With -tags gpu, TestCUDA runs the suite on the CUDA backend.
import _ "dsx/backend/cuda"
