//go:build gpu

package cuda

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"dsx/backend"
	"dsx/backend/conformance"
	"dsx/cpu"
	"dsx/graph"

	"gorgonia.org/tensor"
)

// TestVariants: the chunked batch, the unfused softmax-cross-entropy and the
// TF32 and BF16 matrix modes agree with the CPU backend on the loss,
// per-row losses, dW, db, dx and the logits. Chunked and unfused use the
// float32 parity tolerance, TF32 conformance.TolTF32; BF16 runs on inputs
// exactly representable in bfloat16, so everything but dW and dx is held to
// the float32 parity bound and those two to conformance.TolBF16, the bound
// of dz's one rounding.
func TestVariants(t *testing.T) {
	requireGPU(t)
	const B, N = 7, 6
	variants := map[string]backend.Config{
		"chunk=3":          {ChunkRows: 3},
		"chunk=1":          {ChunkRows: 1},
		"chunk=auto(2)":    {MemoryBudget: 2 * 1000 * 4},
		"unfused":          {Xent: "unfused"},
		"unfused+chunk=2":  {Xent: "unfused", ChunkRows: 2},
		"tf32":             {MatMode: "tf32"},
		"bf16":             {MatMode: "bf16"},
		"bf16+chunk=4":     {MatMode: "bf16", ChunkRows: 4},
		"tf32+unfused+c=5": {MatMode: "tf32", Xent: "unfused", ChunkRows: 5},
	}
	for _, T := range []int{3, 1000, 50257} {
		for name, o := range lossCases(T) {
			for vname, v := range variants {
				dt := tensor.Float32
				t.Run(fmt.Sprintf("T=%d/%s/%s", T, name, vname), func(t *testing.T) {
					cfg := backend.Config{Spec: graph.Spec{B: B, N: N, T: T, DType: dt, Loss: o, Want: graph.Want{W: true, B: true, X: true}}}
					vc := cfg
					vc.ChunkRows, vc.MemoryBudget, vc.Xent, vc.MatMode = v.ChunkRows, v.MemoryBudget, v.Xent, v.MatMode
					lg, err := Backend{}.Open(vc)
					if v.Xent == "unfused" && (o.SoftTargets || o.LabelSmoothing != 0) {
						if !errors.Is(err, backend.ErrNotImplemented) {
							t.Fatalf("unfused with %s: got %v, want ErrNotImplemented", name, err)
						}
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					defer lg.Close()
					if st, ok := lg.(backend.Stats); ok && v.ChunkRows > 0 && st.MemStats().ChunkRows != v.ChunkRows {
						t.Errorf("chunk rows %d, want %d", st.MemStats().ChunkRows, v.ChunkRows)
					}
					lc := open(t, "cpu", cfg)
					tol := parityTol(dt)
					if v.MatMode == "tf32" {
						tol = conformance.TolTF32
					}
					for _, rows := range []int{B, 3} {
						p := newProblem(uint64(rows), rows, N, T, o, name)
						// BF16: x and W exactly representable in bfloat16, so
						// the forward product is exact and only dz's rounding
						// to bfloat16 for dW = xᵀ·dz and dx = dz·Wᵀ remains.
						tolW, tolX := tol, tol
						if v.MatMode == "bf16" {
							p.x, p.W = roundBF16(p.x), roundBF16(p.W)
							ref := cpu.Reference(p.x, p.W, f32s(p.b), f32s(p.tg), rows, N, T, o)
							tolW = conformance.TolBF16(ref.DZ, p.x, rows, T, N, true)
							tolX = conformance.TolBF16(ref.DZ, p.W, rows, T, N, false)
						}
						compareLayers(t, lc, lg, p, o, rows, N, T, dt, tol, tolW, tolX)
					}
				})
			}
		}
	}
}

// TestResidentAndStats: StepLoaded equals Step; MemStats and FloorMs report.
func TestResidentAndStats(t *testing.T) {
	requireGPU(t)
	const B, N, T = 64, 32, 1000
	for _, chunk := range []int{-1, 16} {
		cfg := backend.Config{Spec: graph.Spec{B: B, N: N, T: T, DType: tensor.Float32, Want: graph.Want{W: true, B: true}},
			Optimizer: backend.Optimizer{Kind: "sgd", LR: 0.1}, ChunkRows: chunk}
		p := newProblem(3, B, N, T, graph.LossOptions{}, "res")
		x, tg := dense(tensor.Float32, p.x, B, N), dense(tensor.Float32, p.tg, B)
		a, b := open(t, "cuda", cfg), open(t, "cuda", cfg)
		for _, l := range []backend.Layer{a, b} {
			if err := l.SetParams(dense(tensor.Float32, p.W, N, T), dense(tensor.Float32, p.b, T)); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.(backend.Resident).Load(x, tg); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			la, err := a.Step(x, tg)
			if err != nil {
				t.Fatal(err)
			}
			lb, err := b.(backend.Resident).StepLoaded()
			if err != nil {
				t.Fatal(err)
			}
			if la != lb {
				t.Errorf("chunk %d step %d: Step loss %v, StepLoaded %v", chunk, i, la, lb)
			}
		}
		st := b.(backend.Stats)
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

// TestChunkAuto: Config.Chunk picks whole batches under the budget and
// multiples of 256 rows over it.
func TestChunkAuto(t *testing.T) {
	c := backend.Config{Spec: graph.Spec{B: 8192, N: 4096, T: 128256}}
	if got := c.Chunk(4); got != 2048 {
		t.Errorf("auto chunk %d, want 2048", got)
	}
	c.ChunkRows = -1
	if got := c.Chunk(4); got != 8192 {
		t.Errorf("never: %d", got)
	}
}

// roundBF16 rounds each value to float32 and then to bfloat16 (nearest, ties
// to even), as the to_bf16 kernel does.
func roundBF16(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		u := math.Float32bits(float32(x))
		u += 0x7fff + (u>>16)&1
		out[i] = float64(math.Float32frombits(u &^ 0xffff))
	}
	return out
}

// f32s rounds values to float32, as the backends hold them.
func f32s(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(float32(x))
	}
	return out
}
