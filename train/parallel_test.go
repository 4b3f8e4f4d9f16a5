package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"dsx/backend"
	"dsx/dist"
	"dsx/dist/disttest"
	"dsx/internal/dense"
	"dsx/internal/tol"

	"gorgonia.org/tensor"
)

// rankRun is one rank's outcome of a data-parallel run.
type rankRun struct {
	W, b []float32
	res  *Result
	err  error
}

// trainWorld trains on a world of P in-process ranks (P = 1: one process,
// no communicator), each on its own copy of the blobs (202 rows: the last
// batch of 50 has 2 rows, fewer than 3 ranks), with opts(r) for rank r.
func trainWorld(t *testing.T, P int, cfg Config, opts func(r int) Options) []rankRun {
	t.Helper()
	var world []dist.Comm
	if P > 1 {
		world = disttest.World(P)
	}
	out := make([]rankRun, P)
	disttest.Each(P, func(r int) error { // each rank's error is in its rankRun
		o := Options{InPlace: true}
		if opts != nil {
			o = opts(r)
			o.InPlace = true
		}
		if world != nil {
			o.Comm = world[r]
		}
		tr, err := New(cpuBackend(t), blobs(202, 6, 4, 1), blobs(71, 6, 4, 2), cfg, o)
		if err != nil {
			out[r].err = err
			return nil
		}
		defer tr.Close()
		if out[r].res, out[r].err = tr.Run(context.Background()); out[r].err != nil {
			return nil
		}
		m, err := tr.Model()
		if err != nil {
			out[r].err = err
			return nil
		}
		out[r].W, out[r].b = m.W, m.B
		return nil
	})
	return out
}

// Training on 2 and 3 ranks gives the one-process model: float64 within
// tol.DataParallelParams (the gradients differ by the order of their sums
// only); every rank the same bits; reruns the same bits; the test set's
// evaluation, split over the ranks, within float64 rounding of the
// one-process one on the same parameters (checked by the loss's bound
// through the parameters: it is smooth in them).
func TestDataParallelModel(t *testing.T) {
	for _, kind := range []backend.OptimizerKind{backend.SGD, backend.Adam} {
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			t.Run(fmt.Sprintf("%v/%v", kind, dt), func(t *testing.T) {
				cfg := config(dt, kind)
				cfg.Epochs = 2
				if kind == backend.Adam {
					cfg.Optimizer.Eps = 0.01 // Adam's amplification 2·lr/ε = 2 (see tol.DataParallelParams)
				}
				one := trainWorld(t, 1, cfg, nil)[0]
				if one.err != nil {
					t.Fatal(one.err)
				}
				for _, P := range []int{2, 3} {
					runs := trainWorld(t, P, cfg, nil)
					again := trainWorld(t, P, cfg, nil)
					for r := range P {
						if runs[r].err != nil || again[r].err != nil {
							t.Fatalf("P=%d rank %d: %v, %v", P, r, runs[r].err, again[r].err)
						}
						if !slices.Equal(runs[r].W, runs[0].W) || !slices.Equal(runs[r].b, runs[0].b) || !slices.Equal(again[r].W, runs[0].W) {
							t.Fatalf("P=%d: rank %d's model (or a rerun's) differs from rank 0's", P, r)
						}
						if runs[r].res.Epochs[1].TestLoss != runs[0].res.Epochs[1].TestLoss {
							t.Fatalf("P=%d: rank %d evaluates to another test loss than rank 0", P, r)
						}
					}
					if dt != tensor.Float64 {
						continue // float32's bound over 10 steps is too loose to say anything (the layer tests hold float32 to one step)
					}
					steps := cfg.Epochs * 5
					got := append(f32to64(runs[0].W), f32to64(runs[0].b)...)
					want := append(f32to64(one.W), f32to64(one.b)...)
					tol.Expect(t, fmt.Sprintf("P=%d model", P), got, want, tol.DataParallelParams(dt, steps, blobGrad, amp(cfg.Optimizer, steps), blobGrowth(cfg.Optimizer.LR)))
				}
			})
		}
	}
}

// blobGrad bounds |dW| and |db| of a mean cross-entropy on the scaled
// blobs: each is a mean of x_ik·(p_ic − y_ic) with |p − y| ≤ 1, so at most
// max|x| (≤ 5 after scaling: the blobs' features are within 5 standard
// deviations).
const blobGrad = 5.0

// blobGrowth is 1 + lr·L for the blobs: L ≤ ½·max_i(‖x_i‖² + 1) (the
// softmax's Jacobian is at most ½, and XᵀX/B is at most the largest row's
// squared norm; the 1 is b's column) with ‖x_i‖² ≤ 6·5².
func blobGrowth(lr float64) float64 { return 1 + lr*0.5*(6*25+1) }

func amp(o backend.Optimizer, steps int) float64 {
	o = o.WithDefaults()
	if o.Kind == backend.Adam {
		return 2 * o.LR / o.Eps
	}
	return o.LR * math.Min(float64(steps), 1/(1-o.Momentum))
}

func f32to64(v []float32) []float64 { return dense.Convert[float64](v) }

// An error on one rank stops every rank at the same step with that
// rank's message (a *RankError; on the rank that raised it, the error
// itself through Unwrap): settings that differ from rank 0's, a hook that
// fails on one rank, parameters that drift apart, a divergence.
func TestDataParallelErrors(t *testing.T) {
	cfg := config(tensor.Float64, backend.SGD)
	errHook := errors.New("the hook failed")
	for _, c := range []struct {
		name  string
		cfg   func(r int) Config
		opts  func(r int) Options
		rank  int
		want  string
		check func(t *testing.T, err error)
	}{
		{"settings", func(r int) Config {
			c := cfg
			if r == 2 {
				c.Seed = 9
			}
			return c
		}, nil, 2, "this rank does not train what rank 0 does: seed 9 here, 3 on rank 0", nil},
		{"hook", nil, func(r int) Options {
			return Options{Step: func(tr *Trainer) error {
				if r == 1 && tr.Position().Step == 3 {
					return errHook
				}
				return nil
			}}
		}, 1, "the hook failed", func(t *testing.T, err error) {
			if !errors.Is(err, errHook) {
				t.Errorf("rank 1: errors.Is(%v, the hook's error) is false", err)
			}
		}},
		{"drift", nil, func(r int) Options {
			return Options{CheckEvery: 1, Step: func(tr *Trainer) error {
				if r == 1 && tr.Position().Step == 2 {
					W, b, _ := tr.Layer().Params()
					w := dense.F64(W)
					w[0] += 1e-9
					return tr.Layer().SetParams(dense.New(tensor.Float64, w, W.Shape()...), b)
				}
				return nil
			}}
		}, 1, "the parameters differ from rank 0's after step 3", nil},
		// A loss that explodes is the global batch's: every rank sees it
		// and returns the same *DivergedError, no rank being to blame.
		{"diverged", func(int) Config {
			c := config(tensor.Float32, backend.SGD) // as TestDiverged: float64 would classify the blobs perfectly instead
			c.Optimizer.LR = 1e30
			return c
		}, nil, -1, "training diverged in epoch 1, batch 2 of 5: the loss exploded", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			const P = 3
			world := disttest.World(P)
			errs := make([]error, P)
			var wg sync.WaitGroup
			for r := range P {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cf := cfg
					if c.cfg != nil {
						cf = c.cfg(r)
					}
					o := Options{}
					if c.opts != nil {
						o = c.opts(r)
					}
					o.Comm = world[r]
					tr, err := New(cpuBackend(t), blobs(230, 6, 4, 1), nil, cf, o)
					if err == nil {
						_, err = tr.Run(context.Background())
						tr.Close()
					}
					errs[r] = err
				}()
			}
			wg.Wait()
			for r, err := range errs {
				if c.rank < 0 {
					var de *DivergedError
					if !errors.As(err, &de) || !strings.Contains(err.Error(), c.want) || err.Error() != errs[0].Error() {
						t.Errorf("rank %d: %v; want rank 0's *DivergedError saying %q", r, err, c.want)
					}
					continue
				}
				var re *RankError
				if !errors.As(err, &re) || re.Rank != c.rank || re.Size != P || !strings.Contains(re.Msg, c.want) {
					t.Errorf("rank %d: %v; want a *RankError of rank %d saying %q", r, err, c.rank, c.want)
					continue
				}
				if r == c.rank && c.check != nil {
					c.check(t, err)
				}
				if r != c.rank && re.Err != nil {
					t.Errorf("rank %d holds rank %d's error value", r, c.rank)
				}
			}
		})
	}
}
