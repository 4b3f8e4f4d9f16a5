package cudakernels

import (
	"embed"
	"fmt"
	"io/fs"
)

//go:embed *.ptx kernels.sha256 resources.sm_90.txt
var files embed.FS

//go:embed *.cu *.cuh host/cudashim.h host/harness.cc host/selftest.cu
var sources embed.FS

// Sources is the CUDA C sources and headers (NAME.cu, NAME.cuh) and, under
// host/, the CUDA-semantics shim and harness that compile them for the host
// (package dsx/backend/cuda/hostkern), as the module holds them.
func Sources() fs.FS { return sources }

// Modules lists the kernel modules: each has a NAME.cu source and NAME.ptx.
var Modules = []string{"bias", "optim", "unfused", "xent", "xvocab"}

// PTX returns the embedded PTX of module name ("xent", "bias", "optim").
func PTX(name string) (string, error) {
	b, err := files.ReadFile(name + ".ptx")
	if err != nil {
		return "", fmt.Errorf("cudakernels: no PTX for module %q: %w", name, err)
	}
	return string(b), nil
}

// Hashes returns kernels.sha256: the SHA-256 of each .cu source when its PTX
// was generated, in sha256sum's format.
func Hashes() string {
	b, _ := files.ReadFile("kernels.sha256")
	return string(b)
}
