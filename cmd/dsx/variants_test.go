package main

import (
	"strings"
	"testing"

	"dsx/backend"
	"dsx/backend/cuda/lower"
)

// fakeGPU is a backend that declares what the CUDA backend does and has
// device memory of its own, for deviceVariants.
type fakeGPU struct{ backend.Backend }

func (fakeGPU) Name() string                       { return "gpu" }
func (fakeGPU) Capabilities() backend.Capabilities { return lower.Capabilities() }
func (fakeGPU) Devices() ([]backend.Device, error) {
	return []backend.Device{{Name: "g", MemoryBytes: 1 << 30}}, nil
}

// TestDeviceVariants: the variants a device runs come from its declaration:
// by default every declared softmax-cross-entropy, and chunked on a device
// with memory of its own; asked-for variants it does not declare are kept
// (their rows are skipped, saying why) with a note.
func TestDeviceVariants(t *testing.T) {
	cpuBe, err := backend.Get("cpu")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		be    backend.Backend
		asked []string
		want  string
		note  string
	}{
		{cpuBe, nil, "graph", ""},
		{fakeGPU{}, nil, "fused,unfused,chunked", ""},
		{cpuBe, []string{"fused", "unfused"}, "graph,unfused", "cpu runs variant fused as graph"},
		{fakeGPU{}, []string{"graph", "fused"}, "graph,fused", "gpu has no variant graph"},
	} {
		vs, note := deviceVariants(c.be, c.asked)
		if strings.Join(vs, ",") != c.want || !strings.Contains(note, c.note) {
			t.Errorf("%s %v: variants %v, note %q; want %s and a note with %q", c.be.Name(), c.asked, vs, note, c.want, c.note)
		}
	}
	var cfg backend.Config
	if skip := variantConfig(&cfg, cpuBe.Capabilities(), "cpu", "unfused", benchOpts{}); !strings.Contains(skip, "declares no unfused") {
		t.Errorf("unfused on the cpu: skip %q", skip)
	}
	cfg = backend.Config{MatMode: backend.TF32}
	if skip := variantConfig(&cfg, cpuBe.Capabilities(), "cpu", "graph", benchOpts{}); !strings.Contains(skip, "declares no matmul mode tf32") {
		t.Errorf("tf32 on the cpu: skip %q", skip)
	}
}
