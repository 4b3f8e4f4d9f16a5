package conformance

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"dsx/backend"
	"dsx/cpu"
	"dsx/graph"

	"gorgonia.org/tensor"
)

// Run runs the whole suite on the backend registered as name, or skips with
// the reason it cannot run here.
func Run(t *testing.T, name string) {
	b, err := backend.Get(name)
	if err != nil {
		t.Skipf("%s: %v", name, err)
	}
	if err := b.Available(); err != nil {
		t.Skipf("%s: %v", name, err)
	}
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		s := &suite{b: b, dt: dt}
		t.Run(dt.String(), func(t *testing.T) {
			t.Run("WorkedExamples", s.workedExamples)
			t.Run("RowsOfDifferentScale", s.rowsOfDifferentScale)
			t.Run("GradIsPMinusY", s.gradIsPMinusY)
			t.Run("Options", s.options)
			t.Run("AwkwardSizes", s.awkwardSizes)
			t.Run("AllIgnored", s.allIgnored)
			t.Run("RepeatAndSmallerBatch", s.repeatAndSmallerBatch)
			t.Run("Optimizers", s.optimizers)
			t.Run("BadInput", s.badInput)
			t.Run("Chunked", func(t *testing.T) {
				// The same checks with the batch run in chunks of 2 rows
				// (Config.ChunkRows), where the backend supports it.
				c := &suite{b: b, dt: dt, chunk: 2}
				l, err := b.Open(backend.Config{Spec: graph.Spec{B: 4, N: 1, T: 2, DType: dt}, ChunkRows: 2})
				if errors.Is(err, backend.ErrNotImplemented) {
					t.Skipf("%s: %v", name, err)
				}
				if err != nil {
					t.Fatal(err)
				}
				l.Close()
				t.Run("Options", c.options)
				t.Run("AllIgnored", c.allIgnored)
				t.Run("RepeatAndSmallerBatch", c.repeatAndSmallerBatch)
				t.Run("Optimizers", c.optimizers)
			})
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
	chunk int // Config.ChunkRows of the layers the suite opens
}

// dense makes a tensor of the suite's dtype from float64 values.
func (s *suite) dense(vals []float64, shape ...int) *tensor.Dense {
	if s.dt == tensor.Float32 {
		f := make([]float32, len(vals))
		for i, v := range vals {
			f[i] = float32(v)
		}
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(f))
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float64(nil), vals...)))
}

// rounded returns vals as the suite's dtype holds them, so that references see
// exactly the backend's inputs.
func (s *suite) rounded(vals []float64) []float64 {
	out := make([]float64, len(vals))
	for i, v := range vals {
		if s.dt == tensor.Float32 {
			v = float64(float32(v))
		}
		out[i] = v
	}
	return out
}

// f64 reads any float tensor as float64 values.
func f64(t *tensor.Dense) []float64 {
	if t == nil {
		return nil
	}
	switch d := t.Data().(type) {
	case []float64:
		return append([]float64(nil), d...)
	case []float32:
		out := make([]float64, len(d))
		for i, v := range d {
			out[i] = float64(v)
		}
		return out
	}
	return nil
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
	l, err := s.b.Open(backend.Config{Spec: graph.Spec{B: p.B, N: p.N, T: p.T, DType: s.dt, Loss: p.opts, Want: want}, Optimizer: opt, ChunkRows: s.chunk})
	if err != nil {
		t.Fatalf("open %d×%d×%d: %v", p.B, p.N, p.T, err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if err := l.SetParams(s.dense(p.W, p.N, p.T), s.dense(p.bias, p.T)); err != nil {
		t.Fatalf("set params: %v", err)
	}
	return l
}

var all = graph.Want{W: true, B: true, X: true}

// compute runs p on the backend and the reference on the same rounded inputs.
func (s *suite) compute(t *testing.T, p problem) (*backend.Result, cpu.Ref) {
	t.Helper()
	l := s.open(t, p, all, backend.Optimizer{})
	res, err := l.Compute(s.dense(p.x, p.B, p.N), s.dense(p.targets, p.targetShape()...))
	if err != nil {
		t.Fatalf("compute: %v", err)
	}
	ref := cpu.Reference(s.rounded(p.x), s.rounded(p.W), s.rounded(p.bias), s.rounded(p.targets), p.B, p.N, p.T, p.opts)
	return res, ref
}

// compare checks every output of res against ref.
func (s *suite) compare(t *testing.T, res *backend.Result, ref cpu.Ref, reduction graph.Reduction) {
	t.Helper()
	tol := tolFor(s.dt)
	for _, v := range []float64{res.Loss} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Fatalf("loss is %v", v)
		}
	}
	expectClose(t, "loss", []float64{res.Loss}, []float64{ref.Loss}, tol)
	if reduction == graph.None {
		if res.Losses == nil {
			t.Errorf("reduction none: no per-row losses")
		} else {
			expectClose(t, "losses", f64(res.Losses), ref.Losses, tol)
		}
	}
	expectClose(t, "dW", f64(res.DW), ref.DW, tol)
	expectClose(t, "db", f64(res.DB), ref.DB, tol)
	expectClose(t, "dx", f64(res.DX), ref.DX, tol)
}

// softmaxOf returns softmax(z) for one row as the backend computes it: with
// N = 1, x = 1, W = z and b = 0 the logits are z, and for one row with label
// y under Mean, dz = p − e_y, so p = dz + e_y.
func (s *suite) softmaxOf(t *testing.T, z []float64, y int) (p []float64, loss float64) {
	t.Helper()
	T := len(z)
	prob := problem{B: 1, N: 1, T: T, W: z, bias: make([]float64, T), x: []float64{1}, targets: []float64{float64(y)}}
	l := s.open(t, prob, graph.Want{W: true, B: true}, backend.Optimizer{})
	res, err := l.Compute(s.dense(prob.x, 1, 1), s.dense(prob.targets, 1))
	if err != nil {
		t.Fatalf("compute softmax(%v): %v", z, err)
	}
	p = f64(res.DB)
	p[y]++
	return p, res.Loss
}

func (s *suite) workedExamples(t *testing.T) {
	for _, c := range []struct {
		z, want []float64
		tol     Tol
	}{
		{[]float64{1, 2, 3}, []float64{0.0900, 0.2447, 0.6652}, tolQuoted4},
		// e/(e+e²+e⁵) etc. The issue quotes ≈ [0.02, 0.05, 0.93], rounded so
		// the three sum to 1; to 2 decimals the last is 0.94.
		{[]float64{1, 2, 5}, []float64{0.0171, 0.0466, 0.9362}, tolQuoted4},
		{[]float64{1000, 2000, 3000}, []float64{0, 0, 1}, tolSaturated},
		{[]float64{-3000, -2000, -1000}, []float64{0, 0, 1}, tolSaturated},
	} {
		p, loss := s.softmaxOf(t, c.z, 2)
		expectClose(t, fmt.Sprintf("softmax(%v)", c.z), p, c.want, c.tol)
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			t.Errorf("softmax(%v): loss %v", c.z, loss)
		}
	}
	// The loss against the least likely class of [1000, 2000, 3000] is exactly
	// 2000 (−log p_0 = 3000 − 1000), finite, not Inf from log(0).
	_, loss := s.softmaxOf(t, []float64{1000, 2000, 3000}, 0)
	expectClose(t, "loss of softmax([1000,2000,3000]) at class 0", []float64{loss}, []float64{2000}, tolFor(s.dt))
}

func (s *suite) rowsOfDifferentScale(t *testing.T) {
	// Five rows whose logits differ by 10⁴ in scale: a softmax that takes its
	// maximum from anywhere but the row itself overflows on some of them.
	rows := [][]float64{{1, 2, 3}, {1000, 2000, 3000}, {-1e4, 0, 1e4}, {-3000, -2000, -1000}, {1e-3, 2e-3, 3e-3}}
	p := problem{B: len(rows), N: 3, T: 3, bias: make([]float64, 3), W: []float64{1, 0, 0, 0, 1, 0, 0, 0, 1}}
	for i, r := range rows {
		p.x = append(p.x, r...)
		p.targets = append(p.targets, float64(i%3))
	}
	res, ref := s.compute(t, p)
	s.compare(t, res, ref, graph.Mean)
}

func (s *suite) gradIsPMinusY(t *testing.T) {
	// With plain one-hot targets and Sum, dz = p − y exactly, so db = Σ_i (p_i − y_i)
	// and for B = 1 db = p − y.
	p := random(7, 1, 4, 6, graph.LossOptions{Reduction: graph.Sum})
	res, ref := s.compute(t, p)
	want := append([]float64(nil), ref.P...)
	want[int(p.targets[0])]--
	expectClose(t, "db = p − y", f64(res.DB), want, tolFor(s.dt))
	// dW = xᵀ(p − y).
	dW := make([]float64, p.N*p.T)
	x := s.rounded(p.x)
	for k := 0; k < p.N; k++ {
		for c := 0; c < p.T; c++ {
			dW[k*p.T+c] = x[k] * want[c]
		}
	}
	expectClose(t, "dW = xᵀ(p − y)", f64(res.DW), dW, tolFor(s.dt))
	// Mean over B rows: dW = xᵀ(p − y)/B.
	pm := random(8, 5, 4, 6, graph.LossOptions{})
	resm, refm := s.compute(t, pm)
	dWm := make([]float64, pm.N*pm.T)
	xm := s.rounded(pm.x)
	for i := 0; i < pm.B; i++ {
		for c := 0; c < pm.T; c++ {
			g := refm.P[i*pm.T+c]
			if c == int(pm.targets[i]) {
				g--
			}
			for k := 0; k < pm.N; k++ {
				dWm[k*pm.T+c] += xm[i*pm.N+k] * g / float64(pm.B)
			}
		}
	}
	expectClose(t, "dW = xᵀ(p − y)/B", f64(resm.DW), dWm, tolFor(s.dt))
}

// optionCases covers every loss option and their combinations that matter.
func optionCases(T int) []struct {
	name string
	o    graph.LossOptions
} {
	w := make([]float64, T)
	for c := range w {
		w[c] = 0.25 + float64(c%4)*0.5
	}
	var cases []struct {
		name string
		o    graph.LossOptions
	}
	for _, red := range []graph.Reduction{graph.Mean, graph.Sum, graph.None} {
		for _, o := range []struct {
			name string
			o    graph.LossOptions
		}{
			{"plain", graph.LossOptions{}},
			{"weights", graph.LossOptions{ClassWeights: w}},
			{"ignore", graph.LossOptions{UseIgnoreIndex: true, IgnoreIndex: 1}},
			{"ignore-negative", graph.LossOptions{UseIgnoreIndex: true, IgnoreIndex: -100}},
			{"smoothing", graph.LossOptions{LabelSmoothing: 0.1}},
			{"weights+ignore+smoothing", graph.LossOptions{ClassWeights: w, UseIgnoreIndex: true, IgnoreIndex: 0, LabelSmoothing: 0.2}},
			{"soft", graph.LossOptions{SoftTargets: true}},
			{"soft+weights+smoothing", graph.LossOptions{SoftTargets: true, ClassWeights: w, LabelSmoothing: 0.3}},
		} {
			o.o.Reduction = red
			cases = append(cases, struct {
				name string
				o    graph.LossOptions
			}{red.String() + "/" + o.name, o.o})
		}
	}
	return cases
}

func (s *suite) options(t *testing.T) {
	const B, N, T = 6, 5, 7
	for i, c := range optionCases(T) {
		t.Run(c.name, func(t *testing.T) {
			p := random(uint64(100+i), B, N, T, c.o)
			res, ref := s.compute(t, p)
			s.compare(t, res, ref, c.o.Reduction)
		})
	}
}

func (s *suite) awkwardSizes(t *testing.T) {
	for _, sz := range []struct{ B, N, T int }{
		{1, 1, 2}, {1, 1, 3}, {1, 3, 2}, {3, 1, 3}, {1, 2, 1000}, {5, 3, 1000}, {2, 2, 8003}, {1, 1, 8003}, {7, 33, 10},
	} {
		for _, o := range []graph.LossOptions{{}, {SoftTargets: true, LabelSmoothing: 0.1}} {
			name := fmt.Sprintf("B=%d,N=%d,T=%d,soft=%v", sz.B, sz.N, sz.T, o.SoftTargets)
			t.Run(name, func(t *testing.T) {
				p := random(uint64(sz.B*1000003+sz.N*1009+sz.T), sz.B, sz.N, sz.T, o)
				res, ref := s.compute(t, p)
				s.compare(t, res, ref, o.Reduction)
			})
		}
	}
}

func (s *suite) allIgnored(t *testing.T) {
	for _, red := range []graph.Reduction{graph.Mean, graph.Sum, graph.None} {
		o := graph.LossOptions{Reduction: red, UseIgnoreIndex: true, IgnoreIndex: -100, LabelSmoothing: 0.1}
		p := random(3, 4, 3, 5, o)
		for i := range p.targets {
			p.targets[i] = -100
		}
		res, _ := s.compute(t, p)
		zero := func(n int) []float64 { return make([]float64, n) }
		// Exactly zero, not merely small: no row contributes anything.
		expectClose(t, red.String()+": loss", []float64{res.Loss}, zero(1), Tol{Why: "every row ignored"})
		expectClose(t, red.String()+": dW", f64(res.DW), zero(p.N*p.T), Tol{Why: "every row ignored"})
		expectClose(t, red.String()+": db", f64(res.DB), zero(p.T), Tol{Why: "every row ignored"})
		expectClose(t, red.String()+": dx", f64(res.DX), zero(p.B*p.N), Tol{Why: "every row ignored"})
	}
}

func (s *suite) repeatAndSmallerBatch(t *testing.T) {
	// Gradients must not accumulate across runs, and a smaller last batch
	// must give the smaller problem's answer.
	p := random(11, 8, 4, 5, graph.LossOptions{})
	l := s.open(t, p, all, backend.Optimizer{})
	x, y := s.dense(p.x, p.B, p.N), s.dense(p.targets, p.B)
	r1, err := l.Compute(x, y)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := l.Compute(x, y)
	if err != nil {
		t.Fatal(err)
	}
	expectClose(t, "second run dW", f64(r2.DW), f64(r1.DW), tolFor(s.dt))
	small := p
	small.B = 3
	small.x, small.targets = p.x[:3*p.N], p.targets[:3]
	r3, err := l.Compute(s.dense(small.x, 3, p.N), s.dense(small.targets, 3))
	if err != nil {
		t.Fatal(err)
	}
	ref := cpu.Reference(s.rounded(small.x), s.rounded(p.W), s.rounded(p.bias), small.targets, 3, p.N, p.T, p.opts)
	s.compare(t, r3, ref, graph.Mean)
	logits, err := l.Logits(s.dense(small.x, 3, p.N))
	if err != nil {
		t.Fatal(err)
	}
	expectClose(t, "logits", f64(logits), ref.Logits, tolFor(s.dt))
}

// optimizers checks two steps of each optimizer against PyTorch's formulas
// applied in float64 to the gradients of the reference.
func (s *suite) optimizers(t *testing.T) {
	for _, o := range []backend.Optimizer{
		{Kind: "sgd", LR: 0.1},
		{Kind: "sgd", LR: 0.1, Momentum: 0.9, WeightDecay: 0.01},
		{Kind: "adam", LR: 0.01, WeightDecay: 0.01},
		{Kind: "adam", LR: 0.01, WeightDecay: 0.1, Decoupled: true},
	} {
		t.Run(fmt.Sprintf("%s,m=%g,wd=%g,decoupled=%v", o.Kind, o.Momentum, o.WeightDecay, o.Decoupled), func(t *testing.T) {
			p := random(21, 6, 4, 5, graph.LossOptions{})
			l := s.open(t, p, graph.Want{W: true, B: true}, o)
			x, y := s.dense(p.x, p.B, p.N), s.dense(p.targets, p.B)
			w, b := s.rounded(p.W), s.rounded(p.bias)
			o := o.WithDefaults()
			var mw, vw, mb, vb []float64
			for step := 1; step <= 2; step++ {
				ref := cpu.Reference(s.rounded(p.x), w, b, p.targets, p.B, p.N, p.T, p.opts)
				loss, err := l.Step(x, y)
				if err != nil {
					t.Fatal(err)
				}
				expectClose(t, fmt.Sprintf("step %d loss", step), []float64{loss}, []float64{ref.Loss}, tolFor(s.dt))
				mw, vw = refUpdate(o, step, w, ref.DW, mw, vw)
				mb, vb = refUpdate(o, step, b, ref.DB, mb, vb)
			}
			gw, gb, err := l.Params()
			if err != nil {
				t.Fatal(err)
			}
			expectClose(t, "W after 2 steps", f64(gw), w, tolFor(s.dt))
			expectClose(t, "b after 2 steps", f64(gb), b, tolFor(s.dt))
		})
	}
}

// refUpdate is torch.optim.SGD / Adam / AdamW written out in float64.
func refUpdate(o backend.Optimizer, step int, w, g, m, v []float64) ([]float64, []float64) {
	if m == nil {
		m, v = make([]float64, len(w)), make([]float64, len(w))
	}
	for i := range w {
		gi := g[i]
		switch o.Kind {
		case "sgd":
			gi += o.WeightDecay * w[i]
			if o.Momentum != 0 {
				if step == 1 {
					m[i] = gi
				} else {
					m[i] = o.Momentum*m[i] + gi
				}
				gi = m[i]
			}
			w[i] -= o.LR * gi
		case "adam":
			if o.Decoupled {
				w[i] *= 1 - o.LR*o.WeightDecay
			} else {
				gi += o.WeightDecay * w[i]
			}
			m[i] = o.Beta1*m[i] + (1-o.Beta1)*gi
			v[i] = o.Beta2*v[i] + (1-o.Beta2)*gi*gi
			mh := m[i] / (1 - math.Pow(o.Beta1, float64(step)))
			vh := v[i] / (1 - math.Pow(o.Beta2, float64(step)))
			w[i] -= o.LR * mh / (math.Sqrt(vh) + o.Eps)
		}
	}
	return m, v
}

func (s *suite) badInput(t *testing.T) {
	p := random(31, 4, 3, 5, graph.LossOptions{})
	l := s.open(t, p, all, backend.Optimizer{})
	x := s.dense(p.x, p.B, p.N)
	for _, c := range []struct {
		name    string
		x, y    *tensor.Dense
		wantErr string
	}{
		{"label out of range", x, s.dense([]float64{0, 1, 5, 2}, 4), "out of range"},
		{"negative label", x, s.dense([]float64{0, -1, 2, 2}, 4), "out of range"},
		{"fractional label", x, s.dense([]float64{0, 1.5, 2, 2}, 4), "not an integer"},
		{"wrong feature count", s.dense(p.x[:8], 4, 2), nil, "shape"},
		{"targets of wrong length", x, s.dense([]float64{0, 1, 2}, 3), "shape"},
		{"batch larger than B", s.dense(append(p.x, p.x...), 8, 3), nil, "rows"},
	} {
		y := c.y
		if y == nil {
			y = s.dense(p.targets, p.B)
		}
		_, err := l.Compute(c.x, y)
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%s: error %v, want one mentioning %q", c.name, err, c.wantErr)
		}
	}
	if _, err := l.Step(x, s.dense(p.targets, p.B)); err == nil {
		t.Errorf("Step without an optimizer: no error")
	}
	if err := l.SetParams(s.dense(p.W[:5], 1, 5), s.dense(p.bias, 5)); err == nil || !strings.Contains(err.Error(), "shape") {
		t.Errorf("SetParams with W of the wrong shape: %v", err)
	}
	_, err := s.b.Open(backend.Config{Spec: graph.Spec{B: 0, N: 3, T: 5, DType: s.dt}})
	if err == nil {
		t.Errorf("Open with B = 0: no error")
	}
}

// softmaxJacobian checks ∂p/∂z = diag(p) − p·pᵀ by central differences of
// the backend's own softmax.
func (s *suite) softmaxJacobian(t *testing.T) {
	z := []float64{0.3, -1.2, 2.0, 0.7}
	T := len(z)
	p, _ := s.softmaxOf(t, z, 0)
	const h = 1e-5
	for j := 0; j < T; j++ {
		zp, zm := append([]float64(nil), z...), append([]float64(nil), z...)
		zp[j] += h
		zm[j] -= h
		pp, _ := s.softmaxOf(t, zp, 0)
		pm, _ := s.softmaxOf(t, zm, 0)
		col, want := make([]float64, T), make([]float64, T)
		for k := 0; k < T; k++ {
			col[k] = (pp[k] - pm[k]) / (2 * h)
			want[k] = -p[k] * p[j]
			if k == j {
				want[k] += p[k]
			}
		}
		expectClose(t, fmt.Sprintf("∂p/∂z_%d", j), col, want, tolFD)
	}
}

// finiteDifferences checks dW, db and dx against central differences of the
// backend's own loss, for several options.
func (s *suite) finiteDifferences(t *testing.T) {
	for i, c := range optionCases(4) {
		if i%3 != 0 && !strings.Contains(c.name, "weights+ignore") && !strings.Contains(c.name, "soft+") {
			continue // a spread of options keeps this quick
		}
		t.Run(c.name, func(t *testing.T) {
			p := random(uint64(200+i), 3, 3, 4, c.o)
			l := s.open(t, p, all, backend.Optimizer{})
			y := s.dense(p.targets, p.targetShape()...)
			base, err := l.Compute(s.dense(p.x, p.B, p.N), y)
			if err != nil {
				t.Fatal(err)
			}
			loss := func() float64 {
				if err := l.SetParams(s.dense(p.W, p.N, p.T), s.dense(p.bias, p.T)); err != nil {
					t.Fatal(err)
				}
				r, err := l.Compute(s.dense(p.x, p.B, p.N), y)
				if err != nil {
					t.Fatal(err)
				}
				return r.Loss
			}
			const h = 1e-5
			for _, v := range []struct {
				name string
				vals []float64
				grad *tensor.Dense
			}{{"dW", p.W, base.DW}, {"db", p.bias, base.DB}, {"dx", p.x, base.DX}} {
				fd := make([]float64, len(v.vals))
				for k := range v.vals {
					old := v.vals[k]
					v.vals[k] = old + h
					up := loss()
					v.vals[k] = old - h
					down := loss()
					v.vals[k] = old
					fd[k] = (up - down) / (2 * h)
				}
				expectClose(t, v.name+" vs finite differences", f64(v.grad), fd, tolFD)
			}
		})
	}
}
