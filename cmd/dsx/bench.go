package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"dsx/backend"
	"dsx/graph"
	"dsx/internal/quote"

	"gorgonia.org/tensor"
)

// benchRecord is one line of `dsx bench --json`, and of a peer script's JSON
// (bench/peers/torch_xent.py writes the same names).
type benchRecord struct {
	B         int     `json:"B"`
	N         int     `json:"N"`
	T         int     `json:"T"`
	Device    string  `json:"device"`
	Variant   string  `json:"variant"` // graph (cpu), fused, unfused, chunked; torch-eager, torch-compile
	DType     string  `json:"dtype"`
	Mode      string  `json:"mode,omitempty"` // matmul mode: fp32, tf32, bf16
	Steps     int     `json:"steps"`
	MsPerStep float64 `json:"ms_per_step"` // median
	MsMin     float64 `json:"ms_min"`
	MsMax     float64 `json:"ms_max"`
	GFlops    float64 `json:"gflops"` // 4·B·N·T (x·W and xᵀ·dz) per median step

	// FloorMs is the median time of the step's matrix products alone, run
	// on the same layer in the same process; PctFloor = 100·FloorMs/MsPerStep.
	FloorMs  float64 `json:"floor_ms,omitempty"`
	PctFloor float64 `json:"pct_floor,omitempty"`
	// Memory (bytes). State: W, b, dW, db, optimizer state; Input: x and
	// targets; Extra: everything else (logits, per-row values, operand
	// copies: activations and workspace). For PyTorch, Extra is
	// max_memory_allocated minus the parameters, their gradients and the
	// batch.
	StateBytes  int64 `json:"state_bytes,omitempty"`
	InputBytes  int64 `json:"input_bytes,omitempty"`
	ExtraBytes  int64 `json:"extra_bytes,omitempty"`
	DeviceBytes int64 `json:"device_bytes,omitempty"` // cuMemGetInfo delta over the layer's life (incl. cuBLAS workspace)
	MaxMemAlloc int64 `json:"max_memory_allocated,omitempty"`
	ChunkRows   int   `json:"chunk_rows,omitempty"`

	// With --check: the difference from the fp32 fused unchunked layer on
	// the same batch and parameters: |Δloss|, and max|ΔdW|/max|dW|, max|Δdb|/max|db|.
	LossDiff float64 `json:"loss_diff,omitempty"`
	DWDiff   float64 `json:"dw_rel_diff,omitempty"`
	DBDiff   float64 `json:"db_rel_diff,omitempty"`
	Checked  bool    `json:"checked,omitempty"`

	VsEager float64 `json:"vs_torch_eager,omitempty"` // ms_per_step / torch-eager's on the same shape and mode
	Peer    string  `json:"peer,omitempty"`
	Skipped string  `json:"skipped,omitempty"` // why the row was not measured
}

type shape struct{ B, N, T int }

func parseShapes(s string) ([]shape, error) {
	var out []shape
	for _, f := range strings.Split(s, ",") {
		parts := strings.Split(strings.TrimSpace(f), "x")
		if len(parts) != 3 {
			return nil, usageErr("--shapes: %s is not BxNxT", quote.Value(f))
		}
		var v [3]int
		for i, p := range parts {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 {
				return nil, usageErr("--shapes: %s is not BxNxT with sizes ≥ 1", quote.Value(f))
			}
			v[i] = n
		}
		out = append(out, shape{v[0], v[1], v[2]})
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

type benchOpts struct {
	dt            tensor.Dtype
	warmup, steps int
	check         bool
	chunkRows     int
	budget        int64
}

func cmdBench(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", `Time training steps (forward, backward for W and b, SGD update) on random
data with a fixed seed: warm-up, then the median of --steps timed steps, on
every device and variant asked for. GFLOP/s counts the two matrix products,
4·B·N·T per step. On the GPU the batch stays on the device (as in the PyTorch
peer); each step ends by reading the loss, so it has finished when timed.
The floor is the step's cuBLAS products alone, timed on the same layer.
Memory: see bench/RESULTS.md.`, stdout)
	shapes := fs.String("shapes", "4096x784x10,4096x1024x1000", "comma-separated BxNxT")
	device := fs.String("device", "", "cpu, cuda, or a comma-separated list; default every available device; none: only merge --peers")
	dtype := fs.String("dtype", "float32", "float32 or float64")
	variants := fs.String("variants", "", "comma-separated: fused, unfused, chunked on cuda; graph, chunked on cpu (default: all of the device's)")
	modes := fs.String("modes", "fp32", "comma-separated matmul modes: fp32, tf32, bf16")
	steps := fs.Int("steps", 20, "timed steps per row")
	warmup := fs.Int("warmup", 3, "untimed steps first")
	check := fs.Bool("check", false, "report loss and gradient differences from the fp32 fused unchunked layer")
	chunkRows := fs.Int("chunk-rows", 0, "rows per chunk of the chunked variant (0: from --memory-budget, or B/4 when the logits fit it)")
	budget := fs.Int64("memory-budget", 0, "logits budget in bytes for the chunked variant's automatic chunk (0: 1 GiB)")
	peers := fs.String("peers", "", "comma-separated JSON files of records to merge: a peer's (bench/peers/torch_xent.py) or an earlier dsx bench --json")
	plot := fs.String("plot", "", "write a PNG of time and memory per shape to this file")
	asJSON := fs.Bool("json", false, "print a JSON array of records")
	if err := parse(fs, args); err != nil {
		return err
	}
	shs, err := parseShapes(*shapes)
	if err != nil {
		return err
	}
	dt, err := parseDType(*dtype)
	if err != nil {
		return err
	}
	if *steps < 1 || *warmup < 0 {
		return usageErr("--steps must be ≥ 1 and --warmup ≥ 0")
	}
	for _, v := range splitList(*variants) {
		if v != "fused" && v != "unfused" && v != "chunked" && v != "graph" {
			return usageErr("--variants: %s: want fused, unfused or chunked (cuda), graph or chunked (cpu)", quote.Value(v))
		}
	}
	ms := splitList(*modes)
	for _, m := range ms {
		if m != "fp32" && m != "tf32" && m != "bf16" {
			return usageErr("--modes: %s: want fp32, tf32 or bf16", quote.Value(m))
		}
	}
	var peerRecs []benchRecord
	for _, f := range splitList(*peers) {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("--peers: %w", err)
		}
		var rs []benchRecord
		if err := json.Unmarshal(b, &rs); err != nil {
			return fmt.Errorf("--peers: %s: %w", f, err)
		}
		peerRecs = append(peerRecs, rs...)
	}
	var bes []backend.Backend
	if *device != "none" {
		if bes, err = benchDevices(*device, stderr); err != nil {
			return err
		}
	}
	o := benchOpts{dt: dt, warmup: *warmup, steps: *steps, check: *check, chunkRows: *chunkRows, budget: *budget}
	vsets := map[string][]string{}
	for _, be := range bes {
		vs, note := deviceVariants(be.Name(), splitList(*variants))
		if note != "" {
			fmt.Fprintf(stderr, "dsx bench: %s\n", note)
		}
		vsets[be.Name()] = vs
	}
	// On a terminal the rows show as one line that is overwritten and then
	// in the table; in a log, one line per row as it is measured.
	total := 0
	for _, vs := range vsets {
		total += len(shs) * len(ms) * len(vs)
	}
	bar := newProgress(stderr, total)
	var recs []benchRecord
	for _, sh := range shs {
		for _, be := range bes {
			var ref *backend.Result
			d := newBenchData(sh, dt)
			for _, m := range ms {
				for _, v := range vsets[be.Name()] {
					if bar.tty {
						bar.set(int64(len(recs)), fmt.Sprintf("timing %d×%d×%d %s %s %s", sh.B, sh.N, sh.T, be.Name(), v, m))
					}
					r, res, err := benchRow(be, sh, d, v, m, o, ref)
					if err != nil {
						bar.clear()
						return fmt.Errorf("%dx%dx%d %s %s %s: %w", sh.B, sh.N, sh.T, be.Name(), v, m, err)
					}
					if res != nil && ref == nil && m == "fp32" && (v == "fused" || v == "graph") {
						ref = res
					}
					if !bar.tty {
						fmt.Fprintf(stderr, "dsx bench: %s\n", rowLine(r, usedColumns([]benchRecord{r})))
					}
					recs = append(recs, r)
				}
			}
		}
	}
	bar.clear()
	recs = append(recs, peerRecs...)
	relate(recs)
	if *plot != "" {
		if err := writePlot(*plot, recs); err != nil {
			return err
		}
	}
	if *asJSON {
		return writeJSON(stdout, recs)
	}
	cols := usedColumns(recs)
	fmt.Fprintln(stdout, rowHeader(cols))
	for _, r := range recs {
		fmt.Fprintln(stdout, rowLine(r, cols))
	}
	return nil
}

// deviceVariants returns the variants to run on a device, and a note when
// one asked for is not what runs there. The CPU has one step, the layer
// graph on Gorgonia's VM (its softmax-cross-entropy is the fused op), and
// its chunked form; cuda has fused, unfused and chunked.
func deviceVariants(dev string, asked []string) (vs []string, note string) {
	if dev == "cpu" {
		if len(asked) == 0 {
			return []string{"graph"}, ""
		}
		var notes []string
		for _, v := range asked {
			switch v {
			case "fused":
				notes = append(notes, "cpu runs variant fused as graph (the layer graph on Gorgonia's VM, whose softmax-cross-entropy is the fused op): its rows say graph")
				v = "graph"
			case "unfused":
				notes = append(notes, "cpu has no unfused variant: its row is skipped")
			}
			if !slices.Contains(vs, v) {
				vs = append(vs, v)
			}
		}
		return vs, strings.Join(notes, "; ")
	}
	if len(asked) == 0 {
		return []string{"fused", "unfused", "chunked"}, ""
	}
	for _, v := range asked {
		if v == "graph" {
			note = dev + " has no graph variant (the CPU's): its row is skipped"
		}
	}
	return asked, note
}

// benchDevices resolves --device: a list, or every available backend.
func benchDevices(device string, stderr io.Writer) ([]backend.Backend, error) {
	if device != "" && device != "all" {
		var out []backend.Backend
		for _, d := range splitList(device) {
			be, err := chooseDevice(d, stderr)
			if err != nil {
				return nil, err
			}
			out = append(out, be)
		}
		return out, nil
	}
	// May hand over to the GPU build, which then lists its backends.
	if _, err := chooseDevice("auto", stderr); err != nil {
		return nil, err
	}
	var out []backend.Backend
	for _, n := range backend.Names() {
		b, _ := backend.Get(n)
		if b.Available() == nil {
			out = append(out, b)
		}
	}
	return out, nil
}

// benchRow opens one layer and times it. ref, when not nil, is the fp32
// fused result of the same shape for --check; the row's own Compute result
// is returned (with --check) so the first row can become the reference.
func benchRow(be backend.Backend, sh shape, d benchData, variant, mode string, o benchOpts, ref *backend.Result) (benchRecord, *backend.Result, error) {
	rec := benchRecord{B: sh.B, N: sh.N, T: sh.T, Device: be.Name(), Variant: variant, DType: o.dt.String(), Mode: mode}
	cfg := backend.Config{
		Spec:      graph.Spec{B: sh.B, N: sh.N, T: sh.T, DType: o.dt, Want: graph.Want{W: true, B: true}},
		Optimizer: backend.Optimizer{Kind: "sgd", LR: 1e-3},
		MatMode:   mode,
		ChunkRows: -1,
	}
	switch variant {
	case "unfused":
		cfg.Xent = "unfused"
	case "chunked":
		cfg.ChunkRows, cfg.MemoryBudget = o.chunkRows, o.budget
		if o.chunkRows == 0 && cfg.Chunk(4) == sh.B {
			// The logits fit the budget: chunk anyway (4 chunks), so that
			// the variant is measured on every shape.
			cfg.ChunkRows = max(1, sh.B/4)
		}
	}
	if be.Name() != "cpu" && variant == "graph" {
		rec.Skipped = fmt.Sprintf("%s has no variant graph (the CPU's)", be.Name())
		return rec, nil, nil
	}
	l, err := be.Open(cfg)
	if errors.Is(err, backend.ErrNotImplemented) {
		rec.Skipped = err.Error()
		return rec, nil, nil
	}
	if err != nil {
		return rec, nil, err
	}
	defer l.Close()
	if err := l.SetParams(d.w, d.b); err != nil {
		return rec, nil, err
	}
	xt, yt := d.x, d.y
	var res *backend.Result
	if o.check {
		if res, err = l.Compute(xt, yt); err != nil {
			return rec, nil, err
		}
		if ref != nil {
			rec.Checked = true
			rec.LossDiff = math.Abs(res.Loss - ref.Loss)
			rec.DWDiff = relDiff(res.DW, ref.DW)
			rec.DBDiff = relDiff(res.DB, ref.DB)
		}
	}
	step := func() error { _, err := l.Step(xt, yt); return err }
	if r, ok := l.(backend.Resident); ok {
		if err := r.Load(xt, yt); err != nil {
			return rec, nil, err
		}
		step = func() error { _, err := r.StepLoaded(); return err }
	}
	for i := 0; i < o.warmup; i++ {
		if err := step(); err != nil {
			return rec, nil, err
		}
	}
	ms := make([]float64, o.steps)
	for i := range ms {
		t0 := time.Now()
		// A step returns the loss to the host, so it has finished on any
		// device when it returns.
		if err := step(); err != nil {
			return rec, nil, err
		}
		ms[i] = float64(time.Since(t0).Nanoseconds()) / 1e6
	}
	med := median(ms)
	sort.Float64s(ms)
	rec.Steps, rec.MsPerStep, rec.MsMin, rec.MsMax = o.steps, med, ms[0], ms[len(ms)-1]
	rec.GFlops = 4 * float64(sh.B) * float64(sh.N) * float64(sh.T) / (med * 1e6)
	if st, ok := l.(backend.Stats); ok {
		m := st.MemStats()
		rec.StateBytes, rec.InputBytes, rec.ExtraBytes, rec.DeviceBytes, rec.ChunkRows = m.StateBytes, m.InputBytes, m.ExtraBytes, m.DeviceBytes, m.ChunkRows
		f, err := st.FloorMs(sh.B, max(10, o.steps/2))
		if err != nil {
			return rec, nil, err
		}
		rec.FloorMs, rec.PctFloor = f, 100*f/med
	}
	return rec, res, nil
}

// benchData is one shape's random batch and parameters (fixed seed), made
// once for all of its rows.
type benchData struct{ x, y, w, b *tensor.Dense }

func newBenchData(sh shape, dt tensor.Dtype) benchData {
	rng := rand.New(rand.NewPCG(42, uint64(sh.B*sh.N*sh.T)))
	x := make([]float32, sh.B*sh.N)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	y := make([]float32, sh.B)
	for i := range y {
		y[i] = float32(rng.IntN(sh.T))
	}
	w := make([]float32, sh.N*sh.T)
	for i := range w {
		w[i] = float32(rng.NormFloat64() * 0.01)
	}
	return benchData{fromF32(x, dt, sh.B, sh.N), fromF32(y, dt, sh.B), fromF32(w, dt, sh.N, sh.T), fromF32(make([]float32, sh.T), dt, sh.T)}
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

// relDiff is max|a−b| / max|b|.
func relDiff(a, b *tensor.Dense) float64 {
	if a == nil || b == nil {
		return 0
	}
	av, bv := f64view(a), f64view(b)
	d, m := 0.0, 0.0
	for i := range b.Size() {
		d = math.Max(d, math.Abs(av(i)-bv(i)))
		m = math.Max(m, math.Abs(bv(i)))
	}
	if m == 0 {
		return d
	}
	return d / m
}

// f64view returns an indexed float64 view of a dense float tensor.
func f64view(t *tensor.Dense) func(int) float64 {
	switch d := t.Data().(type) {
	case []float32:
		return func(i int) float64 { return float64(d[i]) }
	case []float64:
		return func(i int) float64 { return d[i] }
	}
	return func(int) float64 { return 0 }
}
