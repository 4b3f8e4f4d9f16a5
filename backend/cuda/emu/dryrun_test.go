package emu

import (
	"fmt"
	"testing"

	"dsx/backend"
	"dsx/backend/cuda/lower"
	"dsx/graph"

	"gorgonia.org/tensor"
)

// TestDryRunLargest lowers every variant of the cuda backend (whole rows,
// chunked, the reference layer's whole batch, vocabulary tiles, bfloat16
// products and storage, unfused) at 32768×4096×256000 (a Llama-3-sized
// head over a large batch) and runs each plan on a device that does no
// arithmetic (DryRun): launch limits and ptxas's figures, grid coverage,
// every extent inside its buffer, and no cuBLAS operand of 2³¹ elements or
// more.
func TestDryRunLargest(t *testing.T) {
	const B, N, T = 32768, 4096, 256000
	w := make([]float64, T)
	for i := range w {
		w[i] = 1 + float64(i%7)/10
	}
	losses := map[string]graph.LossOptions{
		"mean":                       {},
		"weights+ignore+smooth+none": {ClassWeights: w, UseIgnoreIndex: true, IgnoreIndex: -100, LabelSmoothing: 0.1, Reduction: graph.None},
		"softcap+zloss":              {Softcap: 30, ZLoss: 1e-4},
		"soft":                       {SoftTargets: true},
	}
	variants := map[string]backend.Config{
		"whole (budget)":       {},
		"chunk=1024":           {ChunkRows: 1024},
		"reference (chunk=-1)": {ChunkRows: -1},
		"tiles=16384":          {VocabTile: 16384},
		"tiles+bf16-storage":   {VocabTile: 16384, Storage: backend.StorageBF16},
		"bf16-storage":         {Storage: backend.StorageBF16},
		"bf16":                 {MatMode: backend.BF16, ChunkRows: -1},
		"unfused":              {Xent: backend.Unfused},
	}
	for ln, lo := range losses {
		for vn, v := range variants {
			if v.Xent == backend.Unfused && (lo.SoftTargets || lo.LabelSmoothing != 0 || lo.Softcap != 0 || lo.ZLoss != 0) {
				continue
			}
			t.Run(fmt.Sprintf("%s/%s", vn, ln), func(t *testing.T) {
				cfg := v
				cfg.Spec = graph.Spec{B: B, N: N, T: T, DType: tensor.Float32, Loss: lo, Want: graph.Want{DW: true, DB: true, DX: true}}
				cfg.Optimizer = backend.Optimizer{Kind: backend.Adam, LR: 1e-3}
				rep, err := DryRun(cfg)
				if err != nil {
					t.Fatal(err)
				}
				if rep.Largest >= MaxGemmElements || rep.Products == 0 || rep.Launches == 0 {
					t.Fatalf("report %+v", rep)
				}
				if v.ChunkRows < 0 && v.VocabTile == 0 && rep.Chunk != backend.MaxChunkElements/T {
					t.Errorf("the whole batch runs in chunks of %d rows, want ⌊(2³¹−1)/T⌋ = %d", rep.Chunk, backend.MaxChunkElements/T)
				}
				t.Logf("%d launches, %d products, chunks of %d rows, %.1f GiB; largest operand %d elements: %s",
					rep.Launches, rep.Products, rep.Chunk, float64(rep.Bytes)/(1<<30), rep.Largest, rep.LargestWhat)
			})
		}
	}
}

// TestDryRunOperandBound: a logits product of 32768 rows × 256000 classes
// (8.4·10⁹ elements) is refused; one of 8388 rows (⌊(2³¹−1)/T⌋) is not.
func TestDryRunOperandBound(t *testing.T) {
	call := lower.GemmCall{M: 32768, N: 256000, K: 4096, Lda: 4096, Ldb: 256000, F32: true, Describe: "x·W"}
	if err := checkOperands(call); err == nil {
		t.Error("a 32768×256000 C passed")
	}
	call.M = (1<<31 - 1) / 256000
	if err := checkOperands(call); err != nil {
		t.Error(err)
	}
}
