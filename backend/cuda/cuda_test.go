//go:build gpu

package cuda

// Tests of the CUDA backend. They need a GPU: a gpu test binary does not
// load without libcuda.so.1, and gorgonia.org/cu exits at init when cuInit
// fails; with a driver and a device that cannot be used, they skip with the
// reason.
//
// Tolerances (bound = Abs + Rel·max|reference|, as conformance.Close):
//   - kernel against graph.RowLoss/RowGrad on the same inputs: the kernel
//     computes in float64 and rounds once to the dtype: float64 Rel 1e-12,
//     float32 Rel 2e-7 (one rounding, 2⁻²⁴ ≈ 6e-8, of values ≤ max|ref|).
//   - CPU against CUDA through the whole layer (parity): float64 Rel 1e-10;
//     float32 Rel 1e-4: the two sum the x·W, xᵀ·G and G·Wᵀ products in
//     different orders in float32 (cuBLAS against Gorgonia's gonum), and
//     rows of scale up to 1e3 amplify the logits' rounding in the loss.

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"dsx/backend"
	"dsx/backend/conformance"
	_ "dsx/cpu"
	"dsx/graph"

	"gorgonia.org/cu"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func requireGPU(t *testing.T) {
	t.Helper()
	if err := setup(); err != nil {
		t.Skipf("no usable GPU: %v", err)
	}
}

var sizes = []int{3, 1000, 8003, 50257}

// lossCases are every option of graph.LossOptions, alone and combined.
func lossCases(T int) map[string]graph.LossOptions {
	w := make([]float64, T)
	r := rand.New(rand.NewPCG(uint64(T), 7))
	for i := range w {
		w[i] = 0.25 + 2*r.Float64()
	}
	return map[string]graph.LossOptions{
		"mean":                 {},
		"sum":                  {Reduction: graph.Sum},
		"none":                 {Reduction: graph.None},
		"weights":              {ClassWeights: w},
		"ignore":               {UseIgnoreIndex: true, IgnoreIndex: -100},
		"smoothing":            {LabelSmoothing: 0.1},
		"weights+smooth+none":  {ClassWeights: w, LabelSmoothing: 0.2, Reduction: graph.None, UseIgnoreIndex: true, IgnoreIndex: 0},
		"soft":                 {SoftTargets: true},
		"soft+weights+smooth":  {SoftTargets: true, ClassWeights: w, LabelSmoothing: 0.15, Reduction: graph.Sum},
		"soft+none":            {SoftTargets: true, Reduction: graph.None},
		"all-ignored-mean":     {UseIgnoreIndex: true, IgnoreIndex: 1 << 20},
		"ignore+weights+sum":   {UseIgnoreIndex: true, IgnoreIndex: -1, ClassWeights: w, Reduction: graph.Sum},
		"weights+smooth+mean":  {ClassWeights: w, LabelSmoothing: 0.3},
		"full-smoothing(ε=1)":  {LabelSmoothing: 1},
		"soft+ignore-unused":   {SoftTargets: true, UseIgnoreIndex: true, IgnoreIndex: 2},
		"ignore-row-with-mean": {UseIgnoreIndex: true, IgnoreIndex: 0},
	}
}

// rowScales gives rows of very different scale.
var rowScales = []float64{1e-3, 1, 30, 1000, 0.5, 5, 200}

// targetsFor draws rows targets for o: labels (some ignored), or
// probabilities.
func targetsFor(r *rand.Rand, rows, T int, o graph.LossOptions, name string) []float64 {
	if o.SoftTargets {
		tg := make([]float64, rows*T)
		for i := 0; i < rows; i++ {
			s := 0.0
			for c := 0; c < T; c++ {
				v := r.Float64()
				if r.IntN(4) == 0 {
					v = 0
				}
				tg[i*T+c] = v
				s += v
			}
			for c := 0; c < T; c++ {
				tg[i*T+c] /= s + 1e-300
			}
		}
		return tg
	}
	tg := make([]float64, rows)
	for i := range tg {
		tg[i] = float64(r.IntN(T))
		if o.UseIgnoreIndex && i%3 == 1 {
			tg[i] = float64(o.IgnoreIndex)
		}
		if strings.HasPrefix(name, "all-ignored") {
			tg[i] = float64(o.IgnoreIndex)
		}
	}
	return tg
}

func toF[F graph.Float](v []float64) []F {
	out := make([]F, len(v))
	for i, x := range v {
		out[i] = F(x)
	}
	return out
}

func f64s[F graph.Float](v []F) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// TestXentKernel runs the fused kernels (block per row, and the tiled one
// where T ≤ 4096) on logits whose rows have a stride ld > T, with NaN in the
// padding past the T valid columns and in a whole row past the batch, and
// compares them with the float64 reference graph.RowLoss / graph.RowGrad on
// the same inputs.
func TestXentKernel(t *testing.T) {
	requireGPU(t)
	for _, T := range append([]int{32, 33, 64, 65, 512, 513, 1024, 1025, 3000, 4096}, sizes...) {
		for name, o := range lossCases(T) {
			for _, f32 := range []bool{true, false} {
				for _, warp := range []bool{false, true} {
					if tmax, _, _ := xentTile(T); warp && tmax == 0 {
						continue
					}
					t.Run(fmt.Sprintf("T=%d/%s/f32=%v/warp=%v", T, name, f32, warp), func(t *testing.T) {
						var err error
						if f32 {
							err = kernelCase[float32](T, o, name, warp)
						} else {
							err = kernelCase[float64](T, o, name, warp)
						}
						if err != nil {
							t.Fatal(err)
						}
					})
				}
			}
		}
	}
}

func kernelCase[F graph.Float](T int, o graph.LossOptions, name string, warp bool) error {
	const rows = 5
	ld := T + 7
	r := rand.New(rand.NewPCG(uint64(T), uint64(len(name))))
	nan := F(math.NaN())
	z := make([]F, (rows+1)*ld) // one poisoned row past the batch
	for i := range z {
		z[i] = nan
	}
	for i := 0; i < rows; i++ {
		for c := 0; c < T; c++ {
			z[i*ld+c] = F(r.NormFloat64() * rowScales[i%len(rowScales)])
		}
	}
	tg := toF[F](targetsFor(r, rows, T, o, name))
	var esize int64 = 8
	f32 := false
	if _, ok := any(F(0)).(float32); ok {
		esize, f32 = 4, true
	}
	kn := func(b string) string {
		if f32 {
			return b + "_f32"
		}
		return b + "_f64"
	}
	// Reference.
	dense := make([]F, rows*T)
	for i := 0; i < rows; i++ {
		copy(dense[i*T:(i+1)*T], z[i*ld:i*ld+T])
	}
	scale := graph.Scale(&o, graph.Denominator(tg, rows, &o))
	wantLoss := make([]float64, rows)
	wantGrad := make([]F, rows*T)
	for i := 0; i < rows; i++ {
		y, soft := -1, []F(nil)
		if o.SoftTargets {
			soft = tg[i*T : (i+1)*T]
		} else {
			y = int(tg[i])
		}
		l, lse := graph.RowLoss(dense[i*T:(i+1)*T], y, soft, &o)
		wantLoss[i] = l
		graph.RowGrad(wantGrad[i*T:(i+1)*T], dense[i*T:(i+1)*T], lse, y, soft, &o, scale)
	}
	wantTotal := 0.0
	for _, l := range wantLoss {
		wantTotal += l
	}
	wantTotal *= scale

	var mem memory
	bz := mem.request("z", int64(len(z))*esize)
	btg := mem.request("targets", int64(len(tg))*esize)
	bw := mem.request("weights", int64(T)*8)
	brl := mem.request("rowloss", rows*8)
	bl := mem.request("losses", rows*esize)
	bs := mem.request("scale", 8)
	bloss := mem.request("loss", 8)
	got := make([]F, len(z))
	gotLoss := make([]float64, rows)
	gotLosses := make([]F, rows)
	var gotTotal, gotScale [1]float64
	err := onDevice(func() error {
		if err := mem.alloc("kernel test"); err != nil {
			return err
		}
		defer mem.free()
		if err := cu.MemcpyHtoD(bz.ptr, hostPtr(z), bz.bytes); err != nil {
			return err
		}
		if err := cu.MemcpyHtoD(btg.ptr, hostPtr(tg), btg.bytes); err != nil {
			return err
		}
		wp := cu.DevicePtr(0)
		wsum := float64(T)
		if o.ClassWeights != nil {
			if err := cu.MemcpyHtoD(bw.ptr, hostPtr(o.ClassWeights), bw.bytes); err != nil {
				return err
			}
			wp, wsum = bw.ptr, 0
			for _, w := range o.ClassWeights {
				wsum += w
			}
		}
		flags := int64(flagGrad)
		if o.SoftTargets {
			flags |= flagSoft
		}
		if o.UseIgnoreIndex {
			flags |= flagIgnore
		}
		if o.Reduction == graph.Mean {
			flags |= flagMean
		}
		shmem := 0
		if int64(T)*esize <= cacheBytes {
			flags |= flagCache
			shmem = T * int(esize)
		}
		ks := newLauncher(kn("xent_scale"), ptrArg(btg.ptr), ptrArg(wp), ptrArg(bs.ptr), intArg(rows), intArg(int64(T)), intArg(flags), intArg(int64(o.IgnoreIndex)))
		if err := ks.launch(1, 1, 256, 0); err != nil {
			return err
		}
		xname, grid, block, sh := kn("xent"), rows, min(512, max(32, ceilDiv(T, 32)*32)), shmem
		if warp {
			// Fewer threads than rows, so that the kernel strides over the
			// rows (the layer launches a row per warp or block): one block
			// of two warps, or two blocks of one row.
			xname, _, block, sh = xentKernel(T, f32, shmem)
			grid = 2
			if _, threads, _ := xentTile(T); threads == 32 {
				grid = 1
			}
		}
		kx := newLauncher(xname, ptrArg(bz.ptr), intArg(int64(ld)), ptrArg(btg.ptr), intArg(int64(T)), ptrArg(wp),
			ptrArg(brl.ptr), ptrArg(bl.ptr), ptrArg(bs.ptr), intArg(rows), intArg(int64(T)), intArg(flags),
			intArg(int64(o.IgnoreIndex)), fltArg(o.LabelSmoothing), fltArg(wsum), fltArg(1), ptrArg(0))
		if err := kx.launch(grid, 1, block, sh); err != nil {
			return err
		}
		kr := newLauncher("xent_reduce", ptrArg(brl.ptr), ptrArg(bs.ptr), ptrArg(bloss.ptr), intArg(rows))
		if err := kr.launch(1, 1, 256, 0); err != nil {
			return err
		}
		for _, c := range []struct {
			dst   any
			src   *dbuf
			bytes int64
		}{{got, bz, bz.bytes}, {gotLoss, brl, brl.bytes}, {gotLosses, bl, bl.bytes}, {gotTotal[:], bloss, 8}, {gotScale[:], bs, 8}} {
			var err error
			switch d := c.dst.(type) {
			case []float32:
				err = cu.MemcpyDtoH(hostPtr(d), c.src.ptr, c.bytes)
			case []float64:
				err = cu.MemcpyDtoH(hostPtr(d), c.src.ptr, c.bytes)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	relG, relL := 1e-12, 1e-12
	if f32 {
		relG, relL = 2e-7, 2e-7
	}
	if math.Abs(gotScale[0]-scale) > 1e-15*math.Max(1, scale) {
		return fmt.Errorf("scale %v, want %v", gotScale[0], scale)
	}
	if err := conformance.Close(gotLoss, wantLoss, conformance.Tol{Abs: 1e-300, Rel: 1e-12, Why: "float64 in the kernel"}); err != nil {
		return fmt.Errorf("row losses: %v", err)
	}
	if err := conformance.Close(f64s(gotLosses), wantLoss, conformance.Tol{Abs: 1e-300, Rel: relL, Why: "one rounding to the dtype"}); err != nil {
		return fmt.Errorf("row losses in the dtype: %v", err)
	}
	if err := conformance.Close(gotTotal[:], []float64{wantTotal}, conformance.Tol{Abs: 1e-300, Rel: 1e-12, Why: "float64 sums in another order"}); err != nil {
		return fmt.Errorf("reduced loss: %v", err)
	}
	dense = dense[:0]
	for i := 0; i < rows; i++ {
		dense = append(dense, got[i*ld:i*ld+T]...)
	}
	if err := conformance.Close(f64s(dense), f64s(wantGrad), conformance.Tol{Abs: 1e-300, Rel: relG, Why: "one rounding to the dtype"}); err != nil {
		return fmt.Errorf("gradient: %v", err)
	}
	for i := 0; i < rows+1; i++ {
		lo := T
		if i == rows {
			lo = 0
		}
		for c := lo; c < ld; c++ {
			if v := got[i*ld+c]; !math.IsNaN(float64(v)) {
				return fmt.Errorf("row %d, column %d past the valid block was written: %v", i, c, v)
			}
		}
	}
	return nil
}

type problem struct {
	W, b, x, tg []float64
}

func newProblem(seed uint64, B, N, T int, o graph.LossOptions, name string) problem {
	r := rand.New(rand.NewPCG(seed, uint64(T)))
	p := problem{W: make([]float64, N*T), b: make([]float64, T), x: make([]float64, B*N)}
	for i := range p.W {
		p.W[i] = r.NormFloat64()
	}
	for i := range p.b {
		p.b[i] = r.NormFloat64()
	}
	for i := 0; i < B; i++ {
		for j := 0; j < N; j++ {
			p.x[i*N+j] = r.NormFloat64() * rowScales[i%len(rowScales)] / math.Sqrt(float64(N))
		}
	}
	p.tg = targetsFor(r, B, T, o, name)
	return p
}

func dense(dt tensor.Dtype, v []float64, shape ...int) *tensor.Dense {
	if dt == tensor.Float32 {
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(toF[float32](v)))
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float64(nil), v...)))
}

func vals(t *tensor.Dense) []float64 {
	if t == nil {
		return nil
	}
	switch d := t.Data().(type) {
	case []float32:
		return f64s(d)
	case []float64:
		return append([]float64(nil), d...)
	}
	return nil
}

func open(t *testing.T, name string, cfg backend.Config) backend.Layer {
	t.Helper()
	b, err := backend.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	l, err := b.Open(cfg)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func parityTol(dt tensor.Dtype) conformance.Tol {
	if dt == tensor.Float32 {
		return conformance.TolParityF32
	}
	return conformance.TolParityF64
}

// TestParity: the CPU and CUDA backends agree on the loss, per-row losses,
// dW, db, dx and the logits, for every option, T = 3, 1000, 8003, 50257 and
// both dtypes, on rows of very different scale, for a full batch and a
// smaller one.
func TestParity(t *testing.T) {
	requireGPU(t)
	const B, N = 7, 6
	for _, T := range sizes {
		for name, o := range lossCases(T) {
			for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
				t.Run(fmt.Sprintf("T=%d/%s/%v", T, name, dt), func(t *testing.T) {
					cfg := backend.Config{Spec: graph.Spec{B: B, N: N, T: T, DType: dt, Loss: o, Want: graph.Want{W: true, B: true, X: true}}}
					lc, lg := open(t, "cpu", cfg), open(t, "cuda", cfg)
					tol := parityTol(dt)
					for _, rows := range []int{B, 3} {
						p := newProblem(uint64(rows), rows, N, T, o, name)
						compareLayers(t, lc, lg, p, o, rows, N, T, dt, tol, tol, tol)
					}
				})
			}
		}
	}
}

// compareLayers sets the same parameters on the CPU layer lc and the CUDA
// layer lg, runs Compute and Logits on one batch of problem p on both, and
// checks every output against the CPU's: dW with tolW, dx with tolX, the
// rest with tol.
func compareLayers(t *testing.T, lc, lg backend.Layer, p problem, o graph.LossOptions, rows, N, T int, dt tensor.Dtype, tol, tolW, tolX conformance.Tol) {
	t.Helper()
	shape := []int{rows}
	if o.SoftTargets {
		shape = append(shape, T)
	}
	for _, l := range []backend.Layer{lc, lg} {
		if err := l.SetParams(dense(dt, p.W, N, T), dense(dt, p.b, T)); err != nil {
			t.Fatal(err)
		}
	}
	x, tg := dense(dt, p.x, rows, N), dense(dt, p.tg, shape...)
	rc, err := lc.Compute(x, tg)
	if err != nil {
		t.Fatal(err)
	}
	rg, err := lg.Compute(x, tg)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what      string
		got, want []float64
		tol       conformance.Tol
	}{{"loss", []float64{rg.Loss}, []float64{rc.Loss}, tol}, {"losses", vals(rg.Losses), vals(rc.Losses), tol},
		{"dW", vals(rg.DW), vals(rc.DW), tolW}, {"db", vals(rg.DB), vals(rc.DB), tol}, {"dx", vals(rg.DX), vals(rc.DX), tolX}} {
		if err := conformance.Close(c.got, c.want, c.tol); err != nil {
			t.Errorf("rows=%d %s: %v", rows, c.what, err)
		}
	}
	zc, err := lc.Logits(x)
	if err != nil {
		t.Fatal(err)
	}
	zg, err := lg.Logits(x)
	if err != nil {
		t.Fatal(err)
	}
	if err := conformance.Close(vals(zg), vals(zc), tol); err != nil {
		t.Errorf("rows=%d logits: %v", rows, err)
	}
}

// TestStepParity: a few optimizer steps give the same parameters on both
// devices.
func TestStepParity(t *testing.T) {
	requireGPU(t)
	const B, N, T = 16, 12, 10
	opts := map[string]backend.Optimizer{
		"sgd":          {Kind: "sgd", LR: 0.1},
		"sgd-momentum": {Kind: "sgd", LR: 0.05, Momentum: 0.9, WeightDecay: 1e-3},
		"adam":         {Kind: "adam", LR: 1e-2, WeightDecay: 1e-2},
		"adamw":        {Kind: "adam", LR: 1e-2, WeightDecay: 1e-2, Decoupled: true, Beta1: 0.8, Beta2: 0.99, Eps: 1e-6},
	}
	for name, opt := range opts {
		for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
			t.Run(name+"/"+dt.String(), func(t *testing.T) {
				o := graph.LossOptions{LabelSmoothing: 0.05}
				cfg := backend.Config{Spec: graph.Spec{B: B, N: N, T: T, DType: dt, Loss: o, Want: graph.Want{W: true, B: true}}, Optimizer: opt}
				lc, lg := open(t, "cpu", cfg), open(t, "cuda", cfg)
				p := newProblem(3, B, N, T, o, name)
				for _, l := range []backend.Layer{lc, lg} {
					if err := l.SetParams(dense(dt, p.W, N, T), dense(dt, p.b, T)); err != nil {
						t.Fatal(err)
					}
				}
				tol := parityTol(dt)
				for step := 0; step < 5; step++ {
					q := newProblem(uint64(10+step), B, N, T, o, name)
					x, tg := dense(dt, q.x, B, N), dense(dt, q.tg, B)
					a, err := lc.Step(x, tg)
					if err != nil {
						t.Fatal(err)
					}
					b, err := lg.Step(x, tg)
					if err != nil {
						t.Fatal(err)
					}
					if err := conformance.Close([]float64{b}, []float64{a}, tol); err != nil {
						t.Errorf("step %d loss: %v", step, err)
					}
				}
				Wc, bc, _ := lc.Params()
				Wg, bg, err := lg.Params()
				if err != nil {
					t.Fatal(err)
				}
				if err := conformance.Close(vals(Wg), vals(Wc), tol); err != nil {
					t.Errorf("W after 5 steps: %v", err)
				}
				if err := conformance.Close(vals(bg), vals(bc), tol); err != nil {
					t.Errorf("b after 5 steps: %v", err)
				}
			})
		}
	}
}

// TestTrainAccuracy trains the same classifier on both devices (synthetic
// Gaussian classes, Adam) and compares their test accuracy: within 0.5
// points.
func TestTrainAccuracy(t *testing.T) {
	requireGPU(t)
	const N, T, B, train, test = 32, 10, 64, 4096, 2048
	r := rand.New(rand.NewPCG(1, 2))
	centers := make([]float64, T*N)
	for i := range centers {
		centers[i] = r.NormFloat64() * 0.6
	}
	gen := func(n int) ([]float64, []float64) {
		x, y := make([]float64, n*N), make([]float64, n)
		for i := 0; i < n; i++ {
			c := r.IntN(T)
			y[i] = float64(c)
			for j := 0; j < N; j++ {
				x[i*N+j] = centers[c*N+j] + r.NormFloat64()
			}
		}
		return x, y
	}
	xtr, ytr := gen(train)
	xte, yte := gen(test)
	acc := map[string]float64{}
	for _, dev := range []string{"cpu", "cuda"} {
		cfg := backend.Config{Spec: graph.Spec{B: B, N: N, T: T, DType: tensor.Float32, Want: graph.Want{W: true, B: true}},
			Optimizer: backend.Optimizer{Kind: "adam", LR: 1e-2}}
		l := open(t, dev, cfg)
		for epoch := 0; epoch < 3; epoch++ {
			for i := 0; i+B <= train; i += B {
				if _, err := l.Step(dense(tensor.Float32, xtr[i*N:(i+B)*N], B, N), dense(tensor.Float32, ytr[i:i+B], B)); err != nil {
					t.Fatal(err)
				}
			}
		}
		right := 0
		for i := 0; i < test; i += B {
			z, err := l.Logits(dense(tensor.Float32, xte[i*N:(i+B)*N], B, N))
			if err != nil {
				t.Fatal(err)
			}
			zv := vals(z)
			for k := 0; k < B; k++ {
				best := 0
				for c := 1; c < T; c++ {
					if zv[k*T+c] > zv[k*T+best] {
						best = c
					}
				}
				if float64(best) == yte[i+k] {
					right++
				}
			}
		}
		acc[dev] = 100 * float64(right) / test
	}
	t.Logf("test accuracy: cpu %.2f%%, cuda %.2f%%", acc["cpu"], acc["cuda"])
	if d := math.Abs(acc["cpu"] - acc["cuda"]); d > 0.5 {
		t.Errorf("accuracy differs by %.2f points (cpu %.2f, cuda %.2f)", d, acc["cpu"], acc["cuda"])
	}
}

// TestNotImplemented: a node the backend cannot lower is an error wrapping
// backend.ErrNotImplemented that names the node, not CPU work.
func TestNotImplemented(t *testing.T) {
	requireGPU(t)
	spec := graph.Spec{B: 4, N: 3, T: 5, DType: tensor.Float32, Want: graph.Want{W: true}}
	g, err := graph.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	th, err := G.Tanh(g.Logits)
	if err != nil {
		t.Fatal(err)
	}
	lw := &lowerer{cfg: backend.Config{Spec: spec}, g: g, mem: &memory{}, esize: 4, f32: true, bufs: map[*G.Node]*dbuf{}, named: map[string]*dbuf{}, fused: map[*G.Node]bool{}}
	_, err = lw.lower(g.G.SubgraphRoots(th))
	if !errors.Is(err, backend.ErrNotImplemented) || !strings.Contains(strings.ToLower(err.Error()), "tanh") {
		t.Fatalf("got %v, want ErrNotImplemented naming the tanh node", err)
	}
	t.Log(err)
}

// TestOutOfMemory: asking for more than the device has is a clear error
// (memory.alloc is what Open uses; graph.Build would need the same W on the
// host, so a whole layer that large is not opened here).
func TestOutOfMemory(t *testing.T) {
	requireGPU(t)
	var m memory
	m.request("W", 1<<40)
	err := onDevice(func() error { return m.alloc("layer B×N×T = 8×1048576×131072 float64") })
	if !errors.Is(err, backend.ErrOutOfMemory) || !strings.Contains(err.Error(), "asked for 1024.00 GiB") || !strings.Contains(err.Error(), "free") {
		t.Fatalf("got %v, want ErrOutOfMemory saying how much was asked and is free", err)
	}
	t.Log(err)
}

// TestMemory: steps allocate no device memory; Close frees it all and is
// idempotent.
func TestMemory(t *testing.T) {
	requireGPU(t)
	freeNow := func() int64 {
		var f int64
		if err := onDevice(func() error {
			var err error
			f, _, err = cu.MemInfo()
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return f
	}
	const B, N, T = 256, 784, 8003
	cfg := backend.Config{Spec: graph.Spec{B: B, N: N, T: T, DType: tensor.Float32, Want: graph.Want{W: true, B: true, X: true}},
		Optimizer: backend.Optimizer{Kind: "adam", LR: 1e-3}}
	b, _ := backend.Get("cuda")
	p := newProblem(1, B, N, T, graph.LossOptions{}, "mem")
	x, tg := dense(tensor.Float32, p.x, B, N), dense(tensor.Float32, p.tg, B)
	// A first layer warms cuBLAS up (its workspace stays with the handle).
	warm, err := b.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := warm.Step(x, tg); err != nil {
		t.Fatal(err)
	}
	warm.Close()
	before := freeNow()
	l, err := b.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Step(x, tg); err != nil {
		t.Fatal(err)
	}
	opened := freeNow()
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := l.Step(x, tg); err != nil {
			t.Fatal(err)
		}
	})
	if after := freeNow(); after != opened {
		t.Errorf("device memory free changed across steps: %d → %d bytes", opened, after)
	}
	t.Logf("layer %d×%d×%d: %s of device memory; %.0f Go allocations per step", B, N, T, human(before-opened), allocs)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if after := freeNow(); after < before {
		t.Errorf("Close left %d bytes allocated", before-after)
	}
	if _, err := l.Step(x, tg); err == nil {
		t.Error("Step after Close succeeded")
	}
}

// TestDevices lists the GPUs.
func TestDevices(t *testing.T) {
	requireGPU(t)
	ds, err := Backend{}.Devices()
	if err != nil || len(ds) == 0 {
		t.Fatalf("devices %v, %v", ds, err)
	}
	for _, d := range ds {
		t.Logf("%+v", d)
		if d.Name == "" || d.MemoryBytes == 0 || d.Compute == "" || d.Driver == "" {
			t.Errorf("incomplete device %+v", d)
		}
	}
}
