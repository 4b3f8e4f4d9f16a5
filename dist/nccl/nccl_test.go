//go:build gpu && cgo

package nccl

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"dsx/dist/disttest"
)

// TestBinding runs the binding against testdata/fakenccl.c, built here
// with the C compiler, as libnccl.so.2: versions, the unique id through a
// broadcast and ncclCommInitRank's by-value argument, and in-place
// all-reduces of float32 and float64 with their datatype codes.
func TestBinding(t *testing.T) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler (cc) to build the stand-in libnccl.so.2")
	}
	lib := filepath.Join(t.TempDir(), "libnccl.so.2")
	if out, err := exec.Command(cc, "-shared", "-fPIC", "-o", lib, "testdata/fakenccl.c").CombinedOutput(); err != nil {
		t.Fatalf("building the stand-in: %v\n%s", err, out)
	}
	os.Setenv(EnvLib, lib)
	v, err := Load()
	if err != nil || v != "2.19.3" {
		t.Fatalf("Load: %q, %v; want 2.19.3", v, err)
	}
	const P = 3
	world := disttest.World(P)
	comms := make([]*Comm, P)
	errs := make([]error, P)
	var wg sync.WaitGroup
	for r := range P {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := UniqueID(world[r])
			if err != nil {
				errs[r] = err
				return
			}
			comms[r], errs[r] = InitRank(id, P, r)
		}()
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	f := []float32{1, 2, 3}
	if err := comms[1].AllReduce(uintptr(unsafePointer(f)), len(f), true, 0); err != nil || f[0] != 3 || f[2] != 9 {
		t.Fatalf("float32 all-reduce: %v, %v", f, err)
	}
	d := []float64{0.5, -1}
	if err := comms[2].AllReduce(uintptr(unsafePointer(d)), len(d), false, 0); err != nil || d[0] != 1.5 || d[1] != -3 {
		t.Fatalf("float64 all-reduce: %v, %v", d, err)
	}
	if _, err := InitRank([IDBytes]byte{1}, P, 0); err == nil {
		t.Fatal("InitRank with an id rank 0 did not make: no error")
	} else if want := "invalid argument"; !strings.Contains(err.Error(), want) {
		t.Fatalf("InitRank error %q, want it to say %q", err, want)
	}
	for _, c := range comms {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestVersionString(t *testing.T) {
	for v, want := range map[int]string{2708: "2.7.8", 21903: "2.19.3", 22304: "2.23.4"} {
		if got := versionString(v); got != want {
			t.Errorf("versionString(%d) = %s, want %s", v, got, want)
		}
	}
}

func unsafePointer[F float32 | float64](s []F) unsafe.Pointer {
	return unsafe.Pointer(unsafe.SliceData(s))
}
