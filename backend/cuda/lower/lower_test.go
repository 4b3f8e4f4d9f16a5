package lower

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"dsx/backend"
	k "dsx/cudakernels"
	"dsx/graph"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// configs is every combination of the options lowering decides on: dtype,
// wanted gradients, loss options, matmul mode, softmax-cross-entropy
// implementation and chunking (only those run.Open accepts: reduced-precision
// modes need float32).
func configs() map[string]backend.Config {
	T := 7
	w := make([]float64, T)
	for i := range w {
		w[i] = 0.5 + float64(i)/4
	}
	losses := map[string]graph.LossOptions{
		"mean": {}, "sum": {Reduction: graph.Sum}, "none": {Reduction: graph.None},
		"weights+ignore": {ClassWeights: w, UseIgnoreIndex: true, IgnoreIndex: -100},
		"smoothing":      {LabelSmoothing: 0.1},
		"soft+none":      {SoftTargets: true, Reduction: graph.None},
		"softcap+zloss":  {Softcap: 30, ZLoss: 1e-4},
	}
	wants := map[string]graph.Want{"none": {}, "W": {DW: true}, "b": {DB: true}, "x": {DX: true}, "W,b": {DW: true, DB: true}, "W,b,x": {DW: true, DB: true, DX: true}}
	out := map[string]backend.Config{}
	for ln, lo := range losses {
		for wn, want := range wants {
			for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
				for _, mode := range []string{"", "tf32", "bf16", "bf16-storage"} {
					if mode != "" && dt != tensor.Float32 {
						continue
					}
					for _, xent := range []string{"", "unfused", "tiles"} {
						for _, chunk := range []int{-1, 3} {
							cfg := backend.Config{Spec: graph.Spec{B: 8, N: 5, T: T, DType: dt, Loss: lo, Want: want},
								ChunkRows: chunk, Optimizer: backend.Optimizer{Kind: backend.Adam, LR: 1e-3}}
							switch mode {
							case "tf32":
								cfg.MatMode = backend.TF32
							case "bf16":
								cfg.MatMode = backend.BF16
							case "bf16-storage":
								cfg.Storage = backend.StorageBF16
							}
							switch xent {
							case "unfused":
								cfg.Xent = backend.Unfused
							case "tiles":
								cfg.VocabTile = 3 // tiles of 3, 3 and 1 classes
							}
							out[fmt.Sprintf("%s/%s/%v/%s/%s/chunk=%d", ln, wn, dt, mode, xent, chunk)] = cfg
						}
					}
				}
			}
		}
	}
	return out
}

// TestRecognizeEveryNode: every node of every training and forward graph
// the layer builds is one recognize knows. A Gorgonia upgrade that renames
// an op or changes its String() fails here.
func TestRecognizeEveryNode(t *testing.T) {
	seen := map[nodeKind]bool{}
	for name, cfg := range configs() {
		g, err := graph.Build(cfg.Spec)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, sub := range []*G.ExprGraph{g.TrainGraph(), g.ForwardGraph()} {
			for _, n := range sub.AllNodes() {
				r := recognize(n)
				if r.kind == nUnknown {
					t.Errorf("%s: node %v (op %s, %q) is not recognised", name, n, r.op, n.Op())
				}
				seen[r.kind] = true
			}
		}
	}
	for kd := range nodeKindNames {
		if kd != nUnknown && !seen[kd] {
			t.Errorf("no graph has a %v node: the recognition of it is untested", kd)
		}
	}
}

// TestLowerEveryConfig: every configuration lowers (or, unfused with
// probability targets or label smoothing, fails with ErrNotImplemented), and
// the plan is consistent: its kernels exist with the argument struct their
// step fills, outputs are where the Spec wants them, and buffers indexed by
// batch row are sized for B rows.
func TestLowerEveryConfig(t *testing.T) {
	kernels := map[string]reflect.Type{}
	for _, kk := range k.Kernels {
		kernels[kk.Name] = reflect.TypeOf(kk.Args)
	}
	for name, cfg := range configs() {
		l, err := Lower(cfg)
		o := cfg.Loss
		if cfg.Xent == backend.Unfused && (o.SoftTargets || o.LabelSmoothing != 0 || o.Softcap != 0 || o.ZLoss != 0) {
			if !errors.Is(err, backend.ErrNotImplemented) {
				t.Errorf("%s: got %v, want ErrNotImplemented", name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if cfg.Storage == backend.StorageBF16 && cfg.Xent == backend.Fused {
			// Nothing is converted per step under bfloat16 storage, but
			// for dx over vocabulary tiles: summed over the tiles in
			// float32, it is stored in bfloat16 once per chunk.
			for _, p := range []*Plan{l.Train, l.Forward} {
				for _, s := range p.Steps {
					if c, conv := s.Op.(*toBF16); conv && !c.toBatch {
						t.Errorf("%s: a step converts: %s", name, s.Op.Describe())
					}
				}
			}
			if l.W16 == nil || len(l.Refresh) != 1 {
				t.Errorf("%s: W16 %v, refresh %d steps", name, l.W16, len(l.Refresh))
			}
		}
		for _, p := range []*Plan{l.Train, l.Forward, {Steps: l.Optim}, {Steps: l.Refresh}} {
			for _, s := range p.Steps {
				kn, ok := s.Op.(Kernel)
				if !ok {
					if _, gemm := s.Op.(*Gemm); !gemm {
						t.Errorf("%s: step %T is neither a kernel nor a product", name, s.Op)
					}
					continue
				}
				want, ok := kernels[kn.Kernel()]
				if got := reflect.TypeOf(kn.NewArgs()).Elem(); !ok || got != want {
					t.Errorf("%s: step %s fills %v; kernel listed: %v (%v)", name, kn.Kernel(), got, ok, want)
				}
			}
		}
		want := cfg.Want
		for _, c := range []struct {
			what string
			buf  *Buffer
			on   bool
		}{{"dW", l.Train.DW, want.DW}, {"db", l.Train.DB, want.DB}, {"dx", l.Train.DX, want.DX},
			{"losses", l.Train.Losses, o.Reduction == graph.None}, {"loss", l.Train.Loss, true}, {"logits", l.Forward.Logits, true}} {
			if (c.buf != nil) != c.on {
				t.Errorf("%s: output %s is %v, want present=%v", name, c.what, c.buf, c.on)
			}
		}
		if (len(l.Optim) == 2) != (want.DW && want.DB) {
			t.Errorf("%s: %d optimizer steps with gradients %v", name, len(l.Optim), want)
		}
		for _, b := range l.Buffers {
			if b.RowBytes > 0 && b.Bytes < int64(cfg.B)*b.RowBytes {
				t.Errorf("%s: buffer %s of %d bytes is indexed by %d rows of %d bytes", name, b.What, b.Bytes, cfg.B, b.RowBytes)
			}
		}
	}
}

// The plans of three configurations, step by step: what fuses, what runs
// once and what per chunk. A change to the graph or to a lowering decision
// shows here first.
var goldenPlans = []struct {
	name           string
	cfg            backend.Config
	train, forward string
	optim          string // the optimizer's steps then the refresh steps, when set
}{{
	name: "float32 dW,db adam",
	cfg: backend.Config{Spec: graph.Spec{B: 8, N: 4, T: 10, DType: tensor.Float32, Want: graph.Want{DW: true, DB: true}},
		Optimizer: backend.Optimizer{Kind: backend.Adam, LR: 1}},
	train: `per-chunk: gemm x·W (logits, then their gradient): x × W → x·W (logits, then their gradient) (rows×10×4, fp32)
pre: xent_scale_f32 → reduction scales
per-chunk: xent_t32_f32: x·W (logits, then their gradient) + b, gradient in place
post: xent_reduce → loss
per-chunk: colsum_part_f32: Σ slabs of x·W (logits, then their gradient) → column sums by slab (float64)
per-chunk: colsum_fin_f32: column sums by slab (float64) → db, accumulated over chunks
per-chunk: gemm dW: xᵀ × x·W (logits, then their gradient) → dW (4×10×rows, fp32, accumulated over chunks)`,
	forward: `per-chunk: gemm x·W (logits, then their gradient): x × W → x·W (logits, then their gradient) (rows×10×4, fp32)
per-chunk: bias_add_f32: x·W (logits, then their gradient) += b`,
}, {
	name: "float32 bf16 dW,db,dx none chunked",
	cfg: backend.Config{Spec: graph.Spec{B: 8, N: 4, T: 5000, DType: tensor.Float32, Want: graph.Want{DW: true, DB: true, DX: true},
		Loss: graph.LossOptions{Reduction: graph.None}}, ChunkRows: 3, MatMode: backend.BF16},
	train: `per-chunk: to_bf16: x → x (bfloat16 copy)
pre: to_bf16: W → W (bfloat16 copy)
per-chunk: gemm x·W (logits, then their gradient): x (bfloat16 copy) × W (bfloat16 copy) → x·W (logits, then their gradient) (rows×5000×4, bf16)
pre: xent_scale_f32 → reduction scales
per-chunk: xent_f32: x·W (logits, then their gradient) + b, gradient in place
post: xent_reduce → loss
per-chunk: colsum_part_f32: Σ slabs of x·W (logits, then their gradient) → column sums by slab (float64)
per-chunk: colsum_fin_f32: column sums by slab (float64) → db, accumulated over chunks
per-chunk: to_bf16: x·W (logits, then their gradient) → x·W (logits, then their gradient) (bfloat16 copy)
per-chunk: gemm dx: x·W (logits, then their gradient) (bfloat16 copy) × W (bfloat16 copy)ᵀ → dx (rows×4×5000, bf16)
per-chunk: gemm dW: x (bfloat16 copy)ᵀ × x·W (logits, then their gradient) (bfloat16 copy) → dW (4×5000×rows, bf16, accumulated over chunks)`,
	forward: `per-chunk: to_bf16: x → x (bfloat16 copy)
pre: to_bf16: W → W (bfloat16 copy)
per-chunk: gemm x·W (logits, then their gradient): x (bfloat16 copy) × W (bfloat16 copy) → x·W (logits, then their gradient) (rows×5000×4, bf16)
per-chunk: bias_add_f32: x·W (logits, then their gradient) += b`,
}, {
	// bfloat16 storage: no step converts anything; the loss kernel writes
	// dz in bfloat16 too and the optimizer rewrites W's bfloat16 copy.
	name: "float32 bf16 storage dW,db,dx adam chunked",
	cfg: backend.Config{Spec: graph.Spec{B: 8, N: 4, T: 5000, DType: tensor.Float32, Want: graph.Want{DW: true, DB: true, DX: true}},
		ChunkRows: 3, Storage: backend.StorageBF16, Optimizer: backend.Optimizer{Kind: backend.Adam, LR: 1}},
	train: `per-chunk: gemm x·W (logits, then their gradient): x (bfloat16) × W (bfloat16 copy, refreshed by the optimizer step) → x·W (logits, then their gradient) (rows×5000×4, bf16)
pre: xent_scale_f32 → reduction scales
per-chunk: xent_f32: x·W (logits, then their gradient) + b, gradient in place and to gradient of the logits (bfloat16, from the loss kernel)
post: xent_reduce → loss
per-chunk: colsum_part_f32: Σ slabs of x·W (logits, then their gradient) → column sums by slab (float64)
per-chunk: colsum_fin_f32: column sums by slab (float64) → db, accumulated over chunks
per-chunk: gemm dx (bfloat16): gradient of the logits (bfloat16, from the loss kernel) × W (bfloat16 copy, refreshed by the optimizer step)ᵀ → dx (bfloat16) (rows×4×5000, bf16)
per-chunk: gemm dW: x (bfloat16)ᵀ × gradient of the logits (bfloat16, from the loss kernel) → dW (4×5000×rows, bf16, accumulated over chunks)`,
	forward: `per-chunk: gemm x·W (logits, then their gradient): x (bfloat16) × W (bfloat16 copy, refreshed by the optimizer step) → x·W (logits, then their gradient) (rows×5000×4, bf16)
per-chunk: bias_add_f32: x·W (logits, then their gradient) += b`,
	optim: `post: adam_f32: W (float32 master) from dW, and W (bfloat16 copy, refreshed by the optimizer step)
post: adam_f32: b from db
pre: to_bf16: W (float32 master) → W (bfloat16 copy, refreshed by the optimizer step)`,
}, {
	// Vocabulary tiles: two tile loops per chunk (statistics; then the
	// recomputed logits, their gradient and its share of db, dW and dx);
	// the chunk's rows×T logits never exist.
	name: "float32 vocabulary tiles bf16 storage dW,db,dx adam",
	cfg: backend.Config{Spec: graph.Spec{B: 8, N: 4, T: 5000, DType: tensor.Float32, Want: graph.Want{DW: true, DB: true, DX: true}},
		VocabTile: 2048, Storage: backend.StorageBF16, Optimizer: backend.Optimizer{Kind: backend.Adam, LR: 1}},
	train: `pre: xent_scale_f32 → reduction scales
per-chunk, tile loop 1: gemm x·W tile: x (bfloat16) × W (bfloat16 copy, refreshed by the optimizer step) → logits tile (rows×2048) (rows×tile×4, bf16, tile columns)
per-chunk, tile loop 1: xvocab_stats_f32: logits tile (rows×2048) + b → row statistics over the tiles (4 float64 a row)
per-chunk: xvocab_finish_f32: row statistics over the tiles (4 float64 a row) → per-row losses (float64), row m, L, S (3 float64 a row)
per-chunk, tile loop 2: gemm x·W tile: x (bfloat16) × W (bfloat16 copy, refreshed by the optimizer step) → logits tile (rows×2048) (rows×tile×4, bf16, tile columns)
per-chunk, tile loop 2: xvocab_grad_f32: logits tile (rows×2048) + b, gradient in place and to gradient tile (rows×2048, bfloat16), Σ slabs → column sums by slab (float64)
per-chunk, tile loop 2: colsum_fin_f32: column sums by slab (float64) → db, accumulated over chunks
per-chunk, tile loop 2: gemm dW tile: x (bfloat16)ᵀ × gradient tile (rows×2048, bfloat16) → dW (4×tile×rows, bf16, accumulated over chunks, tile columns)
per-chunk, tile loop 2: gemm dx tile: gradient tile (rows×2048, bfloat16) × W (bfloat16 copy, refreshed by the optimizer step)ᵀ → dx of a chunk (float32, summed over the tiles) (rows×4×tile, bf16, summed over tiles, tile columns)
per-chunk: to_bf16: dx of a chunk (float32, summed over the tiles) → dx (bfloat16)
post: xent_reduce → loss`,
	forward: `per-chunk: gemm x·W (logits, then their gradient): x (bfloat16) × W (bfloat16 copy, refreshed by the optimizer step) → x·W (logits, then their gradient) (rows×5000×4, bf16)
per-chunk: bias_add_f32: x·W (logits, then their gradient) += b`,
}, {
	name: "float64 unfused dx",
	cfg:  backend.Config{Spec: graph.Spec{B: 8, N: 4, T: 10, DType: tensor.Float64, Want: graph.Want{DX: true}}, Xent: backend.Unfused},
	train: `per-chunk: gemm x·W (logits, then their gradient): x × W → x·W (logits, then their gradient) (rows×10×4, fp64)
pre: xent_scale_f64 → reduction scales
per-chunk: log_softmax_f64: x·W (logits, then their gradient) → log-softmax (unfused)
per-chunk: nll_f64: log-softmax (unfused) → per-row losses (float64)
per-chunk: nll_grad_f64 → x·W (logits, then their gradient)
per-chunk: log_softmax_grad_f64: x·W (logits, then their gradient) in place, from log-softmax (unfused)
post: xent_reduce → loss
per-chunk: gemm dx: x·W (logits, then their gradient) × Wᵀ → dx (rows×4×10, fp64)`,
	forward: `per-chunk: gemm x·W (logits, then their gradient): x × W → x·W (logits, then their gradient) (rows×10×4, fp64)
per-chunk: bias_add_f64: x·W (logits, then their gradient) += b`,
}}

func TestGoldenPlans(t *testing.T) {
	for _, g := range goldenPlans {
		l, err := Lower(g.cfg)
		if err != nil {
			t.Fatalf("%s: %v", g.name, err)
		}
		if got := strings.Join(l.Train.Describe(), "\n"); got != g.train {
			t.Errorf("%s: training plan\n%s\nwant\n%s", g.name, got, g.train)
		}
		if got := strings.Join(l.Forward.Describe(), "\n"); got != g.forward {
			t.Errorf("%s: forward plan\n%s\nwant\n%s", g.name, got, g.forward)
		}
		if g.optim == "" {
			continue
		}
		steps := &Plan{Steps: append(append([]*Step(nil), l.Optim...), l.Refresh...)}
		if got := strings.Join(steps.Describe(), "\n"); got != g.optim {
			t.Errorf("%s: optimizer and refresh steps\n%s\nwant\n%s", g.name, got, g.optim)
		}
	}
}

// TestRunSchedule: Pre once over the batch, PerChunk per chunk (First on
// the first), Post once; gemmOnly keeps the products only.
func TestRunSchedule(t *testing.T) {
	g := &Gemm{What: "p"}
	p := &Plan{Steps: []*Step{{Phase: PerChunk, Op: g}, {Phase: Pre, Op: &xentReduce{}}, {Phase: Post, Op: &xentReduce{}}}}
	var got []string
	err := p.Run(5, 2, false, func(i int, c Ctx) error {
		got = append(got, fmt.Sprintf("%d:%d+%d:%v", i, c.R0, c.Rows, c.First))
		return nil
	}, func(r0, n int) error {
		got = append(got, fmt.Sprintf("after %d+%d", r0, n))
		return nil
	})
	want := "1:0+5:true 0:0+2:true after 0+2 0:2+2:false after 2+2 0:4+1:false after 4+1 2:0+5:true"
	if err != nil || strings.Join(got, " ") != want {
		t.Errorf("schedule %q (%v), want %q", strings.Join(got, " "), err, want)
	}
	got = nil
	p.Run(3, 3, true, func(i int, c Ctx) error { got = append(got, fmt.Sprint(i)); return nil }, nil)
	if strings.Join(got, " ") != "0" {
		t.Errorf("gemmOnly ran steps %v", got)
	}
	if err := p.Run(0, 3, false, func(int, Ctx) error { return nil }, nil); err == nil {
		t.Error("Run over 0 rows succeeded")
	}
}

// TestRunTiles: a tile loop runs its consecutive steps once per vocabulary
// tile (the last one short), in order, within each chunk; steps between
// two loops run once per chunk.
func TestRunTiles(t *testing.T) {
	k := &xentReduce{}
	p := &Plan{VocabTile: 4, T: 10, Steps: []*Step{
		{Phase: Pre, Op: k}, {Phase: PerChunk, Op: k, Tiles: 1}, {Phase: PerChunk, Op: k, Tiles: 1},
		{Phase: PerChunk, Op: k}, {Phase: PerChunk, Op: k, Tiles: 2}, {Phase: Post, Op: k}}}
	var got []string
	err := p.Run(3, 2, false, func(i int, c Ctx) error {
		s := fmt.Sprintf("%d@%d", i, c.R0)
		if p.Steps[i].Tiles != 0 {
			s += fmt.Sprintf("[%d+%d,%v]", c.C0, c.Cols, c.FirstTile)
		}
		got = append(got, s)
		return nil
	}, nil)
	want := "0@0 " +
		"1@0[0+4,true] 2@0[0+4,true] 1@0[4+4,false] 2@0[4+4,false] 1@0[8+2,false] 2@0[8+2,false] 3@0 " +
		"4@0[0+4,true] 4@0[4+4,false] 4@0[8+2,false] " +
		"1@2[0+4,true] 2@2[0+4,true] 1@2[4+4,false] 2@2[4+4,false] 1@2[8+2,false] 2@2[8+2,false] 3@2 " +
		"4@2[0+4,true] 4@2[4+4,false] 4@2[8+2,false] 5@0"
	if err != nil || strings.Join(got, " ") != want {
		t.Errorf("schedule\n%s (%v)\nwant\n%s", strings.Join(got, " "), err, want)
	}
}

// TestNotImplemented: a node the backend cannot lower is an error wrapping
// backend.ErrNotImplemented that names the node, not host work.
func TestNotImplemented(t *testing.T) {
	spec := graph.Spec{B: 4, N: 3, T: 5, DType: tensor.Float32, Want: graph.Want{DW: true}}
	g, err := graph.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	th, err := G.Tanh(g.Logits)
	if err != nil {
		t.Fatal(err)
	}
	l := &Program{}
	lw := &lowerer{cfg: backend.Config{Spec: spec}, g: g, l: l, esize: 4, f32: true, bufs: map[*G.Node]*Buffer{}, named: map[string]*Buffer{},
		fused: map[*G.Node]bool{}, chunk: 4, bf16: map[*Buffer]*Buffer{}}
	_, err = lw.lower(g.G.SubgraphRoots(th))
	if !errors.Is(err, backend.ErrNotImplemented) || !strings.Contains(strings.ToLower(err.Error()), "tanh") {
		t.Fatalf("got %v, want ErrNotImplemented naming the tanh node", err)
	}
}

// TestNames: every enum prints a name of its own (errors and plan listings
// say which), never the fallback.
func TestNames(t *testing.T) {
	check := func(what string, names []string) {
		seen := map[string]bool{}
		for _, n := range names {
			if strings.Contains(n, "(") || seen[n] {
				t.Errorf("%s: name %q is a fallback or repeated in %q", what, n, names)
			}
			seen[n] = true
		}
	}
	var ks, nks []string
	for v := kBuf; v <= kRowLoss; v++ {
		ks = append(ks, v.String())
	}
	for v := nUnknown; v <= nColSum; v++ {
		nks = append(nks, v.String())
	}
	check("kind", ks)
	check("nodeKind", nks)
	check("Phase", []string{Pre.String(), PerChunk.String(), Post.String()})
	check("Category", []string{Extra.String(), State.String(), Input.String()})
	check("MatMode", []string{backend.FP32.String(), backend.TF32.String(), backend.BF16.String()})
	if len(kindNames) != int(kRowLoss)+1 || len(nodeKindNames) != int(nColSum)+1 {
		t.Errorf("a kind was added without a name")
	}
}
