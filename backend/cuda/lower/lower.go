package lower

import (
	"fmt"

	"dsx/backend"
	"dsx/graph"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Program is a layer graph lowered to device work: every buffer the layer
// needs, the training and forward plans over them, and the optimizer's
// steps. The runtime allocates Buffers once, binds their addresses and runs
// the plans; it decides nothing else.
type Program struct {
	Config  backend.Config
	F32     bool
	ESize   int64 // bytes per element of the layer's dtype
	Chunk   int   // rows per chunk (B: unchunked)
	Buffers []*Buffer

	Train, Forward *Plan
	// Optim updates W then b after Train (nil without an optimizer, or
	// without dW and db); OptimState is its state, zeroed on reset, under
	// the names and shapes of backend.OptimizerTensors.
	Optim      []*Step
	OptimState []StateBuffer

	X, W, Bias, Targets *Buffer
	ClassWeights        *Buffer // T float64, nil without class weights

	// Under bfloat16 storage (Config.Storage StorageBF16): W16 is W's bfloat16
	// copy, which the optimizer's W step rewrites as it updates W, and
	// Refresh the steps that remake it from W after the host sets W
	// (SetParams, Open). Both nil otherwise.
	W16     *Buffer
	Refresh []*Step
}

// Bytes is the device memory the layer's buffers take in all.
func (l *Program) Bytes() int64 {
	t := int64(0)
	for _, b := range l.Buffers {
		t += b.Bytes
	}
	return t
}

// MemStats sums the buffers by category (state, input, extra) and gives the
// rows per chunk: the layer's backend.MemStats but for DeviceBytes, which
// only a device can measure.
func (l *Program) MemStats() backend.MemStats {
	st := backend.MemStats{ChunkRows: l.Chunk}
	for _, b := range l.Buffers {
		switch b.Cat {
		case State:
			st.StateBytes += b.Bytes
		case Input:
			st.InputBytes += b.Bytes
		default:
			st.ExtraBytes += b.Bytes
		}
	}
	return st
}

// Lower builds the layer graph of cfg and lowers its training and forward
// subgraphs. A node it cannot lower is an error wrapping
// backend.ErrNotImplemented that names the node; nothing is ever done on the
// host instead.
func Lower(cfg backend.Config) (*Program, error) {
	g, err := graph.Build(cfg.Spec)
	if err != nil {
		return nil, err
	}
	l := &Program{Config: cfg, F32: cfg.DType == tensor.Float32, ESize: int64(cfg.DType.Size())}
	l.Chunk = cfg.Chunk(int(l.ESize))
	if err := Capabilities().Check("cuda", cfg); err != nil {
		return nil, err
	}
	mode, storage := cfg.MatMode, cfg.Storage == backend.StorageBF16
	if storage {
		mode = backend.BF16 // bfloat16 storage multiplies its bfloat16 operands
	}
	lw := &lowerer{cfg: cfg, g: g, l: l, esize: l.ESize, f32: l.F32, bufs: map[*G.Node]*Buffer{}, named: map[string]*Buffer{},
		fused: map[*G.Node]bool{}, chunk: l.Chunk, mode: mode, bf16: map[*Buffer]*Buffer{}, storage: storage, stored: map[*Buffer]*Buffer{}}
	if vocabTiled(lw) {
		// The chunk's rows: as many as fit the logits budget in tiles of
		// VocabTile columns. The forward plan (whole logits rows, for
		// Logits) runs in chunks of as many rows as one tile's worth.
		tc := cfg
		tc.T = cfg.VocabTile
		l.Chunk = tc.Chunk(int(l.ESize))
		lw.chunk = l.Chunk
		if l.Train, err = lw.vocabTrain(g.TrainGraph()); err != nil {
			return nil, err
		}
		lw.chunk = max(1, l.Chunk*cfg.VocabTile/cfg.T)
	} else {
		if l.Train, err = lw.lower(g.TrainGraph()); err != nil {
			return nil, err
		}
		if err := lw.outputs(l.Train, false); err != nil {
			return nil, err
		}
	}
	if l.Forward, err = lw.lower(g.ForwardGraph()); err != nil {
		return nil, err
	}
	l.Forward.Chunk = lw.chunk
	if err := lw.outputs(l.Forward, true); err != nil {
		return nil, err
	}
	l.X, l.W, l.Bias, l.Targets = lw.bufs[g.X], lw.bufs[g.W], lw.bufs[g.Bias], lw.bufs[g.Targets]
	l.ClassWeights = lw.named["class weights"]
	if l.X == nil || l.W == nil || l.Bias == nil || l.Targets == nil {
		return nil, fmt.Errorf("cuda: the lowered graph lacks x, W, b or the targets: %w", backend.ErrNotImplemented)
	}
	lw.optimizer(l)
	if l.W16 != nil {
		l.Refresh = []*Step{{Phase: Pre, Op: &toBF16{src: l.W, dst: l.W16, total: cfg.N * cfg.T}}}
	}
	return l, nil
}

// lowerer turns the nodes of one graph.Head into plans. Buffers are shared
// between the plans of a layer (node → buffer), so the forward plan reuses
// the training plan's logits buffer.
type lowerer struct {
	cfg   backend.Config
	g     *graph.Head
	l     *Program
	esize int64
	f32   bool
	bufs  map[*G.Node]*Buffer
	named map[string]*Buffer
	fused map[*G.Node]bool // logits whose gradient the fused kernel writes
	chunk int              // rows per chunk (B when unchunked)
	mode  backend.MatMode
	bf16  map[*Buffer]*Buffer // bfloat16 copies of product operands (BF16)
	// per plan
	sub       *G.ExprGraph
	vals      map[*G.Node]val
	p         *Plan
	converted map[*Buffer]bool // bf16 copies already made in this plan since their source last changed
	rowloss   *Buffer          // the loss node's float64 per-row losses
	scale     *Buffer          // the loss node's reduction scales (xent_scale's output)
	// bfloat16 storage: storage is set, and stored maps a buffer to its
	// bfloat16 twin that is always current (W → W16, the logits' gradient
	// → the loss kernel's bfloat16 copy of it): no step converts them.
	storage bool
	stored  map[*Buffer]*Buffer
}

// Dim is one axis of a lowered value: batch axes have the batch's row count
// at run time (n is then the layer's B).
type Dim struct {
	N     int
	Batch bool
	Tile  bool // the columns of a vocabulary tile (Ctx.Cols)
}

func (d Dim) at(c Ctx) int {
	switch {
	case d.Batch:
		return c.Rows
	case d.Tile:
		return c.Cols
	}
	return d.N
}

func (d Dim) String() string {
	switch {
	case d.Batch:
		return "rows"
	case d.Tile:
		return "tile"
	}
	return fmt.Sprint(d.N)
}

type kind int

const (
	kBuf     kind = iota // a device buffer of the layer's dtype, row-major
	kConst               // a constant (scalar, or repeated to a vector)
	kSize                // SizeOf a batch axis: the batch's row count
	kLoss                // the scalar loss, one double on the device
	kRowLoss             // per-row losses: buf (dtype) and rowloss (double)
)

var kindNames = map[kind]string{kBuf: "buffer", kConst: "constant", kSize: "size", kLoss: "loss", kRowLoss: "per-row loss"}

func (k kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

type val struct {
	kind    kind
	buf     *Buffer
	rowloss *Buffer
	dims    []Dim
	c       float64
	// bias, when set, is a T-vector still to be added to each row of buf:
	// the bias add was fused into the softmax-cross-entropy that reads it.
	bias *Buffer
}

// request adds a buffer to the layer.
func (lw *lowerer) request(what string, bytes int64) *Buffer {
	if bytes < 8 {
		bytes = 8
	}
	b := &Buffer{ID: len(lw.l.Buffers), What: what, Bytes: bytes}
	lw.l.Buffers = append(lw.l.Buffers, b)
	return b
}

// buffer is the buffer of node n, made on first use.
func (lw *lowerer) buffer(n *G.Node, what string, elems int) *Buffer {
	if b, ok := lw.bufs[n]; ok {
		return b
	}
	b := lw.request(what, int64(elems)*lw.esize)
	lw.bufs[n] = b
	return b
}

// namedBuf is the buffer called name, made on first use.
func (lw *lowerer) namedBuf(name string, bytes int64) *Buffer {
	if b, ok := lw.named[name]; ok {
		return b
	}
	b := lw.request(name, bytes)
	lw.named[name] = b
	return b
}

func (lw *lowerer) add(ph Phase, op Op) { lw.p.Steps = append(lw.p.Steps, &Step{Phase: ph, Op: op}) }

func children(g *G.ExprGraph, n *G.Node) G.Nodes {
	it := g.From(n.ID())
	var out G.Nodes
	for it.Next() {
		out = append(out, it.Node().(*G.Node))
	}
	return out
}

// consumers lists the nodes of g that read n. A subgraph's To reports the
// readers in the whole graph, so they are filtered to g's nodes.
func consumers(g *G.ExprGraph, n *G.Node) G.Nodes {
	in := map[*G.Node]bool{}
	for _, m := range g.AllNodes() {
		in[m] = true
	}
	it := g.To(n.ID())
	var out G.Nodes
	for it.Next() {
		if c := it.Node().(*G.Node); in[c] {
			out = append(out, c)
		}
	}
	return out
}

func elems(ds []Dim) int {
	e := 1
	for _, d := range ds {
		e *= d.N
	}
	return e
}

func hasBatch(ds []Dim) bool {
	for _, d := range ds {
		if d.Batch {
			return true
		}
	}
	return false
}

func shapeOf(ds []Dim) tensor.Shape {
	s := make(tensor.Shape, len(ds))
	for i, d := range ds {
		s[i] = d.N
	}
	return s
}

// lower walks sub's nodes in dependency order and lowers each.
func (lw *lowerer) lower(sub *G.ExprGraph) (*Plan, error) {
	lw.sub, lw.vals, lw.p, lw.converted = sub, map[*G.Node]val{}, &Plan{}, map[*Buffer]bool{}
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

// notImpl is the error for a node that cannot be lowered.
func notImpl(n *G.Node, r recognized, format string, a ...any) error {
	return fmt.Errorf("cuda: node %v (%s): %s: %w", n, r.op, fmt.Sprintf(format, a...), backend.ErrNotImplemented)
}

func (lw *lowerer) node(n *G.Node) error {
	r := recognize(n)
	kids := children(lw.sub, n)
	in := make([]val, len(kids))
	for i, k := range kids {
		v, ok := lw.vals[k]
		if !ok {
			return notImpl(n, r, "input %v was not lowered", k)
		}
		in[i] = v
	}
	switch r.kind {
	case nInput:
		return lw.input(n, r)
	case nXent:
		return lw.xent(n, r, in)
	case nBiasAdd:
		return lw.biasAdd(n, r, kids[0], in[0], in[1])
	case nColSum:
		return lw.colSum(n, r, in[0])
	case nXentGrad:
		v, ok := lw.vals[kids[0]]
		if !ok || !lw.fused[kids[0]] {
			return notImpl(n, r, "gradient without its fused forward node")
		}
		v.bias = nil // the fused kernel wrote the gradient over the logits
		lw.vals[n] = v
	case nConst:
		lw.vals[n] = val{kind: kConst, c: r.c}
	case nReshape:
		return lw.reshape(n, r, in[0])
	case nSizeOf:
		v := in[0]
		if (v.kind != kBuf && v.kind != kRowLoss) || len(v.dims) == 0 || !v.dims[0].Batch || v.dims[0].N != r.size {
			return notImpl(n, r, "size of something other than a batch axis")
		}
		lw.vals[n] = val{kind: kSize}
	case nRepeat:
		// The upstream gradient of Σ losses (Reduction None): the constant
		// 1 repeated to one per row.
		if r.axis != 0 || len(in) != 2 || in[1].kind != kSize || in[0].kind != kConst {
			return notImpl(n, r, "repeat other than of a constant along the batch axis")
		}
		lw.vals[n] = in[0]
	case nMatMul:
		return lw.matmul(n, r, in)
	case nSum:
		if r.axis != 0 || len(in) != 1 || in[0].kind != kRowLoss {
			return notImpl(n, r, "sum other than of the per-row losses")
		}
		lw.vals[n] = lw.reduce(in[0])
	default:
		return notImpl(n, r, "no lowering for %s", r.op)
	}
	return nil
}

// input lowers x, W, b and the targets to their buffers.
func (lw *lowerer) input(n *G.Node, r recognized) error {
	g, s := lw.g, lw.cfg.Spec
	switch n {
	case g.X:
		b := lw.buffer(n, "x", s.B*s.N)
		b.RowBytes, b.Cat = int64(s.N)*lw.esize, Input
		if lw.storage {
			b.What, b.BF16, b.Bytes, b.RowBytes = "x (bfloat16)", true, int64(s.B)*int64(s.N)*2, int64(s.N)*2
		}
		lw.vals[n] = val{kind: kBuf, buf: b, dims: []Dim{{N: s.B, Batch: true}, {N: s.N, Batch: false}}}
	case g.W:
		b := lw.buffer(n, "W", s.N*s.T)
		b.Cat = State
		if lw.storage && lw.l.W16 == nil {
			b.What = "W (float32 master)"
			w16 := lw.request("W (bfloat16 copy, refreshed by the optimizer step)", int64(s.N)*int64(s.T)*2)
			w16.BF16, w16.Cat = true, State
			lw.l.W16, lw.stored[b] = w16, w16
		}
		lw.vals[n] = val{kind: kBuf, buf: b, dims: []Dim{{N: s.N, Batch: false}, {N: s.T, Batch: false}}}
	case g.Bias:
		b := lw.buffer(n, "b", s.T)
		b.Cat = State
		lw.vals[n] = val{kind: kBuf, buf: b, dims: []Dim{{N: s.T, Batch: false}}}
	case g.Targets:
		if s.Loss.SoftTargets {
			b := lw.buffer(n, "targets", s.B*s.T)
			b.RowBytes, b.Cat = int64(s.T)*lw.esize, Input
			lw.vals[n] = val{kind: kBuf, buf: b, dims: []Dim{{N: s.B, Batch: true}, {N: s.T, Batch: false}}}
		} else {
			b := lw.buffer(n, "targets", s.B)
			b.RowBytes, b.Cat = lw.esize, Input
			lw.vals[n] = val{kind: kBuf, buf: b, dims: []Dim{{N: s.B, Batch: true}}}
		}
	default:
		return notImpl(n, r, "an input that is not x, W, b or the targets")
	}
	return nil
}

// reshape lowers a Reshape: no device work, a new view.
func (lw *lowerer) reshape(n *G.Node, r recognized, v val) error {
	switch v.kind {
	case kConst:
	case kBuf:
		to := n.Shape()
		if hasBatch(v.dims) {
			if !to.Eq(shapeOf(v.dims)) {
				return notImpl(n, r, "reshaping a value with a batch axis")
			}
		} else {
			if to.TotalSize() != elems(v.dims) {
				return notImpl(n, r, "reshape changes the size")
			}
			v.dims = nil
			for _, d := range to {
				v.dims = append(v.dims, Dim{N: d})
			}
		}
	default:
		return notImpl(n, r, "reshape of a %v value", v.kind)
	}
	lw.vals[n] = v
	return nil
}

// constOf evaluates a node built from constants only (the seed of the
// gradient: 1, or 1 reshaped and repeated to one per row).
func (lw *lowerer) constOf(n *G.Node) (float64, bool) {
	switch r := recognize(n); r.kind {
	case nConst:
		return r.c, true
	case nReshape, nRepeat:
		if k := children(lw.sub, n); len(k) > 0 {
			return lw.constOf(k[0])
		}
	}
	return 0, false
}

// outputs finds a plan's output buffers.
func (lw *lowerer) outputs(p *Plan, forward bool) error {
	g := lw.g
	get := func(n *G.Node, k kind, what string) (*Buffer, error) {
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
		p.Logits, err = get(g.Logits, kBuf, "logits")
		return err
	}
	if p.Loss, err = get(g.Loss, kLoss, "loss"); err != nil {
		return err
	}
	p.RowLoss, p.Scale = lw.rowloss, lw.scale
	if g.Xent != g.Loss {
		if p.Losses, err = get(g.Xent, kRowLoss, "per-row losses"); err != nil {
			return err
		}
	}
	if p.DW, err = get(g.DW, kBuf, "dW"); err != nil {
		return err
	}
	if p.DB, err = get(g.DB, kBuf, "db"); err != nil {
		return err
	}
	p.DX, err = get(g.DX, kBuf, "dx")
	return err
}
