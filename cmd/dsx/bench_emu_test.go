package main

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	_ "dsx/backend/cuda/emu" // the CUDA backend's plans on the host: bench's GPU rows without a GPU
	"dsx/internal/tol"
)

// TestBenchSettings runs the rows of issue 8's GPU benchmark on the CUDA
// kernel emulator: float32 and bfloat16 storage, the tiled variant, dx,
// soft-capping and z-loss, both kinds of inputs, --check. Each row must be
// measured (not skipped), carry its setting, agree with the reference layer
// (float32 rows within the parity bound of two float32 computations;
// bfloat16 rows differing by a rounding, as cudatest bounds them), and report the same Loss0 and
// Entropy0 for one shape and kind of inputs whatever the row.
func TestBenchSettings(t *testing.T) {
	code, stdout, stderr := dsx(t, "bench", "--device", "cuda-emu", "--shapes", "24x9x40", "--steps", "1", "--warmup", "0",
		"--variants", "fused,chunked,tiled", "--vocab-tile", "16", "--storage", "fp32,bf16", "--grads", "W,b,x",
		"--inputs", "random,lm", "--softcap", "30", "--z-loss", "1e-4", "--check", "--json")
	if code != 0 {
		t.Fatalf("bench exited %d: %s", code, stderr)
	}
	var recs []benchRecord
	if err := json.Unmarshal([]byte(stdout), &recs); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2*2*3 {
		t.Fatalf("%d records, want 12 (2 inputs × 2 storages × 3 variants)", len(recs))
	}
	stats := map[string][2]float64{}
	for _, r := range recs {
		name := r.Variant + "/" + r.setting()
		if r.Skipped != "" || r.MsPerStep <= 0 || !r.Checked {
			t.Errorf("%s: not measured: %+v", name, r)
			continue
		}
		if r.Grads != "W,b,x" || r.Softcap != 30 || r.ZLoss != 1e-4 || (r.Variant == "tiled") != (r.VocabTile == 16) {
			t.Errorf("%s: setting not recorded: %+v", name, r)
		}
		diffs := map[string]float64{"dW": r.DWDiff, "db": r.DBDiff, "dx": r.DXDiff, "loss": r.LossDiff / math.Max(1, r.Loss0)}
		for what, d := range diffs {
			switch {
			case r.Storage == "fp32" && !(d <= tol.ParityF32.Rel):
				t.Errorf("%s: %s differs from the reference by %g relative, beyond %g (%s)", name, what, d, tol.ParityF32.Rel, tol.ParityF32.Why)
			case r.Storage == "bf16" && !(d > 0 && d < 1):
				// bfloat16 storage must round something, and stay finite;
				// its accuracy is held by cudatest's BF16Storage bounds.
				t.Errorf("%s: %s differs from the float32 reference by %g: want a bfloat16 rounding's difference", name, what, d)
			}
		}
		if r.Loss0 <= 0 || r.Entropy0 <= 0 {
			t.Errorf("%s: no row statistics: loss0 %g entropy0 %g", name, r.Loss0, r.Entropy0)
		}
		if s, ok := stats[r.Inputs]; ok && s != [2]float64{r.Loss0, r.Entropy0} {
			t.Errorf("%s: loss0, entropy0 = %g, %g; other rows of these inputs %g, %g", name, r.Loss0, r.Entropy0, s[0], s[1])
		}
		stats[r.Inputs] = [2]float64{r.Loss0, r.Entropy0}
		t.Logf("%s: ΔdW %.2g Δdb %.2g Δdx %.2g Δloss %.2g, chunk %d, extra %d B", name, r.DWDiff, r.DBDiff, r.DXDiff, r.LossDiff, r.ChunkRows, r.ExtraBytes)
	}
	if lm, rnd := stats["lm"][1], stats["random"][1]; !(lm < rnd-0.5) {
		t.Errorf("lm inputs' entropy %.2f is not well below random inputs' %.2f", lm, rnd)
	}
	if !strings.Contains(stderr, "tiled") {
		t.Errorf("progress lines do not name the rows: %s", stderr)
	}
}
