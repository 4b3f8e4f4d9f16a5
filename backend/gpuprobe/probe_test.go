package gpuprobe

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fake writes an executable dsx-gpu shell script into dir.
func fake(t *testing.T, dir, script string) string {
	t.Helper()
	p := filepath.Join(dir, "dsx-gpu")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// withLibcuda makes haveLibcuda find a (fake) libcuda.so.1 through
// LD_LIBRARY_PATH, so that the probe goes on to run the fake binary.
func withLibcuda(t *testing.T) {
	t.Helper()
	lib := t.TempDir()
	if err := os.WriteFile(filepath.Join(lib, "libcuda.so.1"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LD_LIBRARY_PATH", lib)
}

func probe(t *testing.T, self string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return Probe(ctx, self)
}

func TestNotFound(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvBinary, "")
	t.Setenv("PATH", t.TempDir())
	r := probe(t, filepath.Join(dir, "dsx"))
	if r.Binary != "" || !strings.Contains(r.Reason, "dsx-gpu") || !strings.Contains(r.Reason, "make build-gpu") {
		t.Fatalf("got %+v, want a reason naming dsx-gpu and make build-gpu", r)
	}
}

func TestEnvBinaryMissing(t *testing.T) {
	t.Setenv(EnvBinary, filepath.Join(t.TempDir(), "nope"))
	r := probe(t, "")
	if !strings.Contains(r.Reason, EnvBinary) {
		t.Fatalf("got %+v, want a reason naming %s", r, EnvBinary)
	}
}

func TestNoLibcuda(t *testing.T) {
	t.Setenv("LD_LIBRARY_PATH", "")
	if haveLibcuda() {
		t.Skip("this machine has libcuda.so.1")
	}
	dir := t.TempDir()
	t.Setenv(EnvBinary, "")
	fake(t, dir, "echo should not run >&2; exit 3")
	r := probe(t, filepath.Join(dir, "dsx"))
	if !strings.Contains(r.Reason, "libcuda.so.1") {
		t.Fatalf("got %+v, want a reason about libcuda.so.1", r)
	}
}

// TestDriverNoDevice: gorgonia.org/cu's init prints its error and exits 1
// when cuInit fails (a driver but no device).
func TestDriverNoDevice(t *testing.T) {
	withLibcuda(t)
	dir := t.TempDir()
	t.Setenv(EnvBinary, "")
	fake(t, dir, `echo 'Error in initialization, please refer to "..." for details on: NoDevice' >&2; exit 1`)
	r := probe(t, filepath.Join(dir, "dsx"))
	if r.Binary == "" || r.Devices != nil || !strings.Contains(r.Reason, "driver present") || !strings.Contains(r.Reason, "NoDevice") {
		t.Fatalf("got %+v, want the driver-but-no-device reason with cu's message", r)
	}
}

func TestDevices(t *testing.T) {
	withLibcuda(t)
	dir := t.TempDir()
	t.Setenv(EnvBinary, "")
	fake(t, dir, `[ "$1 $2" = "devices --json" ] || exit 9
cat <<'JSON'
{"backends":[{"name":"cpu","available":true,"devices":[{"name":"CPU"}]},
 {"name":"cuda","available":true,"devices":[{"name":"NVIDIA H100 80GB HBM3","memory_bytes":85045183488,"compute_capability":"9.0","driver":"CUDA 13.0"}]}]}
JSON`)
	r := probe(t, filepath.Join(dir, "dsx"))
	if r.Reason != "" || len(r.Devices) != 1 || r.Devices[0].Name != "NVIDIA H100 80GB HBM3" || r.Devices[0].Compute != "9.0" || r.Devices[0].MemoryBytes != 85045183488 {
		t.Fatalf("got %+v, want one H100", r)
	}
	if r.Binary != filepath.Join(dir, "dsx-gpu") {
		t.Errorf("binary %q", r.Binary)
	}
}

func TestCUDAUnavailable(t *testing.T) {
	withLibcuda(t)
	dir := t.TempDir()
	t.Setenv(EnvBinary, "")
	fake(t, dir, `echo '{"backends":[{"name":"cuda","available":false,"reason":"cuda: backend unavailable: the driver sees no GPU"}]}'`)
	r := probe(t, filepath.Join(dir, "dsx"))
	if !strings.Contains(r.Reason, "sees no GPU") {
		t.Fatalf("got %+v", r)
	}
}

func TestGarbage(t *testing.T) {
	withLibcuda(t)
	dir := t.TempDir()
	t.Setenv(EnvBinary, "")
	fake(t, dir, `echo not json`)
	if r := probe(t, filepath.Join(dir, "dsx")); !strings.Contains(r.Reason, "unreadable") {
		t.Fatalf("got %+v", r)
	}
}

func TestEnvBinaryAndTimeout(t *testing.T) {
	withLibcuda(t)
	bin := fake(t, t.TempDir(), "exec sleep 20")
	t.Setenv(EnvBinary, bin)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	r := Probe(ctx, "/nowhere/dsx")
	if r.Binary != bin || !strings.Contains(r.Reason, "in time") {
		t.Fatalf("got %+v, want a timeout reason", r)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("probe took %v", d)
	}
}
