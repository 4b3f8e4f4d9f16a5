package hostkern

import (
	"math"
	"strings"
	"testing"
	"unsafe"

	"dsx/backend/cuda/lower"
	k "dsx/cudakernels"
)

// need skips a test without the host kernels (or fails it under
// DSX_REQUIRE_HOSTKERNELS=1).
func need(t *testing.T) {
	t.Helper()
	if err := Available(); err != nil {
		if Required() {
			t.Fatalf("DSX_REQUIRE_HOSTKERNELS=1: %v", err)
		}
		t.Skipf("skipped: %v", err)
	}
}

func f32s(b []byte) []float32 {
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/4)
}

// TestLaunch: bias_add_f32 compiled for the host adds b to each row of z
// over a 2-D grid, and a launch whose rows run past z faults with the
// buffer and byte named.
func TestLaunch(t *testing.T) {
	need(t)
	const rows, T = 5, 300
	a, err := NewArena([]int64{rows * T * 4, T * 4})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	z, b := f32s(a.Buf(0)), f32s(a.Buf(1))
	for i := range z {
		z[i] = float32(i)
	}
	for i := range b {
		b[i] = float32(i) / 2
	}
	args := &k.BiasAdd{Z: a.Addr(0), Ld: T, B: a.Addr(1), Rows: rows, T: T}
	if err := a.Launch("bias_add_f32", lower.Dims{GridX: 2, GridY: 3, BlockX: 64, BlockY: 1}, args, false); err != nil {
		t.Fatal(err)
	}
	for r := 0; r < rows; r++ {
		for c := 0; c < T; c++ {
			if want := float32(r*T+c) + float32(c)/2; z[r*T+c] != want {
				t.Fatalf("z[%d, %d] = %v, want %v", r, c, z[r*T+c], want)
			}
		}
	}
	args.Rows = rows + 1
	err = a.Launch("bias_add_f32", lower.Dims{GridX: 2, GridY: 3, BlockX: 64, BlockY: 1}, args, false)
	if err == nil || !strings.Contains(err.Error(), "byte 6000 of buffer 0, which has 6000 bytes") {
		t.Fatalf("a row past z: %v", err)
	}
	if err := a.Launch("bias_add_f32", lower.Dims{GridX: 1, GridY: 1, BlockX: 32, BlockY: 1}, args, false); err == nil {
		t.Fatal("a launch after the harness died succeeded")
	}
	_ = math.NaN
}
