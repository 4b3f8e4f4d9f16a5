//go:build gpu

package cuda

// Tests of the CUDA backend. They need a GPU: a gpu test binary does not
// load without libcuda.so.1, and gorgonia.org/cu exits at init when cuInit
// fails; with a driver and a device that cannot be used, they skip with the
// reason. The interface-level tests are package cudatest's, shared with the
// emulated device (package emu), which runs them in make test.

import (
	"errors"
	"strings"
	"testing"

	"dsx/backend"
	"dsx/backend/cuda/cudatest"
	"dsx/backend/cuda/lower"
	_ "dsx/cpu"
	"dsx/graph"
	"dsx/internal/dense"

	"gorgonia.org/cu"
	"gorgonia.org/tensor"
)

func requireGPU(t *testing.T) {
	t.Helper()
	if err := setup(); err != nil {
		t.Skipf("no usable GPU: %v", err)
	}
}

func TestParity(t *testing.T)           { requireGPU(t); cudatest.Parity(t, "cuda") }
func TestStepParity(t *testing.T)       { requireGPU(t); cudatest.StepParity(t, "cuda") }
func TestTrainAccuracy(t *testing.T)    { requireGPU(t); cudatest.TrainAccuracy(t, "cuda") }
func TestVariants(t *testing.T)         { requireGPU(t); cudatest.Variants(t, "cuda") }
func TestResidentAndStats(t *testing.T) { requireGPU(t); cudatest.ResidentAndStats(t, "cuda") }
func TestBF16Storage(t *testing.T)      { requireGPU(t); cudatest.BF16Storage(t, "cuda") }
func TestDeterministic(t *testing.T)    { requireGPU(t); cudatest.Deterministic(t, "cuda") }
func TestVocabTiles(t *testing.T)       { requireGPU(t); cudatest.VocabTiles(t, "cuda") }

// TestDataParallelOne: one rank through NCCL (where libnccl.so.2 loads;
// NCCL refuses two ranks on one GPU) steps as the one-process layer does.
func TestDataParallelOne(t *testing.T) { requireGPU(t); cudatest.DataParallelOne(t, "cuda") }

// TestOutOfMemory: asking for more than the device has is a clear error
// (memory.alloc is what Open uses; graph.Build would need the same W on the
// host, so a whole layer that large is not opened here).
func TestOutOfMemory(t *testing.T) {
	requireGPU(t)
	err := onDevice(func() error {
		m, err := gpu{}.Alloc([]*lower.Buffer{{What: "W", Bytes: 1 << 40}}, "layer B×N×T = 8×1048576×131072 float64")
		if err == nil {
			m.Free()
		}
		return err
	})
	if !errors.Is(err, backend.ErrOutOfMemory) || !strings.Contains(err.Error(), "asked for 1024.00 GiB") || !strings.Contains(err.Error(), "free") {
		t.Fatalf("got %v, want ErrOutOfMemory saying how much was asked and is free", err)
	}
	t.Log(err)
}

// TestMemory: steps allocate no device memory; Close frees it all and is
// idempotent.
func TestMemory(t *testing.T) {
	requireGPU(t)
	freeNow := func() int64 {
		var f int64
		if err := onDevice(func() error {
			var err error
			f, _, err = cu.MemInfo()
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return f
	}
	const B, N, T = 256, 784, 8003
	cfg := backend.Config{Spec: graph.Spec{B: B, N: N, T: T, DType: tensor.Float32, Want: graph.Want{DW: true, DB: true, DX: true}},
		Optimizer: backend.Optimizer{Kind: backend.Adam, LR: 1e-3}}
	b, _ := backend.Get("cuda")
	p := cudatest.NewProblem(1, B, N, T, graph.LossOptions{}, "mem")
	x, tg := dense.New(tensor.Float32, p.X, B, N), dense.New(tensor.Float32, p.Tg, B)
	// A first layer warms cuBLAS up (its workspace stays with the handle).
	warm, err := b.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := warm.Step(x, tg); err != nil {
		t.Fatal(err)
	}
	warm.Close()
	before := freeNow()
	l, err := b.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Step(x, tg); err != nil {
		t.Fatal(err)
	}
	opened := freeNow()
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := l.Step(x, tg); err != nil {
			t.Fatal(err)
		}
	})
	if after := freeNow(); after != opened {
		t.Errorf("device memory free changed across steps: %d → %d bytes", opened, after)
	}
	t.Logf("layer %d×%d×%d: %s of device memory; %.0f Go allocations per step", B, N, T, human(before-opened), allocs)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if after := freeNow(); after < before {
		t.Errorf("Close left %d bytes allocated", before-after)
	}
	if _, err := l.Step(x, tg); err == nil {
		t.Error("Step after Close succeeded")
	}
}

// TestDevices lists the GPUs.
func TestDevices(t *testing.T) {
	requireGPU(t)
	ds, err := Backend{}.Devices()
	if err != nil || len(ds) == 0 {
		t.Fatalf("devices %v, %v", ds, err)
	}
	for _, d := range ds {
		t.Logf("%+v", d)
		if d.Name == "" || d.MemoryBytes == 0 || d.Compute == "" || d.Driver == "" {
			t.Errorf("incomplete device %+v", d)
		}
	}
}
