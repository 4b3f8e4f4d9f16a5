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
}

func i64s(b []byte) []int64 {
	return unsafe.Slice((*int64)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/8)
}

// TestShimExchange: the shim's warp exchanges, barrier and indices
// (cudakernels/host/selftest.cu's shim_exchange) on blocks of 64×1 and
// 32×2 threads, two blocks, in thread order and reversed.
func TestShimExchange(t *testing.T) {
	need(t)
	for _, bl := range [][2]int{{64, 1}, {32, 2}} {
		for _, reverse := range []bool{false, true} {
			n := bl[0] * bl[1]
			a, err := NewArena([]int64{int64(2*n) * 8 * 8})
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Launch("shim_exchange", lower.Dims{GridX: 2, GridY: 1, BlockX: bl[0], BlockY: bl[1]}, &struct{ Out k.Ptr }{a.Addr(0)}, reverse); err != nil {
				t.Fatal(err)
			}
			out := i64s(a.Buf(0))
			for b := 0; b < 2; b++ {
				for tid := 0; tid < n; tid++ {
					lane := int64(tid % 32)
					down := lane + 3
					if down >= 32 {
						down = lane
					}
					want := []int64{lane ^ 5, down, 7, 1, int64(n * (n - 1) / 2), int64(tid % bl[0]), int64(tid / bl[0]), int64(b)}
					got := out[(b*n+tid)*8 : (b*n+tid)*8+8]
					for i := range want {
						if got[i] != want[i] {
							t.Fatalf("block %v reverse=%v, block %d thread %d: %v, want %v", bl, reverse, b, tid, got, want)
						}
					}
				}
			}
			a.Close()
		}
	}
}

// TestShimErrors: a launch that cannot finish, or reads what no thread
// wrote, says so: half a warp at __syncthreads and half at a shuffle is a
// deadlock; a full-mask shuffle after a lane exited is an error; shared
// memory not yet written is NaN.
func TestShimErrors(t *testing.T) {
	need(t)
	a, err := NewArena([]int64{64 * 8})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	d := lower.Dims{GridX: 1, GridY: 1, BlockX: 64, BlockY: 1}
	out := &struct{ Out k.Ptr }{a.Addr(0)}
	if err := a.Launch("shim_divergent", d, out, false); err == nil || !strings.Contains(err.Error(), "deadlock") {
		t.Errorf("divergent barrier: %v", err)
	}
	if err := a.Launch("shim_exited", d, out, false); err == nil || !strings.Contains(err.Error(), "lane 3 of its mask has exited") {
		t.Errorf("a shuffle after a lane exited: %v", err)
	}
	for i := 0; i < 2; i++ { // the variable's first launch and a later one
		if err := a.Launch("shim_uninit", d, out, false); err != nil {
			t.Fatal(err)
		}
		if v := math.Float64frombits(uint64(i64s(a.Buf(0))[0])); !math.IsNaN(v) {
			t.Errorf("launch %d: shared memory read before it was written is %v, want NaN", i, v)
		}
	}
}
