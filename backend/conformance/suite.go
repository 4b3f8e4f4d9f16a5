package conformance

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"dsx/backend"
	"dsx/cpu"
	"dsx/graph"
	"dsx/internal/dense"
	"dsx/internal/tol"

	"gorgonia.org/tensor"
)

// Run runs the whole suite on the backend registered as name, or skips with
// the reason it cannot run here. What runs follows the backend's
// declaration (Backend.Capabilities): a dtype, an implementation, a loss
// option or chunking it does not declare is skipped, saying so, and
// Declared checks that Open refuses each of them with ErrNotImplemented
// and opens everything declared.
func Run(t *testing.T, name string) {
	b, err := backend.Get(name)
	if err != nil {
		t.Skipf("%s: %v", name, err)
	}
	if err := b.Available(); err != nil {
		t.Skipf("%s: %v", name, err)
	}
	caps := b.Capabilities()
	t.Run("Declared", func(t *testing.T) { declared(t, b, caps) })
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		s := &suite{b: b, dt: dt, caps: caps}
		t.Run(dt.String(), func(t *testing.T) {
			if !caps.HasDType(dt) {
				t.Skipf("%s declares no %v layers", name, dt)
			}
			t.Run("WorkedExamples", s.workedExamples)
			t.Run("RowsOfDifferentScale", s.rowsOfDifferentScale)
			t.Run("HugeLogits", s.hugeLogits)
			t.Run("EqualLogits", s.equalLogits)
			t.Run("GradIsPMinusY", s.gradIsPMinusY)
			t.Run("Options", s.options)
			t.Run("AwkwardSizes", s.awkwardSizes)
			t.Run("LLMExamples", s.llmExamples)
			t.Run("AllIgnored", s.allIgnored)
			t.Run("AllWeightZero", s.allWeightZero)
			t.Run("RepeatAndSmallerBatch", s.repeatAndSmallerBatch)
			t.Run("Optimizers", s.optimizers)
			t.Run("OptimizerState", s.optimizerState)
			t.Run("OptimizerStateErrors", s.optimizerStateErrors)
			t.Run("BadInput", s.badInput)
			t.Run("HugeShapes", s.hugeShapes)
			t.Run("Meaningless", s.meaningless)
			t.Run("NonFinite", s.nonFinite)
			t.Run("Overflow", s.overflow)
			t.Run("DataParallel", s.dataParallel)
			t.Run("Views", s.views)
			t.Run("Chunked", func(t *testing.T) {
				// The same checks with the batch run in chunks of 2 rows
				// (Config.ChunkRows), where the backend declares it.
				if !caps.Chunks {
					t.Skipf("%s declares no chunked batches", name)
				}
				c := &suite{b: b, dt: dt, caps: caps, chunk: 2}
				t.Run("Options", c.options)
				t.Run("AllIgnored", c.allIgnored)
				t.Run("AllWeightZero", c.allWeightZero)
				t.Run("RepeatAndSmallerBatch", c.repeatAndSmallerBatch)
				t.Run("Optimizers", c.optimizers)
				t.Run("BadInput", c.badInput)
				t.Run("NonFinite", c.nonFinite)
				t.Run("DataParallel", c.dataParallel)
				t.Run("Views", c.views)
			})
			// The checks that hold for any implementation, with each
			// declared one beyond Fused (its loss options as declared:
			// the rest skip, saying so).
			for _, x := range backend.XentImpls()[1:] {
				t.Run("Xent="+x.String(), func(t *testing.T) {
					if !caps.HasXent(x) {
						t.Skipf("%s declares no %v softmax-cross-entropy", name, x)
					}
					c := &suite{b: b, dt: dt, caps: caps, xent: x}
					t.Run("WorkedExamples", c.workedExamples)
					t.Run("Options", c.options)
					t.Run("AwkwardSizes", c.awkwardSizes)
					t.Run("AllIgnored", c.allIgnored)
					t.Run("AllWeightZero", c.allWeightZero)
					t.Run("RepeatAndSmallerBatch", c.repeatAndSmallerBatch)
					t.Run("BadInput", c.badInput)
					if caps.Chunks {
						c := &suite{b: b, dt: dt, caps: caps, xent: x, chunk: 2}
						t.Run("Chunked/Options", c.options)
					}
				})
			}
			if dt == tensor.Float64 {
				t.Run("SoftmaxJacobian", s.softmaxJacobian)
				t.Run("FiniteDifferences", s.finiteDifferences)
			}
		})
	}
}

type suite struct {
	b     backend.Backend
	dt    tensor.Dtype
	caps  backend.Capabilities
	chunk int              // Config.ChunkRows of the layers the suite opens
	xent  backend.XentImpl // Config.Xent of the layers the suite opens
	tile  int              // Config.VocabTile of the layers the suite opens
}

// problem is one layer with its inputs.
type problem struct {
	B, N, T    int
	opts       graph.LossOptions
	x, W, bias []float64
	targets    []float64
}

// random draws a problem with fixed seed: x ~ N(0,1), W ~ N(0, 1/N), b ~
// N(0, 1), labels uniform, probabilities from a softmax of N(0, 2²).
func random(seed uint64, B, N, T int, opts graph.LossOptions) problem {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	p := problem{B: B, N: N, T: T, opts: opts}
	norm := func(n int, sd float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = r.NormFloat64() * sd
		}
		return v
	}
	p.x, p.W, p.bias = norm(B*N, 1), norm(N*T, 1/math.Sqrt(float64(N))), norm(T, 1)
	if opts.SoftTargets {
		p.targets = norm(B*T, 2)
		for i := 0; i < B; i++ {
			row := p.targets[i*T : (i+1)*T]
			sum := 0.0
			for c := range row {
				row[c] = math.Exp(row[c])
				sum += row[c]
			}
			for c := range row {
				row[c] /= sum
			}
		}
	} else {
		p.targets = make([]float64, B)
		for i := range p.targets {
			p.targets[i] = float64(r.IntN(T))
		}
		if opts.UseIgnoreIndex && B > 1 {
			p.targets[B/2] = float64(opts.IgnoreIndex)
		}
	}
	return p
}

func (p problem) targetShape() []int {
	if p.opts.SoftTargets {
		return []int{p.B, p.T}
	}
	return []int{p.B}
}

// open makes a layer for p with params set.
func (s *suite) open(t *testing.T, p problem, want graph.Want, opt backend.Optimizer) backend.Layer {
	t.Helper()
	cfg := backend.Config{Spec: graph.Spec{B: p.B, N: p.N, T: p.T, DType: s.dt, Loss: p.opts, Want: want}, Optimizer: opt, ChunkRows: s.chunk, Xent: s.xent, VocabTile: s.tile}
	l, err := s.b.Open(cfg)
	if m := s.caps.Xents[s.xent].Loss.Missing(p.opts); m != "" {
		// Not declared: Open must refuse it, and the check is skipped.
		if !errors.Is(err, backend.ErrNotImplemented) {
			t.Fatalf("open with %s, which %s does not declare for %v: %v, want ErrNotImplemented", m, s.b.Name(), s.xent, err)
		}
		t.Skipf("%s declares no %s with the %v softmax-cross-entropy", s.b.Name(), m, s.xent)
	}
	if err != nil {
		t.Fatalf("open %d×%d×%d: %v", p.B, p.N, p.T, err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if err := l.SetParams(dense.New(s.dt, p.W, p.N, p.T), dense.New(s.dt, p.bias, p.T)); err != nil {
		t.Fatalf("set params: %v", err)
	}
	return l
}

var all = graph.Want{DW: true, DB: true, DX: true}

// llm reports whether o uses soft-capping or z-loss.
func llm(o graph.LossOptions) bool { return o.Softcap != 0 || o.ZLoss != 0 }

// compute runs p on the backend and the reference on the same rounded inputs.
func (s *suite) compute(t *testing.T, p problem) (*backend.Result, cpu.Ref) {
	t.Helper()
	l := s.open(t, p, all, backend.Optimizer{})
	res, err := l.Compute(dense.New(s.dt, p.x, p.B, p.N), dense.New(s.dt, p.targets, p.targetShape()...))
	if err != nil {
		t.Fatalf("compute: %v", err)
	}
	ref := cpu.Reference(dense.Round(s.dt, p.x), dense.Round(s.dt, p.W), dense.Round(s.dt, p.bias), dense.Round(s.dt, p.targets), p.B, p.N, p.T, p.opts)
	return res, ref
}

// compare checks every output of res against ref.
func (s *suite) compare(t *testing.T, res *backend.Result, ref cpu.Ref, reduction graph.Reduction) {
	t.Helper()
	tl := tol.For(s.dt)
	for _, v := range []float64{res.Loss} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Fatalf("loss is %v", v)
		}
	}
	tol.Expect(t, "loss", []float64{res.Loss}, []float64{ref.Loss}, tl)
	if reduction == graph.None {
		if res.Losses == nil {
			t.Errorf("reduction none: no per-row losses")
		} else {
			tol.Expect(t, "losses", dense.F64(res.Losses), ref.Losses, tl)
		}
	}
	tol.Expect(t, "dW", dense.F64(res.DW), ref.DW, tl)
	tol.Expect(t, "db", dense.F64(res.DB), ref.DB, tl)
	tol.Expect(t, "dx", dense.F64(res.DX), ref.DX, tl)
}

// softmaxOf returns softmax(z) for one row as the backend computes it: with
// N = 1, x = 1, W = z and b = 0 the logits are z, and for one row with label
// y under Mean, dz = p − e_y, so p = dz + e_y.
func (s *suite) softmaxOf(t *testing.T, z []float64, y int) (p []float64, loss float64) {
	t.Helper()
	T := len(z)
	prob := problem{B: 1, N: 1, T: T, W: z, bias: make([]float64, T), x: []float64{1}, targets: []float64{float64(y)}}
	l := s.open(t, prob, graph.Want{DW: true, DB: true}, backend.Optimizer{})
	res, err := l.Compute(dense.New(s.dt, prob.x, 1, 1), dense.New(s.dt, prob.targets, 1))
	if err != nil {
		t.Fatalf("compute softmax(%v): %v", z, err)
	}
	p = dense.F64(res.DB)
	p[y]++
	return p, res.Loss
}
