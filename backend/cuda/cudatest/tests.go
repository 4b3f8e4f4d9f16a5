package cudatest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"dsx/backend"
	"dsx/backend/kit"
	"dsx/cpu"
	"dsx/graph"
	"dsx/internal/dense"
	"dsx/internal/tol"

	"gorgonia.org/tensor"
)

// Parity: the CPU and CUDA backends agree on the loss, per-row losses,
// dW, db, dx and the logits, for every option, T = 3, 1000, 8003, 50257 and
// both dtypes, on rows of very different scale, for a full batch and a
// smaller one.
func Parity(t *testing.T, dev string) {
	const B, N = 7, 6
	for _, T := range Sizes {
		for name, o := range LossCases(T) {
			for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
				t.Run(fmt.Sprintf("T=%d/%s/%v", T, name, dt), func(t *testing.T) {
					cfg := backend.Config{Spec: graph.Spec{B: B, N: N, T: T, DType: dt, Loss: o, Want: graph.Want{DW: true, DB: true, DX: true}}}
					lc, lg := open(t, "cpu", cfg), open(t, dev, cfg)
					tl := parityTol(dt)
					for _, rows := range []int{B, 3} {
						p := NewProblem(uint64(rows), rows, N, T, o, name)
						compareLayers(t, lc, lg, p, o, rows, N, T, dt, tl, tl, tl)
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
func compareLayers(t *testing.T, lc, lg backend.Layer, p Problem, o graph.LossOptions, rows, N, T int, dt tensor.Dtype, tl, tolW, tolX tol.Tol) {
	t.Helper()
	shape := []int{rows}
	if o.SoftTargets {
		shape = append(shape, T)
	}
	for _, l := range []backend.Layer{lc, lg} {
		if err := l.SetParams(dense.New(dt, p.W, N, T), dense.New(dt, p.B, T)); err != nil {
			t.Fatal(err)
		}
	}
	x, tg := dense.New(dt, p.X, rows, N), dense.New(dt, p.Tg, shape...)
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
		tl        tol.Tol
	}{{"loss", []float64{rg.Loss}, []float64{rc.Loss}, tl}, {"losses", dense.F64(rg.Losses), dense.F64(rc.Losses), tl},
		{"dW", dense.F64(rg.DW), dense.F64(rc.DW), tolW}, {"db", dense.F64(rg.DB), dense.F64(rc.DB), tl}, {"dx", dense.F64(rg.DX), dense.F64(rc.DX), tolX}} {
		if err := tol.Close(c.got, c.want, c.tl); err != nil {
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
	if err := tol.Close(dense.F64(zg), dense.F64(zc), tl); err != nil {
		t.Errorf("rows=%d logits: %v", rows, err)
	}
}

// StepParity: a few optimizer steps give the same parameters on both
// devices.
func StepParity(t *testing.T, dev string) {
	const B, N, T = 16, 12, 10
	opts := map[string]backend.Optimizer{
		"sgd":          {Kind: backend.SGD, LR: 0.1},
		"sgd-momentum": {Kind: backend.SGD, LR: 0.05, Momentum: 0.9, WeightDecay: 1e-3},
		"adam":         {Kind: backend.Adam, LR: 1e-2, WeightDecay: 1e-2},
		"adamw":        {Kind: backend.Adam, LR: 1e-2, WeightDecay: 1e-2, Decoupled: true, Beta1: 0.8, Beta2: 0.99, Eps: 1e-6},
	}
	for name, opt := range opts {
		for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
			t.Run(name+"/"+dt.String(), func(t *testing.T) {
				o := graph.LossOptions{LabelSmoothing: 0.05}
				cfg := backend.Config{Spec: graph.Spec{B: B, N: N, T: T, DType: dt, Loss: o, Want: graph.Want{DW: true, DB: true}}, Optimizer: opt}
				lc, lg := open(t, "cpu", cfg), open(t, dev, cfg)
				p := NewProblem(3, B, N, T, o, name)
				for _, l := range []backend.Layer{lc, lg} {
					if err := l.SetParams(dense.New(dt, p.W, N, T), dense.New(dt, p.B, T)); err != nil {
						t.Fatal(err)
					}
				}
				tl := parityTol(dt)
				for step := 0; step < 5; step++ {
					q := NewProblem(uint64(10+step), B, N, T, o, name)
					x, tg := dense.New(dt, q.X, B, N), dense.New(dt, q.Tg, B)
					a, err := lc.Step(x, tg)
					if err != nil {
						t.Fatal(err)
					}
					b, err := lg.Step(x, tg)
					if err != nil {
						t.Fatal(err)
					}
					if err := tol.Close([]float64{b}, []float64{a}, tl); err != nil {
						t.Errorf("step %d loss: %v", step, err)
					}
				}
				Wc, bc, _ := lc.Params()
				Wg, bg, err := lg.Params()
				if err != nil {
					t.Fatal(err)
				}
				if err := tol.Close(dense.F64(Wg), dense.F64(Wc), tl); err != nil {
					t.Errorf("W after 5 steps: %v", err)
				}
				if err := tol.Close(dense.F64(bg), dense.F64(bc), tl); err != nil {
					t.Errorf("b after 5 steps: %v", err)
				}
			})
		}
	}
}

// TrainAccuracy trains the same classifier on both devices (synthetic
// Gaussian classes, Adam) and compares their test accuracy: within 0.5
// points.
func TrainAccuracy(t *testing.T, dev string) {
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
	for _, d := range []string{"cpu", dev} {
		cfg := backend.Config{Spec: graph.Spec{B: B, N: N, T: T, DType: tensor.Float32, Want: graph.Want{DW: true, DB: true}},
			Optimizer: backend.Optimizer{Kind: backend.Adam, LR: 1e-2}}
		l := open(t, d, cfg)
		for epoch := 0; epoch < 3; epoch++ {
			for i := 0; i+B <= train; i += B {
				if _, err := l.Step(dense.New(tensor.Float32, xtr[i*N:(i+B)*N], B, N), dense.New(tensor.Float32, ytr[i:i+B], B)); err != nil {
					t.Fatal(err)
				}
			}
		}
		right := 0
		for i := 0; i < test; i += B {
			z, err := l.Logits(dense.New(tensor.Float32, xte[i*N:(i+B)*N], B, N))
			if err != nil {
				t.Fatal(err)
			}
			zv := dense.F64(z)
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
		acc[d] = 100 * float64(right) / test
	}
	t.Logf("test accuracy: cpu %.2f%%, cuda %.2f%%", acc["cpu"], acc[dev])
	if d := math.Abs(acc["cpu"] - acc[dev]); d > 0.5 {
		t.Errorf("accuracy differs by %.2f points (cpu %.2f, cuda %.2f)", d, acc["cpu"], acc[dev])
	}
}

// Variants: the chunked batch, the unfused softmax-cross-entropy and the
// TF32 and BF16 matrix modes agree with the CPU backend on the loss,
// per-row losses, dW, db, dx and the logits. Chunked and unfused use the
// float32 parity tolerance, TF32 tol.TF32; BF16 runs on inputs
// exactly representable in bfloat16, so everything but dW and dx is held to
// the float32 parity bound and those two to tol.BF16, the bound
// of dz's one rounding. bfloat16 storage (StorageBF16: x, dx and W's copy
// in bfloat16, dz written in bfloat16 by the loss kernel) is held to the same
// bounds, and dx, which it stores in bfloat16, to one more rounding
// (u = 2⁻⁸ of its largest element). Vocabulary tiles (VocabTile 300: one
// tile at T = 3, four with a short last one at T = 1000) change only the
// order of float64 sums and are held to the same bounds as whole rows.
//
// sizes are the class counts T to run (3, 1000 and 50257 when none are
// given).
func Variants(t *testing.T, dev string, sizes ...int) { VariantsTiles(t, dev, 0, sizes...) }

// VariantsTiles is Variants with the vocabulary-tile variants' tiles
// widened, where T needs more than maxTiles of 300 columns, to the fewest
// that keep maxTiles tiles (0: no limit): the emulator, which runs the
// kernels' own code on the host, checks the tile loop at T = 12000 over 8
// tiles rather than 40.
func VariantsTiles(t *testing.T, dev string, maxTiles int, sizes ...int) {
	if len(sizes) == 0 {
		sizes = []int{3, 1000, 50257}
	}
	const B, N = 7, 6
	variants := map[string]backend.Config{
		"chunk=3":                {ChunkRows: 3},
		"chunk=1":                {ChunkRows: 1},
		"chunk=auto(2)":          {MemoryBudget: 2 * 1000 * 4},
		"unfused":                {Xent: backend.Unfused},
		"unfused+chunk=2":        {Xent: backend.Unfused, ChunkRows: 2},
		"tf32":                   {MatMode: backend.TF32},
		"bf16":                   {MatMode: backend.BF16},
		"bf16-storage":           {Storage: backend.StorageBF16},
		"bf16-storage+c=4":       {Storage: backend.StorageBF16, ChunkRows: 4},
		"vocab=300":              {VocabTile: 300},
		"vocab=300+chunk=3":      {VocabTile: 300, ChunkRows: 3},
		"vocab=300+bf16":         {VocabTile: 300, MatMode: backend.BF16},
		"vocab=300+bf16-storage": {VocabTile: 300, Storage: backend.StorageBF16, ChunkRows: 5},
		"bf16+chunk=4":           {MatMode: backend.BF16, ChunkRows: 4},
		"tf32+unfused+c=5":       {MatMode: backend.TF32, Xent: backend.Unfused, ChunkRows: 5},
	}
	for _, T := range sizes {
		for name, o := range LossCases(T) {
			for vname, v := range variants {
				dt := tensor.Float32
				t.Run(fmt.Sprintf("T=%d/%s/%s", T, name, vname), func(t *testing.T) {
					cfg := backend.Config{Spec: graph.Spec{B: B, N: N, T: T, DType: dt, Loss: o, Want: graph.Want{DW: true, DB: true, DX: true}}}
					vc := cfg
					vc.ChunkRows, vc.MemoryBudget, vc.Xent, vc.MatMode, vc.Storage, vc.VocabTile = v.ChunkRows, v.MemoryBudget, v.Xent, v.MatMode, v.Storage, v.VocabTile
					if maxTiles > 0 && vc.VocabTile > 0 && (T+vc.VocabTile-1)/vc.VocabTile > maxTiles {
						vc.VocabTile = (T + maxTiles - 1) / maxTiles
					}
					lg, err := get(t, dev).Open(vc)
					if v.Xent == backend.Unfused && (o.SoftTargets || o.LabelSmoothing != 0 || o.Softcap != 0 || o.ZLoss != 0) {
						if !errors.Is(err, backend.ErrNotImplemented) {
							t.Fatalf("unfused with %s: got %v, want ErrNotImplemented", name, err)
						}
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					defer lg.Close()
					if v.MatMode == backend.TF32 && o.Softcap != 0 {
						// TolTF32 bounds the products' rounding passed on
						// linearly; the cap's factor 1 − tanh²(z/c) turns a
						// logit's error δ into a relative error of about
						// 2·|ẑ|·δ/c² in the gradient, beyond that bound for
						// logits of hundreds under a cap of 3. The fp32 and
						// chunked variants check the cap; TF32 keeps its
						// plain cases.
						t.Skip("skipped: soft-capping under TF32 needs an error bound that includes the cap's derivative (TolTF32 does not)")
					}
					if st, ok := lg.(kit.Stats); ok && v.ChunkRows > 0 && st.MemStats().ChunkRows != v.ChunkRows {
						t.Errorf("chunk rows %d, want %d", st.MemStats().ChunkRows, v.ChunkRows)
					}
					lc := open(t, "cpu", cfg)
					tl := parityTol(dt)
					if v.MatMode == backend.TF32 {
						tl = tol.TF32
					}
					for _, rows := range []int{B, 3} {
						p := NewProblem(uint64(rows), rows, N, T, o, name)
						// BF16: x and W exactly representable in bfloat16, so
						// the forward product is exact and only dz's rounding
						// to bfloat16 for dW = xᵀ·dz and dx = dz·Wᵀ remains.
						tolW, tolX := tl, tl
						if v.MatMode == backend.BF16 || v.Storage == backend.StorageBF16 {
							p.X, p.W = roundBF16(p.X), roundBF16(p.W)
							ref := cpu.Reference(p.X, p.W, dense.Round(tensor.Float32, p.B), dense.Round(tensor.Float32, p.Tg), rows, N, T, o)
							tolW = tol.BF16(ref.DZ, p.X, rows, T, N, true)
							tolX = tol.BF16(ref.DZ, p.W, rows, T, N, false)
						}
						if v.Storage == backend.StorageBF16 {
							// dx stored in bfloat16: one rounding, u = 2⁻⁸.
							tolX.Rel += 1.0 / 256
							tolX.Why += "; dx stored in bfloat16 (u = 2⁻⁸)"
						}
						compareLayers(t, lc, lg, p, o, rows, N, T, dt, tl, tolW, tolX)
					}
				})
			}
		}
	}
}

// ResidentAndStats: StepLoaded equals Step; MemStats and FloorMs report.
func ResidentAndStats(t *testing.T, dev string) {
	const B, N, T = 64, 32, 1000
	for _, chunk := range []int{-1, 16} {
		cfg := backend.Config{Spec: graph.Spec{B: B, N: N, T: T, DType: tensor.Float32, Want: graph.Want{DW: true, DB: true}},
			Optimizer: backend.Optimizer{Kind: backend.SGD, LR: 0.1}, ChunkRows: chunk}
		p := NewProblem(3, B, N, T, graph.LossOptions{}, "res")
		x, tg := dense.New(tensor.Float32, p.X, B, N), dense.New(tensor.Float32, p.Tg, B)
		a, b := open(t, dev, cfg), open(t, dev, cfg)
		for _, l := range []backend.Layer{a, b} {
			if err := l.SetParams(dense.New(tensor.Float32, p.W, N, T), dense.New(tensor.Float32, p.B, T)); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.(kit.Resident).Load(x, tg); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			la, err := a.Step(x, tg)
			if err != nil {
				t.Fatal(err)
			}
			lb, err := b.(kit.Resident).StepLoaded()
			if err != nil {
				t.Fatal(err)
			}
			if la != lb {
				t.Errorf("chunk %d step %d: Step loss %v, StepLoaded %v", chunk, i, la, lb)
			}
		}
		st := b.(kit.Stats)
		ms := st.MemStats()
		wantRows := B
		if chunk > 0 {
			wantRows = chunk
		}
		// Extra memory: one chunk of logits, the column sum's float64
		// partial sums (one row of T per slab of at least 8 rows, at most
		// 64 slabs), and per-row values.
		slabBytes := int64(min(64, (wantRows+7)/8)) * T * 8
		if ms.ChunkRows != wantRows || ms.ExtraBytes < int64(wantRows*T*4) || ms.ExtraBytes > int64(wantRows*T*4)+slabBytes+int64(B*16)+4096 {
			t.Errorf("chunk %d: MemStats %+v: want %d rows and about %d extra bytes", chunk, ms, wantRows, int64(wantRows*T*4)+slabBytes)
		}
		f, err := st.FloorMs(B, 5)
		if err != nil || f <= 0 {
			t.Errorf("FloorMs: %v, %v", f, err)
		}
		t.Logf("chunk %d: %+v, floor %.3f ms", chunk, ms, f)
	}
}
