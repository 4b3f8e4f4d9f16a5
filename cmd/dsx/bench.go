package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"dsx/backend"
	"dsx/backend/kit"
	"dsx/dist"
	"dsx/graph"
	"dsx/internal/atomicfile"
	"dsx/internal/benchdata"
	"dsx/internal/dense"
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
	Variant   string  `json:"variant"` // graph (cpu), fused, unfused, chunked, tiled; torch-eager, torch-compile, cce, liger-flce
	DType     string  `json:"dtype"`
	Mode      string  `json:"mode,omitempty"`    // matmul mode: fp32, tf32, bf16
	Storage   string  `json:"storage,omitempty"` // f32, or bf16: x, dx and W's copy in bfloat16 (float32 master weights)
	Grads     string  `json:"grads,omitempty"`   // the gradients each step computes: W,b or W,b,x ("" in old records: W,b)
	Inputs    string  `json:"inputs,omitempty"`  // random or lm (internal/benchdata); "" in old records: normal random
	VocabTile int     `json:"vocab_tile,omitempty"`
	Softcap   float64 `json:"softcap,omitempty"`
	ZLoss     float64 `json:"z_loss,omitempty"`
	Steps     int     `json:"steps"`
	MsPerStep float64 `json:"ms_per_step"` // median
	MsMin     float64 `json:"ms_min"`
	MsMax     float64 `json:"ms_max"`
	GFlops    float64 `json:"gflops"` // 2·B·N·T per product (x·W, xᵀ·dz, and dz·Wᵀ with dx) per median step

	// Loss0 and Entropy0 are the mean loss and softmax entropy (nats) of
	// the first ≤ 256 rows at the initial parameters, in float64: the same
	// for every implementation given the same inputs (the peers report them
	// too).
	Loss0    float64 `json:"loss0,omitempty"`
	Entropy0 float64 `json:"entropy0,omitempty"`

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
	// ChunkWhy says why the batch ran in chunks of ChunkRows rows (the
	// CPU's chunk rule, or the settings that chose them).
	ChunkWhy string `json:"chunk_why,omitempty"`

	// With --check: the difference from the fp32 fused unchunked layer on
	// the same batch and parameters: |Δloss|, and max|ΔdW|/max|dW|,
	// max|Δdb|/max|db|, max|Δdx|/max|dx|.
	LossDiff float64 `json:"loss_diff,omitempty"`
	DWDiff   float64 `json:"dw_rel_diff,omitempty"`
	DBDiff   float64 `json:"db_rel_diff,omitempty"`
	DXDiff   float64 `json:"dx_rel_diff,omitempty"`
	Checked  bool    `json:"checked,omitempty"`

	// Data-parallel rows (dsx bench under mpirun): the ranks, each stepping
	// on its share of B; the all-reduce of dW and db a step (wall time,
	// and bytes each rank puts in), and how it ran. ms_per_step and
	// GFLOP/s are the global batch's.
	Ranks          int     `json:"ranks,omitempty"`
	AllReduceMs    float64 `json:"allreduce_ms,omitempty"`
	AllReduceBytes int64   `json:"allreduce_bytes,omitempty"`
	Reduce         string  `json:"reduce,omitempty"`

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
	dt             tensor.Dtype
	warmup, steps  int
	check          bool
	chunkRows      int
	budget         int64
	dx             bool // --grads W,b,x
	vocabTile      int
	softcap, zloss float64
	seed           uint32
	comm           dist.Comm // data-parallel rows: this rank's job (nil alone)
}

func cmdBench(args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlags("bench", `Time training steps (forward, backward for the --grads asked for, SGD
update) on inputs drawn with a fixed seed (--inputs: random, or lm, logits
like a trained language model's; bench/peers/benchdata.py draws the same bits
for the Python peers): warm-up, then the median of --steps timed steps, on
every device, variant, matmul mode and storage asked for. GFLOP/s counts the
matrix products, 2·B·N·T each (two, three with dx). On the GPU the batch
stays on the device (as in the peers); each step ends by reading the loss,
so it has finished when timed. The floor is the step's cuBLAS products
alone, timed on the same layer. Memory: see bench/RESULTS.md.`, stdout)
	shapes := fs.String("shapes", "4096x784x10,4096x1024x1000", "comma-separated BxNxT")
	device := fs.String("device", "", "cpu, cuda, or a comma-separated list; default every available device; none: only merge --peers")
	dtype := fs.String("dtype", "float32", "float32 or float64")
	variants := fs.String("variants", "", "comma-separated: fused, unfused, chunked, tiled on cuda; graph, chunked on cpu (default: the softmax-cross-entropy implementations the device declares, and chunked on a GPU)")
	modes := fs.String("modes", "fp32", "comma-separated matmul modes: fp32, tf32, bf16")
	storages := fs.String("storage", "fp32", "comma-separated: fp32, bf16 (x, dx and W's copy in bfloat16, float32 master weights; implies mode bf16)")
	grads := fs.String("grads", "W,b", "the gradients each step computes: W,b or W,b,x (dx too, as the peers' step)")
	inputs := fs.String("inputs", "random", "comma-separated: random, lm (logits like a trained LM's: a few nats of entropy)")
	seed := fs.Uint("seed", 42, "seed of the inputs")
	vocabTile := fs.Int("vocab-tile", 8192, "classes per vocabulary tile of the tiled variant")
	softcap := fs.Float64("softcap", 0, "logit soft-capping C (0: off)")
	zloss := fs.Float64("z-loss", 0, "z-loss λ (0: off)")
	steps := fs.Int("steps", 20, "timed steps per row")
	warmup := fs.Int("warmup", 3, "untimed steps first")
	check := fs.Bool("check", false, "report loss and gradient differences from the fp32 fused unchunked layer")
	chunkRows := fs.Int("chunk-rows", 0, "rows per chunk of the chunked variant (0: from --memory-budget, or B/4 when the logits fit it), and of the CPU's graph row (0: the CPU's rule; B or more: the whole batch)")
	budget := fs.Int64("memory-budget", 0, "logits budget in bytes for the chunked variant's automatic chunk and the CPU's graph row (0: 1 GiB)")
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
	known := knownVariants()
	for _, v := range splitList(*variants) {
		if !slices.Contains(known, v) {
			return usageErr("--variants: %s: want %s", quote.Value(v), strings.Join(known, ", "))
		}
	}
	var sts []backend.Storage
	for _, v := range splitList(*storages) {
		st, err := backend.ParseStorage(v)
		if err != nil {
			return usageErr("--storage: %v", err)
		}
		sts = append(sts, st)
	}
	if *grads != "W,b" && *grads != "W,b,x" {
		return usageErr("--grads: %s: want W,b or W,b,x", quote.Value(*grads))
	}
	var kinds []benchdata.Kind
	for _, k := range splitList(*inputs) {
		kd, err := benchdata.ParseKind(k)
		if err != nil {
			return usageErr("--inputs: %v", err)
		}
		kinds = append(kinds, kd)
	}
	if *vocabTile < 1 {
		return usageErr("--vocab-tile must be ≥ 1")
	}
	if *chunkRows < 0 || *budget < 0 {
		return usageErr("--chunk-rows %d, --memory-budget %d: want ≥ 0 (0: automatic, 1 GiB)", *chunkRows, *budget)
	}
	if *seed > math.MaxUint32 {
		return usageErr("--seed must fit 32 bits")
	}
	if lo := (graph.LossOptions{Softcap: *softcap, ZLoss: *zloss}); lo.Validate(2) != nil {
		return usageErr("--softcap/--z-loss: %v", lo.Validate(2))
	}
	var ms []backend.MatMode
	for _, m := range splitList(*modes) {
		mm, err := backend.ParseMatMode(m)
		if err != nil {
			return usageErr("--modes: %v", err)
		}
		ms = append(ms, mm)
	}
	if *device != "" && *device != "all" && *device != "none" {
		for _, d := range splitList(*device) {
			if _, err := deviceName(d); err != nil {
				return err
			}
		}
	}
	// Where the plot goes is checked now, not after the timing.
	if *plot != "" {
		if err := atomicfile.Check(*plot); err != nil {
			return fmt.Errorf("--plot: %w", err)
		}
	}
	if err := checkNotInput("--plot", *plot, splitList(*peers)...); err != nil {
		return err
	}
	var peerRecs []benchRecord
	for _, f := range splitList(*peers) {
		rs, err := readPeers(f)
		if err != nil {
			return err
		}
		peerRecs = append(peerRecs, rs...)
	}
	stdout, stderr = quiet(stdout), quiet(stderr) // under mpirun, rank 0 reports
	var bes []backend.Backend
	if *device != "none" {
		if bes, err = benchDevices(*device, stderr); err != nil {
			return err
		}
	}
	w, err := joinWorld(stderr)
	if err != nil {
		return err
	}
	defer func() { w.end(err) }()
	o := benchOpts{dt: dt, warmup: *warmup, steps: *steps, check: *check, chunkRows: *chunkRows, budget: *budget,
		dx: *grads == "W,b,x", vocabTile: *vocabTile, softcap: *softcap, zloss: *zloss, seed: uint32(*seed), comm: w.comm}
	vsets := map[string][]string{}
	for _, be := range bes {
		vs, note := deviceVariants(be, splitList(*variants))
		if note != "" {
			fmt.Fprintf(stderr, "dsx bench: %s\n", note)
		}
		vsets[be.Name()] = vs
	}
	// On a terminal the rows show as one line that is overwritten and then
	// in the table; in a log, one line per row as it is measured.
	settings := benchSettings(sts, ms)
	total := 0
	for _, vs := range vsets {
		total += len(shs) * len(kinds) * len(settings) * len(vs)
	}
	bar := newProgress(stderr, total)
	var recs []benchRecord
	hostLayers := slices.ContainsFunc(bes, func(b backend.Backend) bool { return b.Name() == "cpu" })
	for _, sh := range shs {
		if err := checkBenchMemory(sh, o, hostLayers); err != nil {
			return err
		}
		for _, kind := range kinds {
			d, err := newBenchData(sh, dt, kind, o.seed)
			if err != nil {
				return err
			}
			for _, be := range bes {
				base, err := benchBase(be, sh, d, o)
				if err != nil {
					return fmt.Errorf("%dx%dx%d %s %v inputs: %w", sh.B, sh.N, sh.T, be.Name(), kind, err)
				}
				runtime.GC() // the reference layer's memory, before the rows open theirs
				debug.FreeOSMemory()
				for _, set := range settings {
					for _, v := range vsets[be.Name()] {
						what := fmt.Sprintf("%d×%d×%d %s %s %v %v storage %v inputs", sh.B, sh.N, sh.T, be.Name(), v, set.mode, set.storage, kind)
						if bar.tty {
							bar.set(int64(len(recs)), "timing "+what)
						}
						r, err := benchRow(be, sh, d, v, set, o, base)
						if err != nil {
							bar.clear()
							return fmt.Errorf("%s: %w", what, err)
						}
						// The closed layer's memory goes back before the
						// next opens: the bench holds one layer at a time,
						// not the garbage of the last ones too.
						runtime.GC()
						debug.FreeOSMemory()
						if !bar.tty {
							fmt.Fprintf(stderr, "dsx bench: %s\n", rowLine(r, usedColumns([]benchRecord{r})))
						}
						recs = append(recs, r)
					}
				}
			}
		}
	}
	bar.clear()
	for _, r := range recs {
		if r.ChunkWhy != "" {
			fmt.Fprintf(stderr, "dsx bench: %d×%d×%d %s %s: chunks of %s\n", r.B, r.N, r.T, r.Device, r.Variant, r.ChunkWhy)
		}
	}
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

// benchRow opens one layer and times it; base holds the shape's reference
// result (--check) and row statistics.
func benchRow(be backend.Backend, sh shape, d benchData, variant string, set benchSetting, o benchOpts, base benchBaseline) (benchRecord, error) {
	rec := benchRecord{B: sh.B, N: sh.N, T: sh.T, Device: be.Name(), Variant: variant, DType: o.dt.String(), Mode: set.mode.String(),
		Storage: set.storage.String(), Grads: "W,b", Inputs: d.kind.String(), Softcap: o.softcap, ZLoss: o.zloss,
		Loss0: base.loss0, Entropy0: base.entropy0}
	if o.dx {
		rec.Grads = "W,b,x"
	}
	cfg := benchConfig(sh, o)
	cfg.MatMode, cfg.Storage = set.mode, set.storage
	if rec.Skipped = variantConfig(&cfg, be.Capabilities(), be.Name(), variant, o); rec.Skipped != "" {
		return rec, nil
	}
	rec.VocabTile = cfg.VocabTile
	xt, yt, rows, err := o.share(&cfg, d, sh.B)
	if err != nil {
		return rec, err
	}
	l, err := be.Open(cfg)
	if errors.Is(err, backend.ErrNotImplemented) {
		rec.Skipped = err.Error()
		return rec, nil
	}
	if err != nil {
		return rec, err
	}
	defer l.Close()
	if err := l.SetParams(d.w, d.b); err != nil {
		return rec, err
	}
	if base.ref != nil {
		res, err := l.Compute(xt, yt)
		if err != nil {
			return rec, err
		}
		rec.Checked = true
		rec.LossDiff = math.Abs(res.Loss - base.ref.Loss)
		rec.DWDiff = relDiff(res.DW, base.ref.DW)
		rec.DBDiff = relDiff(res.DB, base.ref.DB)
		rec.DXDiff = relDiff(res.DX, base.ref.DX)
	}
	step := func() error { _, err := l.Step(xt, yt); return err }
	if r, ok := l.(kit.Resident); ok {
		if err := r.Load(xt, yt); err != nil {
			return rec, err
		}
		step = func() error { _, err := r.StepLoaded(); return err }
	}
	for i := 0; i < o.warmup; i++ {
		if err := step(); err != nil {
			return rec, err
		}
	}
	ms := make([]float64, o.steps)
	for i := range ms {
		t0 := time.Now()
		// A step returns the loss to the host, so it has finished on any
		// device when it returns.
		if err := step(); err != nil {
			return rec, err
		}
		ms[i] = float64(time.Since(t0).Nanoseconds()) / 1e6
	}
	med := median(ms)
	sort.Float64s(ms)
	rec.Steps, rec.MsPerStep, rec.MsMin, rec.MsMax = o.steps, med, ms[0], ms[len(ms)-1]
	products := 2.0
	if o.dx {
		products = 3
	}
	rec.GFlops = 2 * products * float64(sh.B) * float64(sh.N) * float64(sh.T) / (med * 1e6)
	parallelStats(&rec, l, o.ranks())
	if st, ok := l.(kit.Stats); ok {
		m := st.MemStats()
		rec.StateBytes, rec.InputBytes, rec.ExtraBytes, rec.DeviceBytes, rec.ChunkRows = m.StateBytes, m.InputBytes, m.ExtraBytes, m.DeviceBytes, m.ChunkRows
		if c, ok := l.(interface{ ChunkReason() string }); ok {
			rec.ChunkWhy = c.ChunkReason()
		}
		// Half as many repetitions as timed steps, 3 to 10 (a CPU step at a
		// large shape takes seconds).
		f, err := st.FloorMs(max(1, rows), min(10, max(3, o.steps/2)))
		if err != nil {
			return rec, err
		}
		rec.FloorMs, rec.PctFloor = f, 100*f/med
	}
	return rec, nil
}

// benchData is one shape's batch and parameters, drawn once for all of its
// rows (internal/benchdata: the Python peers draw the same bits).
type benchData struct {
	kind       benchdata.Kind
	x, y, w, b *tensor.Dense
}

func newBenchData(sh shape, dt tensor.Dtype, kind benchdata.Kind, seed uint32) (benchData, error) {
	in, err := benchdata.Generate(kind, sh.B, sh.N, sh.T, seed)
	if err != nil {
		return benchData{}, err
	}
	y := make([]float32, sh.B)
	for i, c := range in.Y {
		y[i] = float32(c)
	}
	// float32 layers take the draw as it is; float64 ones a copy.
	asDT := func(v []float32, shape ...int) *tensor.Dense {
		if dt == tensor.Float32 {
			return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))
		}
		return dense.New(dt, v, shape...)
	}
	return benchData{kind, asDT(in.X, sh.B, sh.N), asDT(y, sh.B), asDT(in.W, sh.N, sh.T), asDT(make([]float32, sh.T), sh.T)}, nil
}

// checkBenchMemory refuses, before anything is drawn, a shape whose bench
// the host cannot hold at once (a shape flag asks for what it likes):
// the float32 draw of x, W and the labels, their copies for a float64
// layer, the targets and b, and with host layers (the CPU backend) the
// largest layer the shape opens, the whole batch's (kit.Footprint,
// less the inputs counted already). The backend's Open checks its own
// layer again, exactly.
func checkBenchMemory(sh shape, o benchOpts, hostLayers bool) error {
	var z kit.Sizer
	B, N, T := int64(sh.B), int64(sh.N), int64(sh.T)
	es := int64(o.dt.Size())
	elems := z.Add(z.Mul(B, N), z.Mul(N, T))
	need := z.Add(z.Mul(4, elems), z.Mul(4+4+es, B), z.Mul(es, T)) // draw, labels, targets, b
	if es != 4 {
		need = z.Add(need, z.Mul(es, elems)) // the float64 copies
	}
	if hostLayers {
		fp, err := kit.Footprint(benchConfig(sh, o))
		if err != nil {
			return fmt.Errorf("bench %d×%d×%d: %w", sh.B, sh.N, sh.T, err)
		}
		need = z.Add(need, fp.StateBytes, fp.ExtraBytes)
	}
	what := fmt.Sprintf("bench %d×%d×%d (inputs and layer)", sh.B, sh.N, sh.T)
	if err := z.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return kit.CheckHostMemory(what, need)
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
	av, bv := dense.F64(a), dense.F64(b)
	d, m := 0.0, 0.0
	for i := range bv {
		d = math.Max(d, math.Abs(av[i]-bv[i]))
		m = math.Max(m, math.Abs(bv[i]))
	}
	if m == 0 {
		return d
	}
	return d / m
}
