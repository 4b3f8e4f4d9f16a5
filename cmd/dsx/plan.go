package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"dsx/backend"
	"dsx/backend/cuda/lower"
	"dsx/backend/kit"
	"dsx/cpu"
	"dsx/graph"
	"dsx/internal/quote"
)

// planRecord is dsx plan's JSON: what the CUDA backend would allocate and
// run for one layer, from its lowering alone (no GPU involved).
type planRecord struct {
	Shape      string         `json:"shape"`
	Config     string         `json:"config"`
	ChunkRows  int            `json:"chunk_rows"`
	ChunkWhy   string         `json:"chunk_why,omitempty"` // the CPU's chunk rule's reason
	StateBytes int64          `json:"state_bytes"`
	InputBytes int64          `json:"input_bytes"`
	ExtraBytes int64          `json:"extra_bytes"`
	Buffers    []planBuffer   `json:"buffers"`
	Steps      map[string]int `json:"steps"` // launches per training step, by kernel or "gemm"
	Train      []string       `json:"train_plan"`
}

type planBuffer struct {
	What     string `json:"what"`
	Bytes    int64  `json:"bytes"`
	Category string `json:"category"`
}

func cmdPlan(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("plan", `Show what the CUDA backend would run and allocate for one layer, from its
lowering alone (pure Go: no GPU needed): the training plan step by step,
the launches per step, and every device buffer by category (state:
parameters, their gradients, optimizer state; input: the batch; extra:
everything else). cuBLAS's workspace and the allocator's rounding are not
included: they are what dsx bench's device_bytes adds on a GPU.
With --device cpu: the rows per chunk the CPU backend would run a batch in,
why, and its memory by category.`, stdout)
	device := fs.String("device", "cuda", "cuda, or cpu")
	shp := fs.String("shape", "8192x4096x128256", "BxNxT")
	dtype := fs.String("dtype", "float32", "float32 or float64")
	mode := fs.String("matmul", "fp32", "fp32, tf32 or bf16")
	storage := fs.String("storage", "fp32", "fp32, or bf16: x, dx and W's copy in bfloat16 (float32 master weights)")
	vocab := fs.Int("vocab-tile", 0, "classes per vocabulary tile (0: whole rows)")
	chunk := fs.Int("chunk-rows", 0, "rows per chunk (0: from --memory-budget; -1: never)")
	budget := fs.Int64("memory-budget", 0, "bytes the logits (or a tile of them) may take (0: 1 GiB)")
	xent := fs.String("xent", "fused", "fused or unfused")
	grads := fs.String("grads", "W,b,x", "gradients computed: comma-separated W, b, x")
	opt := fs.String("optimizer", "adam", "adam, sgd, or none")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	shs, err := parseShapes(*shp)
	if err != nil || len(shs) != 1 {
		return usageErr("--shape: want one BxNxT")
	}
	dt, err := parseDType(*dtype)
	if err != nil {
		return err
	}
	var want graph.Want
	for _, g := range splitList(*grads) {
		switch strings.ToLower(g) {
		case "w":
			want.DW = true
		case "b":
			want.DB = true
		case "x":
			want.DX = true
		case "none":
		default:
			return usageErr("--grads: %s is not W, b, x or none", quote.Value(g))
		}
	}
	mm, err := backend.ParseMatMode(*mode)
	if err != nil {
		return usageErr("--matmul: %v", err)
	}
	xi, err := backend.ParseXentImpl(*xent)
	if err != nil {
		return usageErr("--xent: %v", err)
	}
	st, err := backend.ParseStorage(*storage)
	if err != nil {
		return usageErr("--storage: %v", err)
	}
	ok, err := backend.ParseOptimizerKind(*opt)
	if err != nil {
		return usageErr("--optimizer: %v", err)
	}
	s := shs[0]
	cfg := backend.Config{Spec: graph.Spec{B: s.B, N: s.N, T: s.T, DType: dt, Want: want}, MatMode: mm, Xent: xi,
		Storage: st, VocabTile: *vocab, ChunkRows: *chunk, MemoryBudget: *budget}
	if ok != backend.NoOptimizer {
		cfg.Optimizer = backend.Optimizer{Kind: ok, LR: 1e-3}
	}
	if err := cfg.Spec.Validate(); err != nil {
		return usageErr("%v", err)
	}
	switch *device {
	case "cpu":
		return planCPU(cfg, *asJSON, stdout)
	case "cuda":
	default:
		return usageErr("--device %s: want cuda or cpu", quote.Value(*device))
	}
	if err := lower.Capabilities().Check("cuda", cfg); err != nil {
		return usageErr("%v", err)
	}
	l, err := lower.Lower(cfg)
	if err != nil {
		return err
	}
	r := planRecord{Shape: fmt.Sprintf("%dx%dx%d", s.B, s.N, s.T), ChunkRows: l.Chunk, Steps: map[string]int{},
		Train: l.Train.Describe(), Config: describeConfig(cfg)}
	ms := l.MemStats()
	r.StateBytes, r.InputBytes, r.ExtraBytes = ms.StateBytes, ms.InputBytes, ms.ExtraBytes
	for _, b := range l.Buffers {
		r.Buffers = append(r.Buffers, planBuffer{b.What, b.Bytes, b.Cat.String()})
	}
	sort.SliceStable(r.Buffers, func(i, j int) bool { return r.Buffers[i].Bytes > r.Buffers[j].Bytes })
	// Launches per training step: run the plan's schedule without a device.
	err = l.Train.Run(s.B, planChunk(l), false, func(i int, c lower.Ctx) error {
		name := "gemm"
		if k, ok := l.Train.Steps[i].Op.(lower.Kernel); ok {
			name = k.Kernel()
		}
		r.Steps[name]++
		return nil
	}, nil)
	if err != nil {
		return err
	}
	for _, s := range l.Optim {
		if k, ok := s.Op.(lower.Kernel); ok {
			r.Steps[k.Kernel()]++
		}
	}
	if *asJSON {
		e := json.NewEncoder(stdout)
		e.SetIndent("", "  ")
		return e.Encode(r)
	}
	fmt.Fprintf(stdout, "layer %s %v, %s; %d rows per chunk\n\ntraining plan:\n", r.Shape, dt, r.Config, r.ChunkRows)
	for _, line := range r.Train {
		fmt.Fprintf(stdout, "  %s\n", line)
	}
	var names []string
	for n := range r.Steps {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(stdout, "\nlaunches per training step (optimizer included):")
	for _, n := range names {
		fmt.Fprintf(stdout, " %s×%d", n, r.Steps[n])
	}
	fmt.Fprintf(stdout, "\n\ndevice memory: state %s, input %s, extra %s\n", mib(r.StateBytes), mib(r.InputBytes), mib(r.ExtraBytes))
	for _, b := range r.Buffers {
		fmt.Fprintf(stdout, "  %-8s %12s  %s\n", b.Category, mib(b.Bytes), b.What)
	}
	return nil
}

// planCPU prints the CPU backend's chunk rows for cfg, why, and its memory
// by category (kit.FootprintRows).
func planCPU(cfg backend.Config, asJSON bool, stdout io.Writer) error {
	if err := (cpu.Backend{}).Capabilities().Check("cpu", cfg); err != nil {
		return usageErr("%v", err)
	}
	rows, why := cpu.ChunkPlan(cfg)
	ms, err := kit.FootprintRows(cfg, rows)
	if err != nil {
		return err
	}
	r := planRecord{Shape: fmt.Sprintf("%dx%dx%d", cfg.B, cfg.N, cfg.T), Config: describeConfig(cfg), ChunkRows: rows, ChunkWhy: why,
		StateBytes: ms.StateBytes, InputBytes: ms.InputBytes, ExtraBytes: ms.ExtraBytes}
	if asJSON {
		e := json.NewEncoder(stdout)
		e.SetIndent("", "  ")
		return e.Encode(r)
	}
	fmt.Fprintf(stdout, "layer %s %v on the cpu, %s\nchunks of %s\nmemory: state %s, input %s, extra %s\n",
		r.Shape, cfg.DType, r.Config, why, mib(r.StateBytes), mib(r.InputBytes), mib(r.ExtraBytes))
	return nil
}

// planChunk is the rows per chunk the training plan runs with.
func planChunk(l *lower.Program) int {
	if l.Train.Chunk > 0 {
		return l.Train.Chunk
	}
	return l.Chunk
}

func describeConfig(c backend.Config) string {
	var parts []string
	add := func(k, v string) { parts = append(parts, k+" "+v) }
	if c.MatMode != backend.FP32 {
		add("matmul", c.MatMode.String())
	}
	if c.Xent != backend.Fused {
		add("xent", c.Xent.String())
	}
	if c.Storage != backend.StorageF32 {
		add("storage", c.Storage.String())
	}
	if c.VocabTile > 0 {
		add("vocabulary tiles of", fmt.Sprint(c.VocabTile))
	}
	if len(parts) == 0 {
		return "defaults"
	}
	return strings.Join(parts, ", ")
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
