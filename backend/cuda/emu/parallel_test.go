package emu

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"dsx/backend"
	"dsx/backend/cuda/run"
	"dsx/backend/kit"
	k "dsx/cudakernels"
	"dsx/dist"
	"dsx/dist/disttest"
	"dsx/graph"
	dn "dsx/internal/dense"

	"gorgonia.org/tensor"
)

// collectiveDevice is the emulator with run.Collectives, as the GPU has
// with NCCL: its reducer all-reduces the device memory it is given (here
// through the world's host all-reduce, so the sums are the host path's) and
// says which device it is.
type collectiveDevice struct {
	*Device
	key   uint64
	inits *int
}

func (d collectiveDevice) Reducer(c dist.Comm) (run.Reducer, string) {
	return &fakeReducer{d: d.Device, c: c, key: d.key, inits: d.inits}, ""
}

type fakeReducer struct {
	d     *Device
	c     dist.Comm
	key   uint64
	inits *int
}

func (r *fakeReducer) Init() error    { *r.inits++; return nil }
func (r *fakeReducer) Name() string   { return "the emulator's own reducer" }
func (r *fakeReducer) Device() uint64 { return r.key }
func (r *fakeReducer) AllReduce(p k.Ptr, n int, f32 bool) error {
	es := 8
	if f32 {
		es = 4
	}
	b, err := r.d.mem.view(p, int64(n*es))
	if err != nil {
		return err
	}
	if f32 {
		return r.c.AllReduceF32(unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n))
	}
	return r.c.AllReduceF64(unsafe.Slice((*float64)(unsafe.Pointer(&b[0])), n))
}

// TestCollectives: a device whose reducer every rank has, on distinct
// devices, reduces dW and db itself (initialised once), bit for bit as the
// host copies do; ranks that share a device all fall back to host copies,
// saying which.
func TestCollectives(t *testing.T) {
	const P, B, N, T = 3, 7, 4, 5
	p := struct{ x, y, w, b []float64 }{make([]float64, B*N), make([]float64, B), make([]float64, N*T), make([]float64, T)}
	for i := range p.x {
		p.x[i] = float64(i%7) - 3
	}
	for i := range p.y {
		p.y[i] = float64(i % T)
	}
	for i := range p.w {
		p.w[i] = float64(i%5)/10 - 0.2
	}
	// steps runs 3 steps of P ranks, rank r's device made by dev(r), and
	// returns rank 0's W and how its layer reduced.
	steps := func(dev func(r int) run.Device) ([]float64, string) {
		world := disttest.World(P)
		out, how := make([][]float64, P), make([]string, P)
		err := disttest.Each(P, func(r int) error {
			cfg := backend.Config{Spec: graph.Spec{B: 3, N: N, T: T, DType: tensor.Float32, Want: graph.Want{DW: true, DB: true}},
				Optimizer: backend.Optimizer{Kind: backend.SGD, LR: 0.1}, Comm: world[r]}
			l, err := run.Open(dev(r), Name, cfg)
			if err != nil {
				return err
			}
			defer l.Close()
			if err := l.SetParams(dn.New(tensor.Float32, p.w, N, T), dn.New(tensor.Float32, p.b, T)); err != nil {
				return err
			}
			lo, hi := dist.Share(B, r, P)
			for range 3 {
				if _, err := l.Step(dn.New(tensor.Float32, p.x[lo*N:hi*N], hi-lo, N), dn.New(tensor.Float32, p.y[lo:hi], hi-lo)); err != nil {
					return err
				}
			}
			w, _, _ := l.Params()
			out[r], how[r] = dn.F64(w), l.(kit.Parallel).Ranks().Stats().How
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out[0], how[0]
	}
	host, how := steps(func(int) run.Device { return &Device{} })
	if !strings.HasPrefix(how, "host copies over disttest") {
		t.Fatalf("the plain emulator reduced by %q", how)
	}
	inits := make([]int, P)
	own, how := steps(func(r int) run.Device { return collectiveDevice{&Device{}, uint64(r + 1), &inits[r]} })
	if how != "the emulator's own reducer" || !slices.Equal(inits, []int{1, 1, 1}) {
		t.Errorf("distinct devices: reduced by %q, initialised %v times", how, inits)
	}
	if !slices.Equal(own, host) {
		t.Error("the device's reducer gave other parameters than the host copies")
	}
	shared, how := steps(func(r int) run.Device { return collectiveDevice{&Device{}, uint64(r % 2), new(int)} })
	if want := fmt.Sprintf("ranks %d and %d share a GPU", 0, 2); !strings.Contains(how, want) || !slices.Equal(shared, host) {
		t.Errorf("shared devices: reduced by %q, want host copies saying %q", how, want)
	}
}
