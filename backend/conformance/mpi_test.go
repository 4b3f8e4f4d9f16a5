package conformance

// The data-parallel layers as the ranks of real MPI jobs (Open MPI's
// mpirun, 2 and 3 ranks, shared memory and TCP), each rank a process of
// this test binary (package mpitest), against the one-process layer.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"dsx/backend"
	"dsx/dist"
	"dsx/dist/mpitest"
	"dsx/graph"
	"dsx/internal/dense"
	"dsx/internal/tol"

	"gorgonia.org/tensor"
)

// trajectory is a layer's losses and parameters (W then b) after each of
// parallelBatches.
type trajectory struct {
	Losses []float64
	Params [][]float64
}

// mpiBackends are the backends stepped under MPI: the CPU, and the CUDA
// backend's lowering and runtime on the emulator (dW and db through host
// copies, as on a GPU without NCCL).
var mpiBackends = []string{"cpu", "cuda-emu"}

// mpiCases calls f for every backend, dtype, loss case and optimizer of
// the MPI tests, with a key that names them.
func mpiCases(f func(key string, s *suite, p problem, o backend.Optimizer) error) error {
	for _, name := range mpiBackends {
		b, err := backend.Get(name)
		if err != nil {
			return err
		}
		for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
			s := &suite{b: b, dt: dt, caps: b.Capabilities()}
			for _, c := range parallelCases {
				for _, o := range parallelOptimizers {
					if err := f(fmt.Sprintf("%s/%v/%s/%v", name, dt, c.name, o.Kind), s, random(31, 7, 4, 5, c.o), o); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// steps runs l (rank r of P) through parallelBatches.
func (s *suite) steps(l backend.Layer, p problem, r, P int) (trajectory, error) {
	var tr trajectory
	for step, rows := range parallelBatches {
		x, y := share(s.dt, p, rows, r, P)
		loss, err := l.Step(x, y)
		if err != nil {
			return tr, fmt.Errorf("step %d: %w", step, err)
		}
		w, b, err := l.Params()
		if err != nil {
			return tr, err
		}
		tr.Losses = append(tr.Losses, loss)
		tr.Params = append(tr.Params, append(dense.F64(w), dense.F64(b)...))
	}
	return tr, nil
}

// TestMPILayersRank is the body of TestMPILayers' ranks: every case, its
// trajectory written to rank-R.json.
func TestMPILayersRank(t *testing.T) {
	if !mpitest.InRank("TestMPILayersRank") {
		t.Skip("a rank of TestMPILayers' jobs")
	}
	c, why, err := dist.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	t.Log(why)
	out := map[string]trajectory{}
	err = mpiCases(func(key string, s *suite, p problem, o backend.Optimizer) error {
		l, err := s.b.Open(backend.Config{Spec: graph.Spec{B: p.B, N: p.N, T: p.T, DType: s.dt, Loss: p.opts, Want: graph.Want{DW: true, DB: true}}, Optimizer: o, Comm: c})
		if err != nil {
			return err
		}
		defer l.Close()
		if err := l.SetParams(dense.New(s.dt, p.W, p.N, p.T), dense.New(s.dt, p.bias, p.T)); err != nil {
			return err
		}
		out[key], err = s.steps(l, p, c.Rank(), c.Size())
		return err
	})
	if err != nil {
		c.Abort(1)
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	j, _ := json.Marshal(out)
	if err := os.WriteFile(filepath.Join(mpitest.Out(), fmt.Sprintf("rank-%d.json", c.Rank())), j, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestMPILayers: the layers of 2 and 3 MPI ranks (shared memory, and TCP
// alone) step as one process does on the same global batches, within
// tol.DataParallel (the first loss) and tol.DataParallelParams (the
// parameters after every step); every rank holds the same parameters, bit
// for bit; and a second run of 3 ranks gives the first's bits.
func TestMPILayers(t *testing.T) {
	l := mpitest.OpenMPI(t)
	// The one-process trajectories and their bounds.
	ref := map[string]trajectory{}
	bounds := map[string][]tol.Tol{}
	err := mpiCases(func(key string, s *suite, p problem, o backend.Optimizer) error {
		ref[key], bounds[key] = s.reference(t, p, o)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var first map[string]trajectory
	for _, c := range []struct {
		name  string
		np    int
		extra []string
	}{
		{"np=2", 2, nil},
		{"np=3", 3, nil},
		{"tcp/np=3", 3, []string{"--mca", "pml", "ob1", "--mca", "btl", "tcp,self"}},
		{"np=3 again", 3, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			j := l.Launch(t, c.np, "TestMPILayersRank", c.extra, nil, 3*time.Minute)
			if j.Err != nil {
				t.Fatalf("%v:\n%s", j.Err, j.Tail())
			}
			var ranks []map[string]trajectory
			for r := range c.np {
				var got map[string]trajectory
				if err := json.Unmarshal(j.Read(t, fmt.Sprintf("rank-%d.json", r)), &got); err != nil {
					t.Fatal(err)
				}
				ranks = append(ranks, got)
			}
			for key, want := range ref {
				got := ranks[0][key]
				if len(got.Params) != len(want.Params) {
					t.Fatalf("%s: %d steps, want %d", key, len(got.Params), len(want.Params))
				}
				for r := 1; r < c.np; r++ {
					if !equalTrajectories(ranks[r][key], got) {
						t.Errorf("%s: rank %d's losses or parameters differ from rank 0's: every rank must apply the same update", key, r)
					}
				}
				tol.Expect(t, key+": first loss", got.Losses[:1], want.Losses[:1], tol.DataParallel(dtypeOf(key)))
				for step := range want.Params {
					tol.Expect(t, fmt.Sprintf("%s: parameters after step %d", key, step), got.Params[step], want.Params[step], bounds[key][step])
				}
			}
			switch c.name {
			case "np=3":
				first = ranks[0]
			case "np=3 again":
				for key, tr := range ranks[0] {
					if !equalTrajectories(tr, first[key]) {
						t.Errorf("%s: a second run of 3 ranks gives other bits: reruns must be bitwise identical", key)
					}
				}
			}
		})
	}
}

// reference is the one-process trajectory of p under o and the bound of
// each step's parameters (tol.DataParallelParams, with the gradients'
// largest magnitude and the growth factor of the steps so far).
func (s *suite) reference(t *testing.T, p problem, o backend.Optimizer) (trajectory, []tol.Tol) {
	l := s.open(t, p, graph.Want{DW: true, DB: true}, o)
	var tr trajectory
	var bounds []tol.Tol
	gmax, growth := 0.0, 1.0
	for step, rows := range parallelBatches {
		x, y := share(s.dt, p, rows, 0, 1)
		g, err := l.Compute(x, y)
		if err != nil {
			t.Fatal(err)
		}
		gmax = max(gmax, maxAbs(dense.F64(g.DW)), maxAbs(dense.F64(g.DB)))
		growth = max(growth, 1+o.LR*lipschitz(p, rows))
		bounds = append(bounds, tol.DataParallelParams(s.dt, step+1, gmax, amplification(o, step+1), growth))
	}
	tr, err := s.steps(l, p, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	return tr, bounds
}

func equalTrajectories(a, b trajectory) bool {
	if !slices.Equal(a.Losses, b.Losses) || len(a.Params) != len(b.Params) {
		return false
	}
	for i := range a.Params {
		if !slices.Equal(a.Params[i], b.Params[i]) {
			return false
		}
	}
	return true
}

func dtypeOf(key string) tensor.Dtype {
	if slices.Contains(strings.Split(key, "/"), "float64") {
		return tensor.Float64
	}
	return tensor.Float32
}
