package conformance

import (
	"testing"

	_ "dsx/cpu"
)

// One line per backend. Backends not in this build or not usable here skip
// with the reason (the cuda backend is compiled in only with -tags gpu; see
// gpu_test.go).
func TestCPU(t *testing.T)  { Run(t, "cpu") }
func TestCUDA(t *testing.T) { Run(t, "cuda") }
