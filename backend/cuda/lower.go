//go:build gpu

package cuda

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"dsx/backend"
	"dsx/graph"

	"gorgonia.org/cu"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Kernel flags; they match the XENT_* macros of cudakernels/xent.cu.
const (
	flagSoft   = 1
	flagIgnore = 2
	flagGrad   = 4
	flagMean   = 8
	flagCache  = 16
	// cacheBytes is the longest row xent caches in shared memory (with its
	// ~1 KiB of static shared memory it stays under the 48 KiB default).
	cacheBytes = 40 << 10
)

// dim is one axis of a lowered value: batch axes have the batch's row count
// at run time (n is then the layer's B).
type dim struct {
	n     int
	batch bool
}

type kind int

const (
	kBuf     kind = iota // a device buffer of the layer's dtype, row-major
	kConst               // a constant (scalar, or repeated to a vector)
	kSize                // SizeOf a batch axis: the batch's row count
	kBcast               // a 1×T buffer repeated along the batch axis
	kLoss                // the scalar loss, one double on the device
	kRowLoss             // per-row losses: buf (dtype) and rowloss (double)
)

type val struct {
	kind    kind
	buf     *dbuf
	rowloss *dbuf
	dims    []dim
	c       float64
}

// stepFn runs one lowered node for a batch of rows; binders make them once
// the device buffers exist.
type stepFn func(rows int) error

type plan struct {
	binders []func() stepFn
	steps   []stepFn
	// outputs
	loss, losses, dw, db, dx, logits *dbuf
}

func (p *plan) bind() {
	for _, b := range p.binders {
		p.steps = append(p.steps, b())
	}
}

func (p *plan) run(rows int) error {
	for _, s := range p.steps {
		if err := s(rows); err != nil {
			return err
		}
	}
	return nil
}

// lowerer turns the nodes of one graph.Layer into plans. Buffers are shared
// between the plans of a layer (node → buffer), so the forward plan reuses
// the training plan's logits buffer.
type lowerer struct {
	cfg   backend.Config
	g     *graph.Layer
	mem   *memory
	esize int64
	f32   bool
	bufs  map[*G.Node]*dbuf
	named map[string]*dbuf
	fused map[*G.Node]bool // logits whose gradient the fused kernel writes
	// per plan
	sub  *G.ExprGraph
	vals map[*G.Node]val
	p    *plan
}

func (lw *lowerer) buffer(n *G.Node, what string, elems int) *dbuf {
	if b, ok := lw.bufs[n]; ok {
		return b
	}
	b := lw.mem.request(what, int64(elems)*lw.esize)
	lw.bufs[n] = b
	return b
}

func (lw *lowerer) namedBuf(name string, bytes int64) *dbuf {
	if b, ok := lw.named[name]; ok {
		return b
	}
	b := lw.mem.request(name, bytes)
	lw.named[name] = b
	return b
}

func children(g *G.ExprGraph, n *G.Node) G.Nodes {
	it := g.From(n.ID())
	var out G.Nodes
	for it.Next() {
		out = append(out, it.Node().(*G.Node))
	}
	return out
}

func consumers(g *G.ExprGraph, n *G.Node) G.Nodes {
	it := g.To(n.ID())
	var out G.Nodes
	for it.Next() {
		out = append(out, it.Node().(*G.Node))
	}
	return out
}

func elems(ds []dim) int {
	e := 1
	for _, d := range ds {
		e *= d.n
	}
	return e
}

func hasBatch(ds []dim) bool {
	for _, d := range ds {
		if d.batch {
			return true
		}
	}
	return false
}

func at(d dim, rows int) int {
	if d.batch {
		return rows
	}
	return d.n
}

// lower walks sub's nodes in dependency order and lowers each.
func (lw *lowerer) lower(sub *G.ExprGraph) (*plan, error) {
	lw.sub, lw.vals, lw.p = sub, map[*G.Node]val{}, &plan{}
	sorted, err := G.Sort(sub)
	if err != nil {
		return nil, fmt.Errorf("cuda: sorting the graph: %w", err)
	}
	for i := len(sorted) - 1; i >= 0; i-- { // G.Sort puts roots first
		if err := lw.node(sorted[i]); err != nil {
			return nil, err
		}
	}
	return lw.p, nil
}

func (lw *lowerer) node(n *G.Node) error {
	op := n.Op()
	kids := children(lw.sub, n)
	notImpl := func(format string, a ...any) error {
		return fmt.Errorf("cuda: node %v (%T): %s: %w", n, op, fmt.Sprintf(format, a...), backend.ErrNotImplemented)
	}
	in := make([]val, len(kids))
	for i, k := range kids {
		v, ok := lw.vals[k]
		if !ok {
			return notImpl("input %v was not lowered", k)
		}
		in[i] = v
	}
	g, s := lw.g, lw.cfg.Spec
	if op == nil {
		switch n {
		case g.X:
			lw.vals[n] = val{kind: kBuf, buf: lw.buffer(n, "x", s.B*s.N), dims: []dim{{s.B, true}, {s.N, false}}}
		case g.W:
			lw.vals[n] = val{kind: kBuf, buf: lw.buffer(n, "W", s.N*s.T), dims: []dim{{s.N, false}, {s.T, false}}}
		case g.Bias:
			lw.vals[n] = val{kind: kBuf, buf: lw.buffer(n, "b", s.T), dims: []dim{{s.T, false}}}
		case g.Targets:
			if s.Loss.SoftTargets {
				lw.vals[n] = val{kind: kBuf, buf: lw.buffer(n, "targets", s.B*s.T), dims: []dim{{s.B, true}, {s.T, false}}}
			} else {
				lw.vals[n] = val{kind: kBuf, buf: lw.buffer(n, "targets", s.B), dims: []dim{{s.B, true}}}
			}
		default:
			return notImpl("an input that is not x, W, b or the targets")
		}
		return nil
	}
	switch o := op.(type) {
	case *graph.XentOp:
		return lw.xent(n, o, in, notImpl)
	case *graph.XentGradOp:
		v, ok := lw.vals[kids[0]]
		if !ok || !lw.fused[kids[0]] {
			return notImpl("gradient without its fused forward node")
		}
		lw.vals[n] = v // the fused kernel wrote the gradient over the logits
		return nil
	}
	switch t := fmt.Sprintf("%T", op); t {
	case "gorgonia.constantScalar":
		c, ok := scalar(n.Value())
		if !ok {
			return notImpl("constant of type %T", n.Value())
		}
		lw.vals[n] = val{kind: kConst, c: c}
	case "gorgonia.reshapeOp":
		v := in[0]
		switch v.kind {
		case kConst:
		case kBuf:
			to := n.Shape()
			if hasBatch(v.dims) {
				if !to.Eq(shapeOf(v.dims)) {
					return notImpl("reshaping a value with a batch axis")
				}
			} else {
				if to.TotalSize() != elems(v.dims) {
					return notImpl("reshape changes the size")
				}
				v.dims = nil
				for _, d := range to {
					v.dims = append(v.dims, dim{d, false})
				}
			}
		default:
			return notImpl("reshape of a %v value", v.kind)
		}
		lw.vals[n] = v
	case "gorgonia.sizeOp":
		sz, err := strconv.Atoi(strings.TrimPrefix(op.String(), "SizeOf="))
		v := in[0]
		if err != nil || (v.kind != kBuf && v.kind != kRowLoss) || len(v.dims) == 0 || !v.dims[0].batch || v.dims[0].n != sz {
			return notImpl("size of something other than a batch axis")
		}
		lw.vals[n] = val{kind: kSize}
	case "*gorgonia.repeatOp":
		if op.String() != "Repeat0" || len(in) != 2 || in[1].kind != kSize {
			return notImpl("repeat other than along the batch axis")
		}
		switch v := in[0]; {
		case v.kind == kConst:
			lw.vals[n] = v
		case v.kind == kBuf && len(v.dims) == 2 && v.dims[0] == dim{1, false}:
			lw.vals[n] = val{kind: kBcast, buf: v.buf, dims: []dim{{s.B, true}, v.dims[1]}}
		default:
			return notImpl("repeat of a %v value", v.kind)
		}
	case "gorgonia.linAlgBinOp":
		return lw.matmul(n, op.String(), in, notImpl)
	case "gorgonia.elemBinOp":
		if !strings.HasPrefix(op.String(), "+ ") || len(in) != 2 {
			return notImpl("elementwise op other than the bias add")
		}
		m, b := in[0], in[1]
		if m.kind == kBcast {
			m, b = b, m
		}
		if m.kind != kBuf || b.kind != kBcast || len(m.dims) != 2 || !m.dims[0].batch || m.dims[1] != b.dims[1] {
			return notImpl("add other than x·W + broadcast bias")
		}
		src := kids[0]
		if in[0].kind == kBcast {
			src = kids[1]
		}
		for _, c := range consumers(lw.sub, src) {
			if c != n && fmt.Sprintf("%T", c.Op()) != "gorgonia.sizeOp" {
				return notImpl("the bias is added in place, but %v also reads its input", c)
			}
		}
		T := m.dims[1].n
		zb, bb := m.buf, b.buf
		lw.p.binders = append(lw.p.binders, func() stepFn {
			k := newLauncher(lw.kname("bias_add"), ptrArg(zb.ptr), intArg(int64(T)), ptrArg(bb.ptr), 0, intArg(int64(T)))
			return func(rows int) error {
				k.args[3] = intArg(int64(rows))
				return k.launch(ceilDiv(T, 256), min(rows, 65535), 256, 0)
			}
		})
		lw.vals[n] = m
	case "gorgonia.sumOp":
		if op.String() != "Σ[0]" || len(in) != 1 {
			return notImpl("sum other than along axis 0")
		}
		switch v := in[0]; {
		case v.kind == kRowLoss:
			lw.vals[n] = lw.reduce(v)
		case v.kind == kBuf && len(v.dims) == 2 && v.dims[0].batch && !v.dims[1].batch:
			T := v.dims[1].n
			out := lw.buffer(n, "Σ rows", T)
			gb := v.buf
			lw.p.binders = append(lw.p.binders, func() stepFn {
				k := newLauncher(lw.kname("colsum"), ptrArg(gb.ptr), intArg(int64(T)), ptrArg(out.ptr), 0, intArg(int64(T)))
				return func(rows int) error {
					k.args[3] = intArg(int64(rows))
					return k.launch(ceilDiv(T, 256), 1, 256, 0)
				}
			})
			lw.vals[n] = val{kind: kBuf, buf: out, dims: []dim{v.dims[1]}}
		default:
			return notImpl("sum of a %v value", v.kind)
		}
	default:
		return notImpl("no lowering for %s", t)
	}
	return nil
}

func (k kind) String() string {
	return [...]string{"buffer", "constant", "size", "broadcast", "loss", "per-row loss"}[k]
}

func shapeOf(ds []dim) tensor.Shape {
	s := make(tensor.Shape, len(ds))
	for i, d := range ds {
		s[i] = d.n
	}
	return s
}

func (lw *lowerer) kname(base string) string {
	if lw.f32 {
		return base + "_f32"
	}
	return base + "_f64"
}

func scalar(v G.Value) (float64, bool) {
	switch s := v.(type) {
	case *G.F64:
		return float64(*s), true
	case *G.F32:
		return float64(*s), true
	}
	return 0, false
}

// constOf evaluates a node built from constants only (the seed of the
// gradient: 1, or 1 reshaped and repeated to one per row).
func (lw *lowerer) constOf(n *G.Node) (float64, bool) {
	switch t := fmt.Sprintf("%T", n.Op()); t {
	case "gorgonia.constantScalar":
		return scalar(n.Value())
	case "gorgonia.reshapeOp", "*gorgonia.repeatOp":
		if k := children(lw.sub, n); len(k) > 0 {
			return lw.constOf(k[0])
		}
	}
	return 0, false
}

func (lw *lowerer) matmul(n *G.Node, name string, in []val, notImpl func(string, ...any) error) error {
	var tA, tB bool
	switch name {
	case "A × B":
	case "Aᵀ × B":
		tA = true
	case "A × Bᵀ":
		tB = true
	case "Aᵀ × Bᵀ":
		tA, tB = true, true
	default:
		return notImpl("only matrix × matrix products are lowered")
	}
	a, b := in[0], in[1]
	if a.kind != kBuf || b.kind != kBuf || len(a.dims) != 2 || len(b.dims) != 2 {
		return notImpl("operands must be matrices in device buffers")
	}
	if a.dims[1].batch || b.dims[1].batch {
		return notImpl("a batch axis as a row stride")
	}
	opA := [2]dim{a.dims[0], a.dims[1]}
	if tA {
		opA = [2]dim{a.dims[1], a.dims[0]}
	}
	opB := [2]dim{b.dims[0], b.dims[1]}
	if tB {
		opB = [2]dim{b.dims[1], b.dims[0]}
	}
	if opA[1] != opB[0] {
		return notImpl("inner dimensions %v and %v differ", opA[1], opB[0])
	}
	out := []dim{opA[0], opB[1]}
	if out[1].batch {
		return notImpl("a batch axis as the product's columns")
	}
	what := map[*G.Node]string{lw.g.XW: "x·W", lw.g.DW: "dW", lw.g.DX: "dx"}[n]
	if what == "" {
		what = name
	}
	c := lw.buffer(n, what, elems(out))
	ab, bb, f32 := a.buf, b.buf, lw.f32
	lda, ldb := a.dims[1].n, b.dims[1].n
	m, k, nn := opA[0], opA[1], opB[1]
	lw.p.binders = append(lw.p.binders, func() stepFn {
		return func(rows int) error {
			return gemm(f32, tA, tB, at(m, rows), at(nn, rows), at(k, rows), ab.ptr, lda, bb.ptr, ldb, c.ptr)
		}
	})
	lw.vals[n] = val{kind: kBuf, buf: c, dims: out}
	return nil
}

// xent lowers the SoftmaxXent node and, when the graph has it, its gradient
// node into the fused kernel: the gradient overwrites the logits.
func (lw *lowerer) xent(n *G.Node, o *graph.XentOp, in []val, notImpl func(string, ...any) error) error {
	s := lw.cfg.Spec
	if len(in) != 2 || in[0].kind != kBuf || in[1].kind != kBuf || len(in[0].dims) != 2 || !in[0].dims[0].batch || in[0].dims[1].n != o.T {
		return notImpl("logits must be a rows×%d device buffer", o.T)
	}
	opts := o.Opts
	T := o.T
	logits := children(lw.sub, n)[0]
	gscale, grad := 1.0, false
	for _, c := range consumers(lw.sub, logits) {
		switch co := c.Op().(type) {
		case *graph.XentOp:
			if c != n {
				return notImpl("logits read by a second loss node %v", c)
			}
		case *graph.XentGradOp:
			if co.Fwd != o {
				return notImpl("logits read by the gradient of another loss")
			}
			k := children(lw.sub, c)
			v, ok := lw.constOf(k[2])
			if !ok {
				return notImpl("upstream gradient %v is not a constant", k[2])
			}
			gscale, grad = v, true
		default:
			return notImpl("logits are overwritten by their gradient, but %v also reads them", c)
		}
	}
	flags := int64(0)
	if opts.SoftTargets {
		flags |= flagSoft
	}
	if opts.UseIgnoreIndex {
		flags |= flagIgnore
	}
	if grad {
		flags |= flagGrad
		lw.fused[logits] = true
	}
	if opts.Reduction == graph.Mean {
		flags |= flagMean
	}
	shmem := 0
	if int64(T)*lw.esize <= cacheBytes {
		flags |= flagCache
		shmem = T * int(lw.esize)
	}
	wsum := float64(T)
	var weights *dbuf
	if opts.ClassWeights != nil {
		weights = lw.namedBuf("class weights", int64(T)*8)
		wsum = 0
		for _, w := range opts.ClassWeights {
			wsum += w
		}
	}
	rowloss := lw.namedBuf("per-row losses (float64)", int64(s.B)*8)
	scale := lw.namedBuf("reduction scale", 8)
	var losses *dbuf
	if opts.Reduction == graph.None {
		losses = lw.buffer(n, "per-row losses", s.B)
	}
	z, tg := in[0].buf, in[1].buf
	threads := min(512, max(32, ceilDiv(T, 32)*32))
	lw.p.binders = append(lw.p.binders, func() stepFn {
		wp := cu.DevicePtr(0)
		if weights != nil {
			wp = weights.ptr
		}
		lp := cu.DevicePtr(0)
		if losses != nil {
			lp = losses.ptr
		}
		ks := newLauncher(lw.kname("xent_scale"), ptrArg(tg.ptr), ptrArg(wp), ptrArg(scale.ptr), 0, intArg(int64(T)), intArg(flags), intArg(int64(opts.IgnoreIndex)))
		kx := newLauncher(lw.kname("xent"), ptrArg(z.ptr), intArg(int64(T)), ptrArg(tg.ptr), intArg(int64(T)), ptrArg(wp),
			ptrArg(rowloss.ptr), ptrArg(lp), ptrArg(scale.ptr), 0, intArg(int64(T)), intArg(flags),
			intArg(int64(opts.IgnoreIndex)), fltArg(opts.LabelSmoothing), fltArg(wsum), fltArg(gscale))
		return func(rows int) error {
			ks.args[3] = intArg(int64(rows))
			if err := ks.launch(1, 1, 256, 0); err != nil {
				return err
			}
			kx.args[8] = intArg(int64(rows))
			return kx.launch(rows, 1, threads, shmem)
		}
	})
	rl := val{kind: kRowLoss, buf: losses, rowloss: rowloss, dims: []dim{{s.B, true}}}
	if opts.Reduction == graph.None {
		lw.vals[n] = rl
	} else {
		lw.vals[n] = lw.reduce(rl)
	}
	return nil
}

// reduce sums per-row losses times the reduction scale into the scalar loss.
func (lw *lowerer) reduce(v val) val {
	loss := lw.namedBuf("loss", 8)
	scale := lw.namedBuf("reduction scale", 8)
	rl := v.rowloss
	lw.p.binders = append(lw.p.binders, func() stepFn {
		k := newLauncher("xent_reduce", ptrArg(rl.ptr), ptrArg(scale.ptr), ptrArg(loss.ptr), 0)
		return func(rows int) error {
			k.args[3] = intArg(int64(rows))
			return k.launch(1, 1, 256, 0)
		}
	})
	return val{kind: kLoss, buf: loss}
}

// outputs finds the plan's output buffers.
func (lw *lowerer) outputs(forward bool) error {
	g, p := lw.g, lw.p
	get := func(n *G.Node, k kind, what string) (*dbuf, error) {
		if n == nil {
			return nil, nil
		}
		v, ok := lw.vals[n]
		if !ok || v.kind != k {
			return nil, fmt.Errorf("cuda: %s (node %v) was not lowered to a %v: %w", what, n, k, backend.ErrNotImplemented)
		}
		return v.buf, nil
	}
	var err error
	if forward {
		p.logits, err = get(g.Logits, kBuf, "logits")
		return err
	}
	if p.loss, err = get(g.Loss, kLoss, "loss"); err != nil {
		return err
	}
	if g.Xent != g.Loss {
		if p.losses, err = get(g.Xent, kRowLoss, "per-row losses"); err != nil {
			return err
		}
	}
	if p.dw, err = get(g.DW, kBuf, "dW"); err != nil {
		return err
	}
	if p.db, err = get(g.DB, kBuf, "db"); err != nil {
		return err
	}
	p.dx, err = get(g.DX, kBuf, "dx")
	return err
}

// Open builds the layer graph, lowers it and allocates every buffer.
func (Backend) Open(cfg backend.Config) (backend.Layer, error) {
	if err := cfg.Spec.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Optimizer.Validate(); err != nil {
		return nil, err
	}
	cfg.Optimizer = cfg.Optimizer.WithDefaults()
	if err := setup(); err != nil {
		return nil, err
	}
	g, err := graph.Build(cfg.Spec)
	if err != nil {
		return nil, err
	}
	l := &layer{cfg: cfg, f32: cfg.DType == tensor.Float32, esize: 8, lossHost: make([]float64, 1)}
	if l.f32 {
		l.esize = 4
	}
	lw := &lowerer{cfg: cfg, g: g, mem: &l.mem, esize: l.esize, f32: l.f32, bufs: map[*G.Node]*dbuf{}, named: map[string]*dbuf{}, fused: map[*G.Node]bool{}}
	if l.train, err = lw.lower(g.TrainGraph()); err != nil {
		return nil, err
	}
	if err := lw.outputs(false); err != nil {
		return nil, err
	}
	if l.fwd, err = lw.lower(g.ForwardGraph()); err != nil {
		return nil, err
	}
	if err := lw.outputs(true); err != nil {
		return nil, err
	}
	l.x, l.w, l.b, l.tg = lw.bufs[g.X], lw.bufs[g.W], lw.bufs[g.Bias], lw.bufs[g.Targets]
	l.weights = lw.named["class weights"]
	if l.x == nil || l.w == nil || l.b == nil || l.tg == nil {
		return nil, fmt.Errorf("cuda: the lowered graph lacks x, W, b or the targets: %w", backend.ErrNotImplemented)
	}
	nw, nb := int64(cfg.N*cfg.T), int64(cfg.T)
	switch o := cfg.Optimizer; {
	case o.Kind == "sgd" && o.Momentum != 0:
		l.m = [2]*dbuf{l.mem.request("SGD velocity of W", nw*l.esize), l.mem.request("SGD velocity of b", nb*l.esize)}
	case o.Kind == "adam":
		l.m = [2]*dbuf{l.mem.request("Adam m of W", nw*l.esize), l.mem.request("Adam m of b", nb*l.esize)}
		l.v = [2]*dbuf{l.mem.request("Adam v of W", nw*l.esize), l.mem.request("Adam v of b", nb*l.esize)}
	}
	what := fmt.Sprintf("layer B×N×T = %d×%d×%d %v", cfg.B, cfg.N, cfg.T, cfg.DType)
	err = onDevice(func() error {
		if err := l.mem.alloc(what); err != nil {
			return err
		}
		l.train.bind()
		l.fwd.bind()
		for _, b := range []*dbuf{l.w, l.b} {
			if err := cu.MemsetD8(b.ptr, 0, b.bytes); err != nil {
				return fmt.Errorf("cuda: zeroing %s: %w", b.what, err)
			}
		}
		if l.weights != nil {
			w := append([]float64(nil), cfg.Loss.ClassWeights...)
			if err := cu.MemcpyHtoD(l.weights.ptr, hostPtr(w), l.weights.bytes); err != nil {
				return fmt.Errorf("cuda: copying class weights: %w", err)
			}
		}
		return l.resetOptim()
	})
	if err != nil {
		l.mem.free()
		return nil, err
	}
	return l, nil
}

type layer struct {
	cfg         backend.Config
	f32         bool
	esize       int64
	mem         memory
	train, fwd  *plan
	x, w, b, tg *dbuf
	weights     *dbuf
	m, v        [2]*dbuf // optimizer state for W and b
	t           int      // Adam steps taken
	optW, optB  *launcher
	closed      bool
	lossHost    []float64 // one value; its own allocation, which cgo may be passed
}

func (l *layer) Config() backend.Config { return l.cfg }

func (l *layer) check() error {
	if l.closed {
		return errors.New("cuda: layer used after Close")
	}
	return nil
}

// resetOptim zeroes the optimizer state (on the device thread).
func (l *layer) resetOptim() error {
	l.t = 0
	for _, b := range append(l.m[:], l.v[:]...) {
		if b != nil {
			if err := cu.MemsetD8(b.ptr, 0, b.bytes); err != nil {
				return fmt.Errorf("cuda: zeroing %s: %w", b.what, err)
			}
		}
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
	W, b = contiguous(W), contiguous(b)
	return onDevice(func() error {
		if err := l.toDevice(l.w, W, l.w.bytes); err != nil {
			return err
		}
		if err := l.toDevice(l.b, b, l.b.bytes); err != nil {
			return err
		}
		return l.resetOptim()
	})
}

func contiguous(t *tensor.Dense) *tensor.Dense {
	if t.RequiresIterator() {
		return t.Materialize().(*tensor.Dense)
	}
	return t
}

func (l *layer) toDevice(dst *dbuf, t *tensor.Dense, bytes int64) error {
	var err error
	switch d := t.Data().(type) {
	case []float32:
		err = cu.MemcpyHtoD(dst.ptr, hostPtr(d), bytes)
	case []float64:
		err = cu.MemcpyHtoD(dst.ptr, hostPtr(d), bytes)
	default:
		return fmt.Errorf("cuda: %s: unsupported data %T", dst.what, d)
	}
	if err != nil {
		return fmt.Errorf("cuda: copying %s to the device: %w", dst.what, err)
	}
	return nil
}

// toHost copies elems values of src into a new tensor of shape.
func (l *layer) toHost(src *dbuf, shape ...int) (*tensor.Dense, error) {
	t := tensor.New(tensor.WithShape(shape...), tensor.Of(l.cfg.DType))
	bytes := int64(t.Size()) * l.esize
	var err error
	switch d := t.Data().(type) {
	case []float32:
		err = cu.MemcpyDtoH(hostPtr(d), src.ptr, bytes)
	case []float64:
		err = cu.MemcpyDtoH(hostPtr(d), src.ptr, bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("cuda: copying %s to the host: %w", src.what, err)
	}
	return t, nil
}

func (l *layer) Params() (*tensor.Dense, *tensor.Dense, error) {
	if err := l.check(); err != nil {
		return nil, nil, err
	}
	var W, b *tensor.Dense
	err := onDevice(func() error {
		var err error
		if W, err = l.toHost(l.w, l.cfg.N, l.cfg.T); err != nil {
			return err
		}
		b, err = l.toHost(l.b, l.cfg.T)
		return err
	})
	return W, b, err
}

// load validates a batch on the host (the checks every backend makes) and
// copies it to the device.
func (l *layer) load(x, targets *tensor.Dense) (int, error) {
	if err := l.check(); err != nil {
		return 0, err
	}
	if targets == nil {
		return 0, errors.New("batch: targets are nil")
	}
	rows, err := backend.CheckBatch(l.cfg, x, targets)
	if err != nil {
		return 0, err
	}
	x, targets = contiguous(x), contiguous(targets)
	o := &l.cfg.Loss
	switch d := targets.Data().(type) {
	case []float32:
		err = graph.CheckTargets(d, rows, l.cfg.T, o)
	case []float64:
		err = graph.CheckTargets(d, rows, l.cfg.T, o)
	}
	if err != nil {
		return 0, fmt.Errorf("cuda: %w", err)
	}
	if err := l.toDevice(l.x, x, int64(rows*l.cfg.N)*l.esize); err != nil {
		return 0, err
	}
	tn := int64(rows)
	if o.SoftTargets {
		tn *= int64(l.cfg.T)
	}
	return rows, l.toDevice(l.tg, targets, tn*l.esize)
}

func (l *layer) loss() (float64, error) {
	if err := cu.MemcpyDtoH(hostPtr(l.lossHost), l.train.loss.ptr, 8); err != nil {
		return 0, fmt.Errorf("cuda: reading the loss: %w", err)
	}
	return l.lossHost[0], nil
}

func (l *layer) Compute(x, targets *tensor.Dense) (*backend.Result, error) {
	var r *backend.Result
	err := onDevice(func() error {
		rows, err := l.load(x, targets)
		if err != nil {
			return err
		}
		if err := l.train.run(rows); err != nil {
			return err
		}
		r = &backend.Result{}
		if r.Loss, err = l.loss(); err != nil {
			return err
		}
		p, c := l.train, l.cfg
		if p.losses != nil {
			if r.Losses, err = l.toHost(p.losses, rows); err != nil {
				return err
			}
		}
		if p.dw != nil {
			if r.DW, err = l.toHost(p.dw, c.N, c.T); err != nil {
				return err
			}
		}
		if p.db != nil {
			if r.DB, err = l.toHost(p.db, c.T); err != nil {
				return err
			}
		}
		if p.dx != nil {
			if r.DX, err = l.toHost(p.dx, rows, c.N); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (l *layer) Step(x, targets *tensor.Dense) (float64, error) {
	if l.cfg.Optimizer.Kind == "" {
		return 0, errors.New("cuda: Step needs an optimizer in the layer's Config")
	}
	if m0 := l.cfg.Want; !m0.W || !m0.B {
		return 0, fmt.Errorf("cuda: Step needs the gradients of W and b (layer computes %v)", m0)
	}
	var loss float64
	err := onDevice(func() error {
		rows, err := l.load(x, targets)
		if err != nil {
			return err
		}
		if err := l.train.run(rows); err != nil {
			return err
		}
		if err := l.optimize(); err != nil {
			return err
		}
		loss, err = l.loss()
		return err
	})
	return loss, err
}

// optimize launches the optimizer kernels on W and b.
func (l *layer) optimize() error {
	o := l.cfg.Optimizer
	l.t++
	if l.optW == nil {
		nw, nb := int64(l.cfg.N*l.cfg.T), int64(l.cfg.T)
		mk := func(w, g, m, v *dbuf, n int64) *launcher {
			mp, vp := cu.DevicePtr(0), cu.DevicePtr(0)
			if m != nil {
				mp = m.ptr
			}
			if v != nil {
				vp = v.ptr
			}
			if o.Kind == "sgd" {
				return newLauncher(l.kname("sgd"), ptrArg(w.ptr), ptrArg(g.ptr), ptrArg(mp), intArg(n), fltArg(o.LR), fltArg(o.Momentum), fltArg(o.WeightDecay))
			}
			dec := int64(0)
			if o.Decoupled {
				dec = 1
			}
			return newLauncher(l.kname("adam"), ptrArg(w.ptr), ptrArg(g.ptr), ptrArg(mp), ptrArg(vp), intArg(n), fltArg(o.LR),
				fltArg(o.Beta1), fltArg(o.Beta2), fltArg(o.Eps), fltArg(o.WeightDecay), intArg(dec), 0, 0)
		}
		l.optW = mk(l.w, l.train.dw, l.m[0], l.v[0], nw)
		l.optB = mk(l.b, l.train.db, l.m[1], l.v[1], nb)
	}
	for i, k := range []*launcher{l.optW, l.optB} {
		n := l.cfg.N * l.cfg.T
		if i == 1 {
			n = l.cfg.T
		}
		if o.Kind == "adam" {
			k.args[11] = fltArg(1 - math.Pow(o.Beta1, float64(l.t)))
			k.args[12] = fltArg(1 - math.Pow(o.Beta2, float64(l.t)))
		}
		if err := k.launch(min(ceilDiv(n, 256), 4096), 1, 256, 0); err != nil {
			return err
		}
	}
	return nil
}

func (l *layer) kname(base string) string {
	if l.f32 {
		return base + "_f32"
	}
	return base + "_f64"
}

func (l *layer) Logits(x *tensor.Dense) (*tensor.Dense, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	rows, err := backend.CheckBatch(l.cfg, x, nil)
	if err != nil {
		return nil, err
	}
	x = contiguous(x)
	var z *tensor.Dense
	err = onDevice(func() error {
		if err := l.toDevice(l.x, x, int64(rows*l.cfg.N)*l.esize); err != nil {
			return err
		}
		if err := l.fwd.run(rows); err != nil {
			return err
		}
		z, err = l.toHost(l.fwd.logits, rows, l.cfg.T)
		return err
	})
	return z, err
}

// Close frees the layer's device memory; it is safe to call twice.
func (l *layer) Close() error {
	if l.closed {
		return nil
	}
	l.closed = true
	return onDevice(l.mem.free)
}
