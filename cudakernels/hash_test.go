package cudakernels

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKernelsUpToDate fails when a .cu source (or a .cuh header) differs from the one the
// embedded PTX was generated from: run `make kernels`.
func TestKernelsUpToDate(t *testing.T) {
	recorded := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(Hashes()), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			t.Fatalf("kernels.sha256: bad line %q", line)
		}
		recorded[strings.TrimPrefix(f[1], "*")] = f[0]
	}
	sources, err := filepath.Glob("*.cu")
	if err != nil {
		t.Fatal(err)
	}
	headers, _ := filepath.Glob("*.cuh")
	sources = append(sources, headers...)
	if len(sources) == 0 {
		t.Fatal("no .cu sources")
	}
	for _, src := range sources {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		got := hex.EncodeToString(sum[:])
		want, ok := recorded[src]
		switch {
		case !ok:
			t.Errorf("%s has no PTX recorded in kernels.sha256: run `make kernels`", src)
		case got != want:
			t.Errorf("%s changed since its PTX was generated (sha256 %s, recorded %s): run `make kernels`", src, got[:12], want[:12])
		}
		delete(recorded, src)
	}
	for src := range recorded {
		t.Errorf("kernels.sha256 lists %s, which no longer exists: run `make kernels`", src)
	}
	for _, m := range Modules {
		ptx, err := PTX(m)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(ptx, ".version 7.8") || !strings.Contains(ptx, ".target sm_52") {
			t.Errorf("%s.ptx is not nvcc 11.8's PTX for compute_52 (drivers ≥ 520 must load it)", m)
		}
	}
}
