package cpu

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"unsafe"

	"dsx/backend"
	"dsx/graph"

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

// Open compiles nothing yet: a graph is compiled the first time a batch size
// is seen.
func (Backend) Open(cfg backend.Config) (backend.Layer, error) {
	if err := cfg.Spec.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Optimizer.Validate(); err != nil {
		return nil, err
	}
	// float32 products only, the fused op only, no row chunks (yet).
	if err := backend.CheckOptions(cfg, "cpu", []string{"fp32"}, []string{"fused"}, false); err != nil {
		return nil, err
	}
	cfg.Optimizer = cfg.Optimizer.WithDefaults()
	l := &layer{cfg: cfg, train: map[int]*machine{}, fwd: map[int]*machine{}}
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

type machine struct {
	g  *graph.Layer
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
func newMachine(g *graph.Layer, sub *G.ExprGraph) *machine {
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
	if err := backend.CheckParams(l.cfg, W, b); err != nil {
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

// run binds a batch and runs the training graph; the caller reads the nodes'
// values before the next run.
func (l *layer) run(x, targets *tensor.Dense) (*machine, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if targets == nil {
		return nil, errors.New("batch: targets are nil")
	}
	rows, err := backend.CheckBatch(l.cfg, x, targets)
	if err != nil {
		return nil, err
	}
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
	defer m.rewind()
	if err := m.vm.RunAll(); err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	return m, nil
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

func clone(n *G.Node) *tensor.Dense {
	if n == nil {
		return nil
	}
	return n.Value().(tensor.Tensor).Clone().(*tensor.Dense)
}

func (l *layer) Compute(x, targets *tensor.Dense) (*backend.Result, error) {
	m, err := l.run(x, targets)
	if err != nil {
		return nil, err
	}
	r := &backend.Result{Loss: scalar(m.g.Loss.Value()), DW: clone(m.g.DW), DB: clone(m.g.DB), DX: clone(m.g.DX)}
	if l.cfg.Loss.Reduction == graph.None {
		r.Losses = clone(m.g.Xent)
	}
	return r, nil
}

func (l *layer) Step(x, targets *tensor.Dense) (float64, error) {
	if l.cfg.Optimizer.Kind == "" {
		return 0, errors.New("cpu: Step needs an optimizer in the layer's Config")
	}
	if m0 := l.cfg.Want; !m0.W || !m0.B {
		return 0, fmt.Errorf("cpu: Step needs the gradients of W and b (layer computes %v)", m0)
	}
	m, err := l.run(x, targets)
	if err != nil {
		return 0, err
	}
	loss := scalar(m.g.Loss.Value())
	dw, ok1 := m.g.DW.Value().(tensor.Tensor)
	db, ok2 := m.g.DB.Value().(tensor.Tensor)
	if !ok1 || !ok2 {
		return 0, fmt.Errorf("cpu: gradients are %T and %T, want tensors", m.g.DW.Value(), m.g.DB.Value())
	}
	l.opt.step(l.w, dw, l.b, db)
	return loss, nil
}

func (l *layer) Logits(x *tensor.Dense) (*tensor.Dense, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	rows, err := backend.CheckBatch(l.cfg, x, nil)
	if err != nil {
		return nil, err
	}
	m, err := l.compile(rows, true)
	if err != nil {
		return nil, err
	}
	if err := G.Let(m.g.X, x); err != nil {
		return nil, err
	}
	defer m.rewind()
	if err := m.vm.RunAll(); err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	return clone(m.g.Logits), nil
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
