package cpu

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"unsafe"

	"dsx/backend"
	"dsx/backend/kit"
	"dsx/graph"
	"dsx/internal/dense"
	"dsx/internal/rowmath"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func init() { backend.Register(Backend{}, 0) }

// Backend is the CPU backend.
type Backend struct{}

func (Backend) Name() string     { return "cpu" }
func (Backend) Available() error { return nil }
func (Backend) Devices() ([]backend.Device, error) {
	return []backend.Device{{Name: fmt.Sprintf("CPU (%s/%s, Gorgonia TapeMachine)", runtime.GOOS, runtime.GOARCH), Threads: runtime.GOMAXPROCS(0)}}, nil
}

// Capabilities: float32 and float64 layers, products in the layer's dtype
// only, the graph's fused op with every loss option, and row chunks; no
// bfloat16 storage, no vocabulary tiles.
func (Backend) Capabilities() backend.Capabilities {
	return backend.Capabilities{
		DTypes:       []tensor.Dtype{tensor.Float32, tensor.Float64},
		Xents:        map[backend.XentImpl]backend.XentCaps{backend.Fused: {Loss: backend.AllLoss}},
		Chunks:       true,
		FusedName:    "graph",
		DataParallel: true,
	}
}

// Open compiles nothing yet: a graph is compiled the first time a batch size
// is seen.
func (b Backend) Open(cfg backend.Config) (backend.Layer, error) {
	if err := cfg.Spec.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Optimizer.Validate(); err != nil {
		return nil, err
	}
	if err := b.Capabilities().Check("cpu", cfg); err != nil {
		return nil, err
	}
	cfg.Optimizer = cfg.Optimizer.WithDefaults()
	if err := checkMemory(cfg); err != nil {
		return nil, err
	}
	l := &layer{cfg: cfg, train: map[int]*machine{}, fwd: map[int]*machine{}, ranks: kit.DataParallel(cfg)}
	l.w = tensor.New(tensor.WithShape(cfg.N, cfg.T), tensor.Of(cfg.DType))
	l.b = tensor.New(tensor.WithShape(cfg.T), tensor.Of(cfg.DType))
	switch cfg.DType {
	case tensor.Float32:
		l.opt = newOptim[float32](cfg.Optimizer, cfg.N*cfg.T, cfg.T)
	default:
		l.opt = newOptim[float64](cfg.Optimizer, cfg.N*cfg.T, cfg.T)
	}
	return l, nil
}

// checkMemory refuses a layer whose buffers would not fit the host's
// available memory (kit.Footprint, less the input, which the caller
// holds, plus the whole-batch sums of a chunked batch), so that an absurd
// shape is an error wrapping backend.ErrOutOfMemory rather than the
// runtime's fatal "out of memory".
func checkMemory(cfg backend.Config) error {
	fp, err := kit.Footprint(cfg)
	what := fmt.Sprintf("cpu: layer B×N×T = %d×%d×%d %v", cfg.B, cfg.N, cfg.T, cfg.DType)
	if err != nil {
		return fmt.Errorf("cpu: %w", err)
	}
	var z kit.Sizer
	need := z.Add(fp.StateBytes, fp.ExtraBytes)
	if fp.ChunkRows < cfg.B {
		es, B, N, T := int64(cfg.DType.Size()), int64(cfg.B), int64(cfg.N), int64(cfg.T)
		need = z.Add(need, z.Mul(es, z.Add(z.Mul(N, T), T, z.Mul(B, N), B)))
	}
	if err := z.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return kit.CheckHostMemory(what, need)
}

type machine struct {
	g  *graph.Head
	vm G.VM
	pc *int // the tape machine's program counter, when it could be found
}

// newMachine compiles sub into a TapeMachine.
//
// Between runs the machine must go back to its first instruction.
// TapeMachine.Reset does that but also drops every register, so that each
// run allocates its B×T and N×T buffers afresh (the Alloc instructions find
// nothing to reuse): 37 MB per step at 4096×1024×1000. rewind sets only the
// program counter back, so that the registers, and the buffers in them, are
// reused; every instruction still runs (arguments are reloaded, products
// written with β = 0 and the other ops recomputed). The counter is found by
// name through reflect; should a later Gorgonia rename it, rewind falls back
// to Reset (TestRewind fails to say so).
func newMachine(g *graph.Head, sub *G.ExprGraph) *machine {
	vm := G.NewTapeMachine(sub)
	m := &machine{g: g, vm: vm}
	if v := reflect.ValueOf(vm); v.Kind() == reflect.Pointer && v.Elem().Kind() == reflect.Struct {
		if f := v.Elem().FieldByName("pc"); f.IsValid() && f.Kind() == reflect.Int && f.CanAddr() {
			m.pc = (*int)(unsafe.Pointer(f.UnsafeAddr()))
		}
	}
	return m
}

// rewind readies the machine for the next run (see newMachine).
func (m *machine) rewind() {
	if m.pc != nil {
		*m.pc = 0
		return
	}
	m.vm.Reset()
}

type layer struct {
	cfg   backend.Config
	w, b  *tensor.Dense // bound to the W and b nodes of every compiled graph
	train map[int]*machine
	fwd   map[int]*machine
	opt   optimizer
	shut  bool
	acc   *accum     // sums and gathers of chunked batches, made on first use
	ranks *kit.Ranks // the data-parallel job's collectives (parallel.go); nil in one process
}

func (l *layer) Config() backend.Config { return l.cfg }

// compile builds and compiles the graph for a batch of rows.
func (l *layer) compile(rows int, forward bool) (*machine, error) {
	cache := l.train
	if forward {
		cache = l.fwd
	}
	if m, ok := cache[rows]; ok {
		return m, nil
	}
	spec := l.cfg.Spec
	spec.B = rows
	if forward {
		spec.Want = graph.Want{}
	}
	g, err := graph.Build(spec)
	if err != nil {
		return nil, err
	}
	if err := G.Let(g.W, l.w); err != nil {
		return nil, err
	}
	if err := G.Let(g.Bias, l.b); err != nil {
		return nil, err
	}
	sub := g.TrainGraph()
	if forward {
		sub = g.ForwardGraph()
	}
	m := newMachine(g, sub)
	cache[rows] = m
	return m, nil
}

func (l *layer) check() error {
	if l.shut {
		return errors.New("cpu: layer used after Close")
	}
	return nil
}

func (l *layer) SetParams(W, b *tensor.Dense) error {
	if err := l.check(); err != nil {
		return err
	}
	if err := kit.CheckParams(l.cfg, W, b); err != nil {
		return err
	}
	if err := tensor.Copy(l.w, W); err != nil {
		return err
	}
	if err := tensor.Copy(l.b, b); err != nil {
		return err
	}
	l.opt.reset()
	return nil
}

func (l *layer) Params() (*tensor.Dense, *tensor.Dense, error) {
	if err := l.check(); err != nil {
		return nil, nil, err
	}
	return l.w.Clone().(*tensor.Dense), l.b.Clone().(*tensor.Dense), nil
}

// result is one batch's loss and gradients as views owned by the layer or
// its machines, valid until the next run; nil when not computed.
type result struct {
	loss               float64
	losses, dw, db, dx tensor.Tensor
}

// run runs the training graph on a batch: whole, or in chunks of
// Config.Chunk rows whose logits exist one chunk at a time, each scaled by
// the whole batch's Mean denominator, with dW and db summed over the chunks
// and dx and per-row losses gathered. global, when not nil, is the Mean
// denominators to scale by instead of the batch's own: those of the global
// batch of which this is one rank's share (parallel.go).
func (l *layer) run(x, targets *tensor.Dense, global *[2]float64) (result, error) {
	if err := l.check(); err != nil {
		return result{}, err
	}
	if targets == nil {
		return result{}, errors.New("batch: targets are nil")
	}
	rows, err := kit.CheckBatch(l.cfg, x, targets)
	if err != nil {
		return result{}, err
	}
	x, targets = kit.Contiguous(x), kit.Contiguous(targets) // views read as the values they show
	chunk := l.cfg.Chunk(int(l.cfg.DType.Size()))
	if rows <= chunk {
		m, err := l.runMachine(rows, x, targets, global)
		if err != nil {
			return result{}, kit.ExplainNonFinite(err, 0, x, l.w, l.b)
		}
		r := result{loss: scalar(m.g.Loss.Value()), dw: value(m.g.DW), db: value(m.g.DB), dx: value(m.g.DX)}
		if l.cfg.Loss.Reduction == graph.None {
			r.losses = value(m.g.Xent)
		}
		return r, nil
	}
	// The targets of the whole batch are checked here, so that an error
	// names the batch's row rather than a row of a chunk, and the Mean
	// denominator is the whole batch's.
	denom, kept, err := wholeBatch(targets, rows, l.cfg.T, &l.cfg.Loss)
	if err != nil {
		return result{}, err
	}
	if global != nil {
		denom, kept = global[0], global[1]
	}
	if l.acc == nil {
		l.acc = newAccum(l.cfg)
	}
	r := result{}
	for r0 := 0; r0 < rows; r0 += chunk {
		r1 := min(r0+chunk, rows)
		xs := rowsOf(x, r0, r1)
		m, err := l.runMachine(r1-r0, xs, rowsOf(targets, r0, r1), &[2]float64{denom, kept})
		if err != nil {
			return result{}, kit.ExplainNonFinite(err, r0, xs, l.w, l.b)
		}
		r.loss += scalar(m.g.Loss.Value())
		first := r0 == 0
		if m.g.DW != nil {
			addInto(l.acc.dw, value(m.g.DW), 0, first)
			r.dw = l.acc.dw
		}
		if m.g.DB != nil {
			addInto(l.acc.db, value(m.g.DB), 0, first)
			r.db = l.acc.db
		}
		if m.g.DX != nil {
			addInto(l.acc.dx, value(m.g.DX), r0*l.cfg.N, true)
			r.dx = rowsOf(l.acc.dx, 0, rows)
		}
		if l.cfg.Loss.Reduction == graph.None {
			addInto(l.acc.losses, value(m.g.Xent), r0, true)
			r.losses = rowsOf(l.acc.losses, 0, rows)
		}
	}
	return r, nil
}

// runMachine runs the compiled graph for a batch of rows, with the whole
// batch's Mean denominators (cross-entropy, z-loss) when denom is not nil.
func (l *layer) runMachine(rows int, x, targets *tensor.Dense, denom *[2]float64) (*machine, error) {
	m, err := l.compile(rows, false)
	if err != nil {
		return nil, err
	}
	if err := G.Let(m.g.X, x); err != nil {
		return nil, err
	}
	if err := G.Let(m.g.Targets, targets); err != nil {
		return nil, err
	}
	if op, ok := graph.AsXent(m.g.Xent); ok && denom != nil {
		defer op.UseBatchDenominators(denom[0], denom[1])()
	}
	defer m.rewind()
	if err := m.vm.RunAll(); err != nil {
		return nil, vmCause(err)
	}
	return m, nil
}

// vmCause is the error an op returned, out of the VM's wrapping ("PC 8.
// Failed to execute instruction XentOp{…} … Failed to carry op.Do():
// targets: row 2: …"), which names instructions the user never wrote. The
// VM's contextual error has no Unwrap (only Err), so errors.Is and
// errors.As could not see through it; the cause is returned as the op made
// it, with whatever it wraps.
func vmCause(err error) error {
	for {
		var inner error
		switch e := err.(type) {
		case interface{ Err() error }: // gorgonia's vmContextualError
			inner = e.Err()
		case interface{ Cause() error }: // github.com/pkg/errors wrappers
			inner = e.Cause()
		}
		if inner == nil || inner == err {
			return err
		}
		err = inner
	}
}

// wholeBatch checks a batch's targets and returns its Mean denominators:
// the cross-entropy's and the z-loss's.
func wholeBatch(targets *tensor.Dense, rows, T int, lo *graph.LossOptions) (float64, float64, error) {
	o := (*rowmath.Options)(lo)
	switch d := targets.Data().(type) {
	case []float32:
		if err := rowmath.CheckTargets(d, rows, T, o); err != nil {
			return 0, 0, err
		}
		return rowmath.Denominator(d, rows, o), rowmath.KeptRows(d, rows, o), nil
	case []float64:
		if err := rowmath.CheckTargets(d, rows, T, o); err != nil {
			return 0, 0, err
		}
		return rowmath.Denominator(d, rows, o), rowmath.KeptRows(d, rows, o), nil
	}
	return 0, 0, fmt.Errorf("batch: targets are %v", targets.Dtype())
}

// accum holds the sums and gathers of a chunked batch.
type accum struct{ dw, db, dx, losses *tensor.Dense }

func newAccum(cfg backend.Config) *accum {
	a := &accum{}
	if cfg.Want.DW {
		a.dw = tensor.New(tensor.WithShape(cfg.N, cfg.T), tensor.Of(cfg.DType))
	}
	if cfg.Want.DB {
		a.db = tensor.New(tensor.WithShape(cfg.T), tensor.Of(cfg.DType))
	}
	if cfg.Want.DX {
		a.dx = tensor.New(tensor.WithShape(cfg.B, cfg.N), tensor.Of(cfg.DType))
	}
	if cfg.Loss.Reduction == graph.None {
		a.losses = tensor.New(tensor.WithShape(cfg.B), tensor.Of(cfg.DType))
	}
	return a
}

// value is a node's value as a tensor, nil for a nil node.
func value(n *G.Node) tensor.Tensor {
	if n == nil {
		return nil
	}
	t, _ := n.Value().(tensor.Tensor)
	return t
}

// rowsOf is rows [r0, r1) of a row-major matrix or vector, sharing memory.
func rowsOf(t tensor.Tensor, r0, r1 int) *tensor.Dense {
	s := t.Shape()
	cols := 1
	if s.Dims() == 2 {
		cols = s[1]
	}
	shape := []int{r1 - r0}
	if s.Dims() == 2 {
		shape = append(shape, cols)
	}
	switch d := t.Data().(type) {
	case []float32:
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(d[r0*cols:r1*cols]))
	case []float64:
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(d[r0*cols:r1*cols]))
	}
	return nil
}

// addInto adds src into dst starting at element off, or copies it there when
// overwrite is set.
func addInto(dst *tensor.Dense, src tensor.Tensor, off int, overwrite bool) {
	switch d := dst.Data().(type) {
	case []float32:
		addSlice(d[off:], src.Data().([]float32), overwrite)
	case []float64:
		addSlice(d[off:], src.Data().([]float64), overwrite)
	}
}

func addSlice[F dense.Float](dst, src []F, overwrite bool) {
	if overwrite {
		copy(dst, src)
		return
	}
	for i, v := range src {
		dst[i] += v
	}
}

func scalar(v G.Value) float64 {
	switch s := v.(type) {
	case *G.F64:
		return float64(*s)
	case *G.F32:
		return float64(*s)
	}
	if t, ok := v.(tensor.Tensor); ok {
		switch d := t.Data().(type) {
		case float64:
			return d
		case float32:
			return float64(d)
		case []float64:
			return d[0]
		case []float32:
			return float64(d[0])
		}
	}
	return 0
}

func (l *layer) Compute(x, targets *tensor.Dense) (*backend.Result, error) {
	r, err := l.gradients(x, targets)
	if err != nil {
		return nil, err
	}
	return &backend.Result{Loss: r.loss, Losses: cloneT(r.losses), DW: cloneT(r.dw), DB: cloneT(r.db), DX: cloneT(r.dx)}, nil
}

func cloneT(t tensor.Tensor) *tensor.Dense {
	if t == nil {
		return nil
	}
	return t.Clone().(*tensor.Dense)
}

func (l *layer) Step(x, targets *tensor.Dense) (float64, error) {
	if err := kit.CheckStep("cpu", l.cfg); err != nil {
		return 0, err
	}
	r, err := l.gradients(x, targets) // local gradients → reduce
	if err != nil {
		return 0, err
	}
	l.opt.step(l.w, r.dw, l.b, r.db) // → update
	return r.loss, nil
}

func (l *layer) Logits(x *tensor.Dense) (*tensor.Dense, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	rows, err := kit.CheckBatch(l.cfg, x, nil)
	if err != nil {
		return nil, err
	}
	x = kit.Contiguous(x) // a view read as the values it shows
	m, err := l.compile(rows, true)
	if err != nil {
		return nil, err
	}
	if err := G.Let(m.g.X, x); err != nil {
		return nil, err
	}
	defer m.rewind()
	if err := m.vm.RunAll(); err != nil {
		return nil, vmCause(err)
	}
	return cloneT(value(m.g.Logits)), nil
}

func (l *layer) Close() error {
	for _, c := range []map[int]*machine{l.train, l.fwd} {
		for k, m := range c {
			m.vm.Close()
			delete(c, k)
		}
	}
	l.shut = true
	return nil
}
