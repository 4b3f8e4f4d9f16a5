package main

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestPlan: dsx plan lowers an LLM-size head without a GPU; with bfloat16
// storage and vocabulary tiles of 4096 in chunks of 4096 rows the extra
// device memory of 8192×4096×128256 stays under 256 MiB (issue 8's budget),
// where whole rows in the default 1 GiB chunks take over 1 GiB.
func TestPlan(t *testing.T) {
	plan := func(args ...string) planRecord {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(append([]string{"plan", "--json"}, args...), &out, &errb); code != 0 {
			t.Fatalf("dsx plan %v: exit %d: %s", args, code, errb.String())
		}
		var r planRecord
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	tiled := plan("--shape", "8192x4096x128256", "--storage", "bf16", "--vocab-tile", "4096", "--chunk-rows", "4096")
	whole := plan("--shape", "8192x4096x128256", "--matmul", "bf16")
	if tiled.ExtraBytes >= 256<<20 || whole.ExtraBytes < 1<<30 {
		t.Errorf("extra bytes: tiled %d (want < 256 MiB), whole rows %d (want ≥ 1 GiB)", tiled.ExtraBytes, whole.ExtraBytes)
	}
	if tiled.Steps["xvocab_stats_f32"] != 2*32 || tiled.Steps["gemm"] != 2*32*4 {
		t.Errorf("launches %v: want 64 xvocab_stats and 256 products (2 chunks × 32 tiles)", tiled.Steps)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"plan", "--shape", "8x4x10", "--storage", "bf16", "--matmul", "tf32"}, &out, &errb); code != 2 {
		t.Errorf("bf16 storage with tf32: exit %d, want a usage error: %s", code, errb.String())
	}
}

// TestPlanCPU: dsx plan --device cpu says the CPU's chunk rows and why; the
// default chunks hold far less than the whole batch's logits.
func TestPlanCPU(t *testing.T) {
	plan := func(args ...string) planRecord {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(append([]string{"plan", "--json", "--device", "cpu", "--shape", "8192x1024x32000"}, args...), &out, &errb); code != 0 {
			t.Fatalf("dsx plan %v: exit %d: %s", args, code, errb.String())
		}
		var r planRecord
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	def, whole := plan(), plan("--chunk-rows", "-1")
	if def.ChunkRows >= 8192 || def.ChunkWhy == "" || whole.ChunkRows != 8192 {
		t.Errorf("chunks: default %d (%q), never %d; want fewer than 8192 rows with a reason, and 8192", def.ChunkRows, def.ChunkWhy, whole.ChunkRows)
	}
	if 3*def.ExtraBytes > whole.ExtraBytes || whole.ExtraBytes < 2*8192*32000*4 {
		t.Errorf("extra bytes: default %d, whole %d; want the whole batch's two 8192×32000 buffers and the default under a third of that", def.ExtraBytes, whole.ExtraBytes)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"plan", "--device", "tpu"}, &out, &errb); code != 2 {
		t.Errorf("--device tpu: exit %d, want a usage error", code)
	}
}
