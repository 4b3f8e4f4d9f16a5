package cudatest

import (
	"math"
	"testing"

	"dsx/backend"
	"dsx/backend/kit"
	"dsx/graph"
	"dsx/internal/dense"
	"dsx/internal/tol"

	"gorgonia.org/tensor"
)

// BF16Storage checks what bfloat16 storage keeps between calls: W's
// bfloat16 copy follows the float32 master weights through SetParams and
// through every optimizer step (the layer's logits are those of bfloat16(x)
// and bfloat16(W), whatever W has become), the master weights are float32
// (not rounded), and x and dx take half the bytes. The products themselves
// are checked against the CPU backend by Variants.
func BF16Storage(t *testing.T, dev string) {
	const B, N, T = 16, 8, 300
	for _, opt := range []backend.Optimizer{{Kind: backend.Adam, LR: 0.05}, {Kind: backend.SGD, LR: 0.5, Momentum: 0.9}} {
		cfg := backend.Config{Spec: graph.Spec{B: B, N: N, T: T, DType: tensor.Float32, Want: graph.Want{DW: true, DB: true, DX: true}},
			Optimizer: opt, Storage: backend.StorageBF16}
		p := NewProblem(5, B, N, T, graph.LossOptions{}, "storage")
		l := open(t, dev, cfg)
		x, tg := dense.New(tensor.Float32, p.X, B, N), dense.New(tensor.Float32, p.Tg, B)
		// logitsOf is bfloat16(x)·bfloat16(W) + b in float64 from the
		// layer's own float32 parameters.
		logitsOf := func() []float64 {
			W, b, err := l.Params()
			if err != nil {
				t.Fatal(err)
			}
			xs, ws, bs := roundBF16(p.X), roundBF16(dense.F64(W)), dense.F64(b)
			z := make([]float64, B*T)
			for i := 0; i < B; i++ {
				for c := 0; c < T; c++ {
					s := bs[c]
					for k := 0; k < N; k++ {
						s += xs[i*N+k] * ws[k*T+c]
					}
					z[i*T+c] = s
				}
			}
			return z
		}
		check := func(when string) {
			t.Helper()
			got, err := l.Logits(x)
			if err != nil {
				t.Fatal(err)
			}
			// Exact bfloat16 products summed in float32 (N terms) and
			// stored in float32: the float32 parity bound.
			if err := tol.Close(dense.F64(got), logitsOf(), tol.ParityF32); err != nil {
				t.Errorf("%s %s: logits are not those of bfloat16(W): %v", opt.Kind, when, err)
			}
		}
		if err := l.SetParams(dense.New(tensor.Float32, p.W, N, T), dense.New(tensor.Float32, p.B, T)); err != nil {
			t.Fatal(err)
		}
		check("after SetParams")
		for i := 0; i < 3; i++ {
			if _, err := l.Step(x, tg); err != nil {
				t.Fatal(err)
			}
			check("after a step")
		}
		// The master weights moved by less than bfloat16 resolves somewhere:
		// they are float32, not rounded copies.
		W, _, _ := l.Params()
		rounded := 0
		for _, v := range dense.F64(W) {
			if r := roundBF16([]float64{v})[0]; r == v {
				rounded++
			}
		}
		if rounded == N*T {
			t.Errorf("%s: every master weight is a bfloat16 value: W is not kept in float32", opt.Kind)
		}
		r, err := l.Compute(x, tg)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range dense.F64(r.DX) {
			if u := math.Float32bits(float32(v)); u&0xffff != 0 {
				t.Fatalf("dx[%d] = %v is not a bfloat16 value: dx is not stored in bfloat16", i, v)
			}
		}
		if st, ok := l.(kit.Stats); ok {
			if ms := st.MemStats(); ms.InputBytes != 2*B*N*2+B*4 {
				t.Errorf("input bytes %d, want %d (x and dx in bfloat16, float32 labels)", ms.InputBytes, 2*B*N*2+B*4)
			}
		}
	}
}

// Deterministic: the fused path gives a bit-identical model run after run:
// two fresh layers, the same batches, the same parameters to the bit; and
// a third layer given the first one's parameters and optimizer state after
// 2 of the 4 steps (SetParams, SetOptimizerState: a resumed checkpoint)
// ends with the same bits too, bfloat16 storage's copy of W included.
func Deterministic(t *testing.T, dev string) {
	const B, N, T = 256, 32, 1000
	for _, cfg := range []backend.Config{
		{Spec: graph.Spec{B: B, N: N, T: T, DType: tensor.Float32, Want: graph.Want{DW: true, DB: true}}, Optimizer: backend.Optimizer{Kind: backend.Adam, LR: 0.01}},
		{Spec: graph.Spec{B: B, N: N, T: T, DType: tensor.Float32, Want: graph.Want{DW: true, DB: true}}, Optimizer: backend.Optimizer{Kind: backend.Adam, LR: 0.01}, ChunkRows: 100},
		{Spec: graph.Spec{B: B, N: N, T: T, DType: tensor.Float32, Want: graph.Want{DW: true, DB: true}}, Optimizer: backend.Optimizer{Kind: backend.Adam, LR: 0.01}, Storage: backend.StorageBF16},
		{Spec: graph.Spec{B: B, N: N, T: T, DType: tensor.Float32, Want: graph.Want{DW: true, DB: true}}, Optimizer: backend.Optimizer{Kind: backend.Adam, LR: 0.01}, VocabTile: 300},
		{Spec: graph.Spec{B: B, N: N, T: T, DType: tensor.Float32, Want: graph.Want{DW: true, DB: true}}, Optimizer: backend.Optimizer{Kind: backend.SGD, LR: 0.5, Momentum: 0.9}, Storage: backend.StorageBF16},
	} {
		p := NewProblem(9, B, N, T, graph.LossOptions{}, "det")
		x, tg := dense.New(tensor.Float32, p.X, B, N), dense.New(tensor.Float32, p.Tg, B)
		var (
			runs   [3][]float64
			W2, b2 *tensor.Dense
			st2    backend.OptimizerState
		)
		for run := range runs {
			l := open(t, dev, cfg)
			W, b := dense.New(tensor.Float32, p.W, N, T), dense.New(tensor.Float32, p.B, T)
			if run == 2 {
				W, b = W2, b2
			}
			if err := l.SetParams(W, b); err != nil {
				t.Fatal(err)
			}
			first := 0
			if run == 2 {
				if err := l.SetOptimizerState(st2); err != nil {
					t.Fatal(err)
				}
				first = 2
			}
			for i := first; i < 4; i++ {
				if _, err := l.Step(x, tg); err != nil {
					t.Fatal(err)
				}
				if run == 0 && i == 1 {
					var err error
					if W2, b2, err = l.Params(); err != nil {
						t.Fatal(err)
					}
					if st2, err = l.OptimizerState(); err != nil {
						t.Fatal(err)
					}
				}
			}
			W, b, err := l.Params()
			if err != nil {
				t.Fatal(err)
			}
			runs[run] = append(dense.F64(W), dense.F64(b)...)
			l.Close()
		}
		for r, what := range map[int]string{1: "a second run", 2: "a layer restored after 2 steps"} {
			for i := range runs[0] {
				if math.Float64bits(runs[0][i]) != math.Float64bits(runs[r][i]) {
					t.Fatalf("%v chunk %d storage %q tiles %d: parameter %d is %v, then %v in %s: not bit-identical", cfg.Optimizer.Kind, cfg.ChunkRows, cfg.Storage, cfg.VocabTile, i, runs[0][i], runs[r][i], what)
				}
			}
		}
	}
}

// VocabTiles: a layer run over vocabulary tiles holds one rows×VocabTile
// tile of logits (and the forward plan's rows of a tile's size), not the
// rows×T logits, and computes what the whole-row layer does (Variants
// checks the numbers against the CPU backend on every loss option).
func VocabTiles(t *testing.T, dev string) {
	const B, N, T, Vt = 64, 16, 5000, 512
	cfg := backend.Config{Spec: graph.Spec{B: B, N: N, T: T, DType: tensor.Float32, Want: graph.Want{DW: true, DB: true, DX: true}},
		Optimizer: backend.Optimizer{Kind: backend.Adam, LR: 0.01}, ChunkRows: -1}
	tiled := cfg
	tiled.VocabTile = Vt
	whole, lt := open(t, dev, cfg), open(t, dev, tiled)
	p := NewProblem(11, B, N, T, graph.LossOptions{}, "vocab")
	x, tg := dense.New(tensor.Float32, p.X, B, N), dense.New(tensor.Float32, p.Tg, B)
	for _, l := range []backend.Layer{whole, lt} {
		if err := l.SetParams(dense.New(tensor.Float32, p.W, N, T), dense.New(tensor.Float32, p.B, T)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		a, err := whole.Step(x, tg)
		if err != nil {
			t.Fatal(err)
		}
		b, err := lt.Step(x, tg)
		if err != nil {
			t.Fatal(err)
		}
		if err := tol.Close([]float64{b}, []float64{a}, tol.ParityF32); err != nil {
			t.Errorf("step %d: tiled loss %v, whole rows %v: %v", i, b, a, err)
		}
	}
	Wa, _, _ := whole.Params()
	Wb, _, _ := lt.Params()
	if err := tol.Close(dense.F64(Wb), dense.F64(Wa), tol.ParityF32); err != nil {
		t.Errorf("W after 3 steps, tiled against whole rows: %v", err)
	}
	st, ok := lt.(kit.Stats)
	if !ok {
		return
	}
	ms, mw := st.MemStats(), whole.(kit.Stats).MemStats()
	// One tile of logits for the training plan, about one more for the
	// forward plan's rows, 8 doubles a row and the column sums' slabs.
	tileBytes := int64(B * Vt * 4)
	if ms.ExtraBytes > 2*tileBytes+int64(B*N*4)+int64(64*Vt*8)+int64(B*64)+4096 || ms.ExtraBytes >= mw.ExtraBytes/4 {
		t.Errorf("extra bytes %d with tiles of %d (whole rows: %d); want about 2×%d", ms.ExtraBytes, Vt, mw.ExtraBytes, tileBytes)
	}
	t.Logf("extra bytes: %d tiled, %d whole rows", ms.ExtraBytes, mw.ExtraBytes)
}
