package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestBenchOneRow: a shape of B = 1 (one row) is measured on the CPU and
// on the CUDA emulator, every variant, checked against the reference; it
// used to fail "x has shape (4), want rows×4" (a one-row slice drops the
// row dimension).
func TestBenchOneRow(t *testing.T) {
	for dev, variants := range map[string]string{"cpu": "graph,chunked", "cuda-emu": "fused,chunked,unfused"} {
		code, stdout, stderr := dsx(t, "bench", "--device", dev, "--shapes", "1x4x3,1x1x1", "--steps", "1", "--warmup", "0",
			"--variants", variants, "--check", "--json")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", dev, code, stderr)
		}
		var recs []benchRecord
		if err := json.Unmarshal([]byte(stdout), &recs); err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.B != 1 || r.Skipped != "" || r.MsPerStep <= 0 || !r.Checked || r.LossDiff > 1e-5 {
				t.Errorf("%s: %+v", dev, r)
			}
		}
		if len(recs) < 4 {
			t.Errorf("%s: %d records", dev, len(recs))
		}
	}
}

// TestNegativeChunkAndBudget: negative --chunk-rows and --memory-budget
// are usage errors in bench (before any input is drawn) and plan, and the
// library's Open refuses them (backend.Capabilities.Check), as it refuses
// a negative vocabulary tile; -1 chunk rows means whole batches.
func TestNegativeChunkAndBudget(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--device", "cpu", "--shapes", "8x4x3", "--chunk-rows", "-2"},
		{"bench", "--device", "cpu", "--shapes", "8x4x3", "--chunk-rows", "-1"},
		{"bench", "--device", "cpu", "--shapes", "8x4x3", "--memory-budget", "-1"},
		{"plan", "--shape", "8x4x10", "--chunk-rows", "-5"},
		{"plan", "--shape", "8x4x10", "--memory-budget", "-1"},
	} {
		code, _, stderr := dsx(t, args...)
		if code != 2 || !strings.Contains(stderr, "want") || strings.Contains(stderr, "device cpu") {
			t.Errorf("%v: exit %d, %q; want a usage error before the device", args, code, stderr)
		}
	}
	if code, _, stderr := dsx(t, "plan", "--shape", "8x4x10", "--chunk-rows", "-1"); code != 0 {
		t.Errorf("plan --chunk-rows -1 (whole batches): exit %d: %s", code, stderr)
	}
}
