package graph

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"dsx/internal/dense"
	"dsx/internal/rowmath"
	"dsx/internal/tol"
)

// TestExp32 checks exp32 against math.Exp over the range the kernel uses
// (x = z − max ≤ 0) and a little beyond: within 2 ulp (tol.Exp32) for
// normal results, exact at the special values.
func TestExp32(t *testing.T) {
	worst := 0.0
	for x := float32(-87.3); x <= 88.7; x += 0.000731 {
		got := float64(exp32(x))
		want := math.Exp(float64(x))
		if r := math.Abs(got-want) / want; r > worst {
			worst = r
		}
	}
	if worst > tol.Exp32.Rel {
		t.Errorf("exp32: worst relative error %.3g > %g (%s)", worst, tol.Exp32.Rel, tol.Exp32.Why)
	}
	for _, c := range []struct{ x, want float32 }{{0, 1}, {float32(math.Inf(-1)), 0}, {-100, 0}, {100, float32(math.Inf(1))}} {
		if got := exp32(c.x); got != c.want {
			t.Errorf("exp32(%v) = %v, want %v", c.x, got, c.want)
		}
	}
	if got := exp32(float32(math.NaN())); got == got {
		t.Errorf("exp32(NaN) = %v", got)
	}
}

// TestFusedMatchesRowKernels compares the fused forward/backward with
// RowLoss/RowGrad (the reference row kernels) under every option, in both
// dtypes, including a backward without a valid stash.
func TestFusedMatchesRowKernels(t *testing.T) {
	const B, T = 37, 11
	w := make([]float64, T)
	for i := range w {
		w[i] = 0.5 + float64(i)/T
	}
	opts := []LossOptions{
		{}, {Reduction: Sum}, {Reduction: None}, {LabelSmoothing: 0.2}, {ClassWeights: w},
		{UseIgnoreIndex: true, IgnoreIndex: 3}, {SoftTargets: true}, {SoftTargets: true, LabelSmoothing: 0.1, ClassWeights: w},
		{Softcap: 2.5}, {ZLoss: 0.3}, {Softcap: 4, ZLoss: 0.1, Reduction: Sum},
		// Mean with class weights: the z-loss's scale (1/kept rows) differs
		// from the cross-entropy's (1/Σ w_y).
		{Softcap: 3, ZLoss: 0.2, ClassWeights: w, UseIgnoreIndex: true, IgnoreIndex: 3, LabelSmoothing: 0.1},
		{Softcap: 3, ZLoss: 0.2, SoftTargets: true, Reduction: None},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for oi, o := range opts {
		z := make([]float64, B*T)
		for i := range z {
			z[i] = r.NormFloat64() * 3
		}
		var tg []float64
		if o.SoftTargets {
			tg = make([]float64, B*T)
			for i := 0; i < B; i++ {
				s := 0.0
				for c := 0; c < T; c++ {
					tg[i*T+c] = r.Float64()
					s += tg[i*T+c]
				}
				for c := 0; c < T; c++ {
					tg[i*T+c] /= s
				}
			}
		} else {
			tg = make([]float64, B)
			for i := range tg {
				tg[i] = float64(r.IntN(T))
			}
		}
		if o.UseIgnoreIndex {
			tg[5], tg[20] = 3, 3
		}
		sc, sz := rowmath.Scale(o.row(), rowmath.Denominator(tg, B, o.row())), rowmath.Scale(o.row(), rowmath.KeptRows(tg, B, o.row()))
		wantLoss, wantGrad := 0.0, make([]float64, B*T)
		for i := 0; i < B; i++ {
			y, soft := rowmath.Target(tg, i, T, o.row())
			ce, zl, _ := rowmath.RowTerms(z[i*T:(i+1)*T], y, soft, o.row())
			wantLoss += sc*ce + sz*zl
			rowmath.RowGradScaled(wantGrad[i*T:(i+1)*T], z[i*T:(i+1)*T], y, soft, o.row(), sc, sz)
		}
		for _, stash := range []bool{true, false} {
			t.Run(fmt.Sprintf("opts%d/stash=%v", oi, stash), func(t *testing.T) {
				op := &XentOp{Opts: o, T: T, hasGrad: true}
				check := func(name string, got, want []float64, tl tol.Tol) {
					t.Helper()
					if err := tol.Close(got, want, tl); err != nil {
						t.Fatalf("%s: %v", name, err)
					}
				}
				k64 := op.cpu64()
				sum, _ := k64.forward(z, tg, B, sc, sz)
				check("loss64", []float64{sum}, []float64{wantLoss}, tol.FusedF64)
				dz := make([]float64, B*T)
				if !stash {
					k64.valid = false
				}
				k64.backward(dz, z, tg, B, sc, sz, nil)
				check("grad64", dz, wantGrad, tol.FusedF64)

				z32, tg32 := dense.Convert[float32](z), dense.Convert[float32](tg)
				k32 := op.cpu32()
				sum32, _ := k32.forward(z32, tg32, B, sc, sz)
				check("loss32", []float64{sum32}, []float64{wantLoss}, tol.FusedF32)
				g := k32.gradTensor(B).Data().([]float32)
				if !stash {
					k32.valid = false
				}
				k32.backward(g, z32, tg32, B, sc, sz, nil)
				check("grad32", dense.Convert[float64](g), wantGrad, tol.FusedF32)
			})
		}
	}
}

func BenchmarkXent(b *testing.B) {
	for _, s := range []struct{ B, T int }{{4096, 10}, {4096, 1000}} {
		b.Run(fmt.Sprintf("B=%d,T=%d", s.B, s.T), func(b *testing.B) {
			r := rand.New(rand.NewPCG(3, 4))
			z := make([]float32, s.B*s.T)
			for i := range z {
				z[i] = float32(r.NormFloat64())
			}
			tg := make([]float32, s.B)
			for i := range tg {
				tg[i] = float32(r.IntN(s.T))
			}
			op := &XentOp{T: s.T, hasGrad: true}
			k := op.cpu32()
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				k.forward(z, tg, s.B, 1.0/float64(s.B), 1.0/float64(s.B))
				k.backward(k.gradTensor(s.B).Data().([]float32), z, tg, s.B, 1.0/float64(s.B), 1.0/float64(s.B), nil)
			}
		})
	}
}

func TestExpNonPos(t *testing.T) {
	worst := 0.0
	for x := float32(-87.33); x <= 0; x += 0.000377 {
		got, want := float64(expNonPos(x)), math.Exp(float64(x))
		if r := math.Abs(got-want) / want; r > worst {
			worst = r
		}
	}
	if worst > tol.Exp32.Rel {
		t.Errorf("expNonPos: worst relative error %.3g > %g (%s)", worst, tol.Exp32.Rel, tol.Exp32.Why)
	}
	if expNonPos(float32(math.Inf(-1))) != 0 || expNonPos(0) != 1 {
		t.Errorf("expNonPos(-Inf) = %v, expNonPos(0) = %v", expNonPos(float32(math.Inf(-1))), expNonPos(0))
	}
	if v := expNonPos(float32(math.NaN())); v == v {
		t.Errorf("expNonPos(NaN) = %v", v)
	}
}
