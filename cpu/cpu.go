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
	return []backend.Device{{Name: fmt.Sprintf("CPU (%s/%s)", runtime.GOOS, runtime.GOARCH), Threads: runtime.GOMAXPROCS(0)}}, nil
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
	ch := chunkRows(cfg)
	if err := checkMemory(cfg, ch.Rows); err != nil {
		return nil, err
	}
	l := &layer{cfg: cfg, fwd: map[int]*machine{}, chunk: ch, ranks: kit.DataParallel(cfg)}
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
// available memory (kit.FootprintRows for its chunks: the state, the
// chunk loop's buffers and dx, less x and the targets, which the caller
// holds), so that an absurd shape is an error wrapping
// backend.ErrOutOfMemory rather than the runtime's fatal "out of memory".
func checkMemory(cfg backend.Config, rows int) error {
	fp, err := kit.FootprintRows(cfg, rows)
	what := fmt.Sprintf("cpu: layer B×N×T = %d×%d×%d %v", cfg.B, cfg.N, cfg.T, cfg.DType)
	if err != nil {
		return fmt.Errorf("cpu: %w", err)
	}
	var z kit.Sizer
	need := z.Add(fp.StateBytes, fp.ExtraBytes)
	if cfg.Want.DX {
		need = z.Add(need, z.Mul(int64(cfg.DType.Size()), int64(cfg.B), int64(cfg.N)))
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
	fwd   map[int]*machine
	opt   optimizer
	shut  bool
	chunk chunkChoice       // rows per chunk of a training batch, and why
	t32   *trainer[float32] // the chunk loop's buffers, made on first use
	t64   *trainer[float64]
	ranks *kit.Ranks // the data-parallel job's collectives (parallel.go); nil in one process
}

func (l *layer) Config() backend.Config { return l.cfg }

// compile builds and compiles the forward graph (the logits) for a batch of
// rows.
func (l *layer) compile(rows int) (*machine, error) {
	if m, ok := l.fwd[rows]; ok {
		return m, nil
	}
	spec := l.cfg.Spec
	spec.B = rows
	spec.Want = graph.Want{}
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
	m := newMachine(g, g.ForwardGraph())
	l.fwd[rows] = m
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

// run computes a batch's loss and the wanted gradients (step.go's chunk
// loop) in chunks of l.chunk rows: the batch is checked, its Mean
// denominators taken, then its loss and gradients computed with them.
// global, when not nil, is the Mean denominators to scale by instead of the
// batch's own: those of the global batch of which this is one rank's share
// (parallel.go).
func (l *layer) run(x, targets *tensor.Dense, global *[2]float64) (result, error) {
	x, targets, rows, den, err := l.denominators(x, targets)
	if err != nil {
		return result{}, err
	}
	// The denominators scale every chunk's loss and gradient: a rank's
	// share of a data-parallel batch is scaled by the global batch's.
	if global != nil {
		den = *global
	}
	return l.compute(x, targets, rows, den)
}

// denominators checks a batch and returns it with views read as the values
// they show (kit.Contiguous), its rows and its Mean denominators (the
// cross-entropy's and the z-loss's, wholeBatch). The targets of the whole
// batch are checked here, so that an error names the batch's row rather
// than a row of a chunk.
func (l *layer) denominators(x, targets *tensor.Dense) (*tensor.Dense, *tensor.Dense, int, [2]float64, error) {
	if err := l.check(); err != nil {
		return nil, nil, 0, [2]float64{}, err
	}
	if targets == nil {
		return nil, nil, 0, [2]float64{}, errors.New("batch: targets are nil")
	}
	rows, err := kit.CheckBatch(l.cfg, x, targets)
	if err != nil {
		return nil, nil, 0, [2]float64{}, err
	}
	x, targets = kit.Contiguous(x), kit.Contiguous(targets) // views read as the values they show
	denom, kept, err := wholeBatch(targets, rows, l.cfg.T, &l.cfg.Loss)
	return x, targets, rows, [2]float64{denom, kept}, err
}

// compute runs the chunk loop on a checked batch of rows with the Mean
// denominators den.
func (l *layer) compute(x, targets *tensor.Dense, rows int, den [2]float64) (result, error) {
	if err := l.trainer(); err != nil {
		return result{}, err
	}
	if l.t32 != nil {
		return l.t32.run(x, targets, l.w, l.b, rows, l.chunk.Rows, den)
	}
	return l.t64.run(x, targets, l.w, l.b, rows, l.chunk.Rows, den)
}

// trainer makes the chunk loop's buffers on first use.
func (l *layer) trainer() error {
	var err error
	switch {
	case l.t32 != nil || l.t64 != nil:
	case l.cfg.DType == tensor.Float32:
		l.t32, err = newTrainer[float32](l.cfg, l.chunk.Rows)
	default:
		l.t64, err = newTrainer[float64](l.cfg, l.chunk.Rows)
	}
	return err
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

// addSlice adds src into dst, or copies it there when overwrite is set.
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

// Step computes the batch's loss and gradients (gradients: the local ones,
// all-reduced over the ranks of a data-parallel job), then updates W and b
// in place with the optimizer, which reads only dW and db (r.dw, r.db: the
// chunk loop's own buffers).
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
	m, err := l.compile(rows)
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
	for k, m := range l.fwd {
		m.vm.Close()
		delete(l.fwd, k)
	}
	l.t32, l.t64 = nil, nil
	l.shut = true
	return nil
}
