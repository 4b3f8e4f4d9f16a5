//go:build gpu

package cuda

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

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

// xentTile is the tiled kernel for rows of T classes: xent_t<tmax> holds a row
// in the registers of threads threads (one warp to eight), with a block of
// block threads; tmax = 0 when T > 4096: then the block-per-row kernel xent runs.
func xentTile(T int) (tmax, threads, block int) {
	for tmax = 32; tmax <= 4096; tmax *= 2 {
		if T <= tmax {
			threads = max(32, tmax/16) // 16 columns a thread from 512 up
			if threads == 32 {
				return tmax, 32, 64 // two rows (warps) a block
			}
			return tmax, threads, threads
		}
	}
	return 0, 0, 0
}

// xentKernel names the fused kernel for rows of T classes and its launch:
// grid for rows rows, block size, dynamic shared memory.
func xentKernel(T int, f32 bool, shmem int) (name string, grid func(rows int) int, block, sh int) {
	suffix := "_f64"
	if f32 {
		suffix = "_f32"
	}
	if tmax, threads, block := xentTile(T); tmax > 0 {
		perBlock := block / threads
		return fmt.Sprintf("xent_t%d%s", tmax, suffix), func(rows int) int { return ceilDiv(rows, perBlock) }, block, 0
	}
	return "xent" + suffix, func(rows int) int { return rows }, min(512, max(32, ceilDiv(T, 32)*32)), shmem
}

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
	kLoss                // the scalar loss, one double on the device
	kRowLoss             // per-row losses: buf (dtype) and rowloss (double)
)

type val struct {
	kind    kind
	buf     *dbuf
	rowloss *dbuf
	dims    []dim
	c       float64
	// bias, when set, is a T-vector still to be added to each row of buf:
	// the bias add was fused into the softmax-cross-entropy that reads it.
	bias *dbuf
}

// stepFn runs one lowered node for rows rows starting at batch row r0
// (first: r0 is the batch's first chunk); binders make them once the device
// buffers exist.
type stepFn func(r0, rows int, first bool) error

// phase says when a step runs in a batch split into chunks of rows.
type phase int

const (
	pre      phase = iota // once, before the chunks, over the whole batch (the mean's denominator, operand copies of W)
	perChunk              // once per chunk (products, bias, softmax-cross-entropy; dW and db accumulate)
	post                  // once, after the chunks, over the whole batch (the loss reduction)
)

type binder struct {
	phase phase
	gemm  bool // a cuBLAS product (what FloorMs times)
	mk    func() stepFn
}

type step struct {
	phase phase
	gemm  bool
	fn    stepFn
}

type plan struct {
	binders []binder
	steps   []step
	// outputs
	loss, losses, dw, db, dx, logits *dbuf
}

func (p *plan) add(ph phase, gemm bool, mk func() stepFn) {
	p.binders = append(p.binders, binder{ph, gemm, mk})
}

func (p *plan) bind() {
	for _, b := range p.binders {
		p.steps = append(p.steps, step{b.phase, b.gemm, b.mk()})
	}
}

// run runs the plan on rows rows in chunks of chunk rows; after, when not
// nil, runs after each chunk's steps.
func (p *plan) run(rows, chunk int, gemmOnly bool, after func(r0, n int) error) error {
	do := func(ph phase, r0, n int, first bool) error {
		for _, s := range p.steps {
			if s.phase == ph && (s.gemm || !gemmOnly) {
				if err := s.fn(r0, n, first); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := do(pre, 0, rows, true); err != nil {
		return err
	}
	for r0 := 0; r0 < rows; r0 += chunk {
		n := min(chunk, rows-r0)
		if err := do(perChunk, r0, n, r0 == 0); err != nil {
			return err
		}
		if after != nil {
			if err := after(r0, n); err != nil {
				return err
			}
		}
	}
	return do(post, 0, rows, true)
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
	chunk int              // rows per chunk (B when unchunked)
	mode  int              // modeFP32, modeTF32 or modeBF16
	bf16  map[*dbuf]*dbuf  // bfloat16 copies of product operands (modeBF16)
	// per plan
	sub       *G.ExprGraph
	vals      map[*G.Node]val
	p         *plan
	converted map[*dbuf]bool // bf16 copies already made in this plan since their source last changed
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
	lw.sub, lw.vals, lw.p, lw.converted = sub, map[*G.Node]val{}, &plan{}, map[*dbuf]bool{}
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
			b := lw.buffer(n, "x", s.B*s.N)
			b.rowBytes, b.cat = int64(s.N)*lw.esize, catInput
			lw.vals[n] = val{kind: kBuf, buf: b, dims: []dim{{s.B, true}, {s.N, false}}}
		case g.W:
			b := lw.buffer(n, "W", s.N*s.T)
			b.cat = catState
			lw.vals[n] = val{kind: kBuf, buf: b, dims: []dim{{s.N, false}, {s.T, false}}}
		case g.Bias:
			b := lw.buffer(n, "b", s.T)
			b.cat = catState
			lw.vals[n] = val{kind: kBuf, buf: b, dims: []dim{{s.T, false}}}
		case g.Targets:
			if s.Loss.SoftTargets {
				b := lw.buffer(n, "targets", s.B*s.T)
				b.rowBytes, b.cat = int64(s.T)*lw.esize, catInput
				lw.vals[n] = val{kind: kBuf, buf: b, dims: []dim{{s.B, true}, {s.T, false}}}
			} else {
				b := lw.buffer(n, "targets", s.B)
				b.rowBytes, b.cat = lw.esize, catInput
				lw.vals[n] = val{kind: kBuf, buf: b, dims: []dim{{s.B, true}}}
			}
		default:
			return notImpl("an input that is not x, W, b or the targets")
		}
		return nil
	}
	switch o := op.(type) {
	case *graph.XentOp:
		return lw.xent(n, o, in, notImpl)
	case graph.BiasAddOp:
		return lw.biasAdd(n, kids[0], in[0], in[1], notImpl)
	case graph.ColSumOp:
		return lw.colSum(n, in[0], notImpl)
	case *graph.XentGradOp:
		v, ok := lw.vals[kids[0]]
		if !ok || !lw.fused[kids[0]] {
			return notImpl("gradient without its fused forward node")
		}
		v.bias = nil // the fused kernel wrote the gradient over the logits
		lw.vals[n] = v
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
		// The upstream gradient of Σ losses (Reduction None): the constant
		// 1 repeated to one per row.
		if op.String() != "Repeat0" || len(in) != 2 || in[1].kind != kSize || in[0].kind != kConst {
			return notImpl("repeat other than of a constant along the batch axis")
		}
		lw.vals[n] = in[0]
	case "gorgonia.linAlgBinOp":
		return lw.matmul(n, op.String(), in, notImpl)
	case "gorgonia.sumOp":
		if op.String() != "Σ[0]" || len(in) != 1 || in[0].kind != kRowLoss {
			return notImpl("sum other than of the per-row losses")
		}
		lw.vals[n] = lw.reduce(in[0])
	default:
		return notImpl("no lowering for %s", t)
	}
	return nil
}

// biasAdd lowers BiasAdd(x·W, b): when only the softmax-cross-entropy reads
// the logits, the fused kernel adds b as it reads each row (no pass of its
// own); otherwise one kernel adds b in place over the product's buffer.
func (lw *lowerer) biasAdd(n, src *G.Node, m, b val, notImpl func(string, ...any) error) error {
	if m.kind != kBuf || len(m.dims) != 2 || !m.dims[0].batch || b.kind != kBuf || len(b.dims) != 1 || m.dims[1] != b.dims[0] {
		return notImpl("bias add of a %v %v and a %v %v", m.kind, m.dims, b.kind, b.dims)
	}
	for _, c := range consumers(lw.sub, src) {
		if c != n && fmt.Sprintf("%T", c.Op()) != "gorgonia.sizeOp" {
			return notImpl("the bias is added in place, but %v also reads its input", c)
		}
	}
	T := m.dims[1].n
	zb, bb := m.buf, b.buf
	if cs := consumers(lw.sub, n); len(cs) > 0 && func() bool {
		for _, c := range cs {
			switch c.Op().(type) {
			case *graph.XentOp, *graph.XentGradOp:
			default:
				if fmt.Sprintf("%T", c.Op()) != "gorgonia.sizeOp" {
					return false
				}
			}
		}
		return true
	}() {
		m.bias = bb
		lw.vals[n] = m
		return nil
	}
	lw.p.add(perChunk, false, func() stepFn {
		k := newLauncher(lw.kname("bias_add"), ptrArg(zb.ptr), intArg(int64(T)), ptrArg(bb.ptr), 0, intArg(int64(T)))
		return func(r0, rows int, _ bool) error {
			k.args[0] = ptrArg(zb.at(r0))
			k.args[3] = intArg(int64(rows))
			return k.launch(ceilDiv(T, 256), min(rows, 65535), 256, 0)
		}
	})
	lw.vals[n] = m
	return nil
}

// colSum lowers ColSum(dz), the bias gradient Σ_rows dz: partial sums over
// slabs of rows in parallel, then a deterministic sum of the slabs
// (accumulated across chunks).
func (lw *lowerer) colSum(n *G.Node, v val, notImpl func(string, ...any) error) error {
	if v.kind != kBuf || len(v.dims) != 2 || !v.dims[0].batch || v.dims[1].batch {
		return notImpl("column sum of a %v %v", v.kind, v.dims)
	}
	T := v.dims[1].n
	out := lw.buffer(n, "Σ rows", T)
	if n == lw.g.DB {
		out.what, out.cat = "db", catState
	}
	gb := v.buf
	// Slabs of rows in parallel: enough blocks to fill the GPU,
	// at least 8 rows a slab.
	slabs := func(rows int) int { return max(1, min(64, ceilDiv(2048, ceilDiv(T, 32)), ceilDiv(rows, 8))) }
	part := lw.mem.request("column sums by slab (float64)", int64(slabs(lw.chunk))*int64(T)*8)
	lw.p.add(perChunk, false, func() stepFn {
		kp := newLauncher(lw.kname("colsum_part"), ptrArg(gb.ptr), intArg(int64(T)), ptrArg(part.ptr), 0, intArg(int64(T)), 0)
		kf := newLauncher(lw.kname("colsum_fin"), ptrArg(part.ptr), ptrArg(out.ptr), intArg(int64(T)), 0, 0)
		return func(r0, rows int, first bool) error {
			S := int64(slabs(rows))
			kp.args[0], kp.args[3], kp.args[5] = ptrArg(gb.at(r0)), intArg(int64(rows)), intArg(S)
			if err := kp.fn.Launch(ceilDiv(T, 32), int(S), 1, 32, 8, 1, 0, cu.NoStream, kp.ptrs); err != nil {
				return fmt.Errorf("cuda: launching %s: %w", kp.name, err)
			}
			kf.args[3], kf.args[4] = intArg(S), intArg(0)
			if !first {
				kf.args[4] = intArg(1)
			}
			return kf.launch(ceilDiv(T, 64), 1, 64, 0)
		}
	})
	lw.vals[n] = val{kind: kBuf, buf: out, dims: []dim{v.dims[1]}}
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
	what := map[*G.Node]string{lw.g.XW: "x·W (logits, then their gradient)", lw.g.DW: "dW", lw.g.DX: "dx"}[n]
	if what == "" {
		what = name
	}
	var c *dbuf
	switch {
	case n == lw.g.DW:
		c = lw.buffer(n, what, elems(out))
		c.cat = catState
	case out[0].batch && n != lw.g.DX:
		// An intermediate with a batch axis holds one chunk.
		c = lw.buffer(n, what, lw.chunk*out[1].n)
	default:
		c = lw.buffer(n, what, elems(out))
		if out[0].batch {
			c.rowBytes = int64(out[1].n) * lw.esize
		}
	}
	ab, bb, f32, mode := a.buf, b.buf, lw.f32, lw.mode
	if mode == modeBF16 {
		ab, bb = lw.toBF16(a), lw.toBF16(b)
	}
	delete(lw.converted, c)
	lda, ldb := a.dims[1].n, b.dims[1].n
	m, k, nn := opA[0], opA[1], opB[1]
	lw.p.add(perChunk, true, func() stepFn {
		return func(r0, rows int, first bool) error {
			beta := 0.0
			if k.batch && !first {
				beta = 1 // dW accumulates over the chunks, in float32
			}
			return gemm(f32, mode, tA, tB, at(m, rows), at(nn, rows), at(k, rows), ab.at(r0), lda, bb.at(r0), ldb, beta, c.at(r0))
		}
	})
	lw.vals[n] = val{kind: kBuf, buf: c, dims: out}
	return nil
}

// toBF16 returns the bfloat16 copy of a product operand and, the first time
// in a plan since the operand last changed, adds the step that makes it: per
// chunk for a value with a batch axis (the copy holds one chunk), once before
// the chunks otherwise.
func (lw *lowerer) toBF16(v val) *dbuf {
	src := v.buf
	batch := v.dims[0].batch
	cp, ok := lw.bf16[src]
	if !ok {
		n := elems(v.dims)
		if batch {
			n = lw.chunk * v.dims[1].n
		}
		cp = lw.mem.request(src.what+" (bfloat16 copy)", int64(n)*2)
		lw.bf16[src] = cp
	}
	if lw.converted[src] {
		return cp
	}
	lw.converted[src] = true
	cols := int64(v.dims[1].n)
	total := int64(elems(v.dims))
	ph := pre
	if batch {
		ph = perChunk
	}
	lw.p.add(ph, false, func() stepFn {
		k := newLauncher("to_bf16", ptrArg(src.ptr), ptrArg(cp.ptr), intArg(total))
		return func(r0, rows int, _ bool) error {
			if batch {
				k.args[0] = ptrArg(src.at(r0))
				k.args[2] = intArg(int64(rows) * cols)
			}
			return k.launch(min(ceilDiv(int(total), 256), 8192), 1, 256, 0)
		}
	})
	return cp
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
	rowloss.rowBytes = 8
	scale := lw.namedBuf("reduction scale", 8)
	var losses *dbuf
	if opts.Reduction == graph.None {
		losses = lw.buffer(n, "per-row losses", s.B)
		losses.rowBytes = lw.esize
	}
	z, tg := in[0].buf, in[1].buf
	bias := cu.DevicePtr(0)
	biasBuf := in[0].bias
	threads := min(512, max(32, ceilDiv(T, 32)*32))
	wp := func() cu.DevicePtr {
		if weights != nil {
			return weights.ptr
		}
		return 0
	}
	lossAt := func(r0 int) cu.DevicePtr {
		if losses != nil {
			return losses.at(r0)
		}
		return 0
	}
	// The reduction's denominator over the whole batch, before any chunk.
	lw.p.add(pre, false, func() stepFn {
		ks := newLauncher(lw.kname("xent_scale"), ptrArg(tg.ptr), ptrArg(wp()), ptrArg(scale.ptr), 0, intArg(int64(T)), intArg(flags), intArg(int64(opts.IgnoreIndex)))
		return func(_, rows int, _ bool) error {
			ks.args[3] = intArg(int64(rows))
			return ks.launch(1, 1, 1024, 0)
		}
	})
	if lw.cfg.Xent == "unfused" {
		if opts.SoftTargets || opts.LabelSmoothing != 0 {
			return notImpl("unfused softmax-cross-entropy takes hard targets without label smoothing")
		}
		lp := lw.mem.request("log-softmax (unfused)", int64(lw.chunk)*int64(T)*lw.esize)
		lw.p.add(perChunk, false, func() stepFn {
			if biasBuf != nil {
				bias = biasBuf.ptr
			}
			kl := newLauncher(lw.kname("log_softmax"), ptrArg(z.ptr), ptrArg(lp.ptr), 0, intArg(int64(T)), ptrArg(bias))
			kn := newLauncher(lw.kname("nll"), ptrArg(lp.ptr), 0, ptrArg(wp()), 0, 0, 0, intArg(int64(T)), intArg(flags), intArg(int64(opts.IgnoreIndex)))
			kg := newLauncher(lw.kname("nll_grad"), ptrArg(z.ptr), 0, ptrArg(wp()), ptrArg(scale.ptr), 0, intArg(int64(T)), intArg(flags), intArg(int64(opts.IgnoreIndex)), fltArg(gscale))
			kb := newLauncher(lw.kname("log_softmax_grad"), ptrArg(z.ptr), ptrArg(lp.ptr), 0, intArg(int64(T)))
			return func(r0, rows int, _ bool) error {
				kl.args[2] = intArg(int64(rows))
				if err := kl.launch(rows, 1, threads, 0); err != nil {
					return err
				}
				kn.args[1], kn.args[3], kn.args[4], kn.args[5] = ptrArg(tg.at(r0)), ptrArg(rowloss.at(r0)), ptrArg(lossAt(r0)), intArg(int64(rows))
				if err := kn.launch(ceilDiv(rows, 256), 1, 256, 0); err != nil {
					return err
				}
				if !grad {
					return nil
				}
				kg.args[1], kg.args[4] = ptrArg(tg.at(r0)), intArg(int64(rows))
				if err := kg.launch(min(ceilDiv(rows*T, 256), 1<<16), 1, 256, 0); err != nil {
					return err
				}
				kb.args[2] = intArg(int64(rows))
				return kb.launch(rows, 1, threads, 0)
			}
		})
	} else {
		lw.p.add(perChunk, false, func() stepFn {
			if biasBuf != nil {
				bias = biasBuf.ptr
			}
			name, grid, block, sh := xentKernel(T, lw.f32, shmem)
			kx := newLauncher(name, ptrArg(z.ptr), intArg(int64(T)), ptrArg(tg.ptr), intArg(int64(T)), ptrArg(wp()),
				ptrArg(rowloss.ptr), ptrArg(lossAt(0)), ptrArg(scale.ptr), 0, intArg(int64(T)), intArg(flags),
				intArg(int64(opts.IgnoreIndex)), fltArg(opts.LabelSmoothing), fltArg(wsum), fltArg(gscale), ptrArg(bias))
			return func(r0, rows int, _ bool) error {
				kx.args[0], kx.args[2], kx.args[5], kx.args[6] = ptrArg(z.at(r0)), ptrArg(tg.at(r0)), ptrArg(rowloss.at(r0)), ptrArg(lossAt(r0))
				kx.args[8] = intArg(int64(rows))
				return kx.launch(grid(rows), 1, block, sh)
			}
		})
	}
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
	lw.p.add(post, false, func() stepFn {
		k := newLauncher("xent_reduce", ptrArg(rl.ptr), ptrArg(scale.ptr), ptrArg(loss.ptr), 0)
		return func(_, rows int, _ bool) error {
			k.args[3] = intArg(int64(rows))
			return k.launch(1, 1, 1024, 0)
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
	if err := backend.CheckOptions(cfg, "cuda", []string{"fp32", "tf32", "bf16"}, []string{"fused", "unfused"}, true); err != nil {
		return nil, err
	}
	if cfg.Loss.Softcap != 0 || cfg.Loss.ZLoss != 0 {
		return nil, fmt.Errorf("cuda: logit soft-capping and z-loss: %w", backend.ErrNotImplemented)
	}
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
	l.chunk = cfg.Chunk(int(l.esize))
	mode := map[string]int{"": modeFP32, "fp32": modeFP32, "tf32": modeTF32, "bf16": modeBF16}[cfg.MatMode]
	lw := &lowerer{cfg: cfg, g: g, mem: &l.mem, esize: l.esize, f32: l.f32, bufs: map[*G.Node]*dbuf{}, named: map[string]*dbuf{}, fused: map[*G.Node]bool{},
		chunk: l.chunk, mode: mode, bf16: map[*dbuf]*dbuf{}}
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
	for _, b := range append(l.m[:], l.v[:]...) {
		if b != nil {
			b.cat = catState
		}
	}
	what := fmt.Sprintf("layer B×N×T = %d×%d×%d %v", cfg.B, cfg.N, cfg.T, cfg.DType)
	err = onDevice(func() error {
		if free, _, err := cu.MemInfo(); err == nil {
			l.free0 = free
		}
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
	chunk       int       // rows per chunk (B: unchunked)
	free0       int64     // free device memory before the layer allocated
	loaded      int       // rows of the batch Load left on the device (0: none)
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
	if err := l.toDevice(l.tg, targets, tn*l.esize); err != nil {
		return 0, err
	}
	l.loaded = rows
	return rows, nil
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
		if err := l.train.run(rows, l.chunk, false, nil); err != nil {
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
		loss, err = l.step(rows)
		return err
	})
	return loss, err
}

// step runs the training plan and the optimizer on the loaded batch (on the
// device thread).
func (l *layer) step(rows int) (float64, error) {
	if err := l.train.run(rows, l.chunk, false, nil); err != nil {
		return 0, err
	}
	if err := l.optimize(); err != nil {
		return 0, err
	}
	return l.loss()
}

// Load copies and checks a batch once, for StepLoaded (backend.Resident).
func (l *layer) Load(x, targets *tensor.Dense) error {
	return onDevice(func() error {
		l.loaded = 0
		_, err := l.load(x, targets)
		return err
	})
}

// StepLoaded is Step on the batch Load left on the device.
func (l *layer) StepLoaded() (float64, error) {
	if l.cfg.Optimizer.Kind == "" {
		return 0, errors.New("cuda: Step needs an optimizer in the layer's Config")
	}
	if m0 := l.cfg.Want; !m0.W || !m0.B {
		return 0, fmt.Errorf("cuda: Step needs the gradients of W and b (layer computes %v)", m0)
	}
	var loss float64
	err := onDevice(func() error {
		if err := l.check(); err != nil {
			return err
		}
		if l.loaded == 0 {
			return errors.New("cuda: StepLoaded before Load")
		}
		var err error
		loss, err = l.step(l.loaded)
		return err
	})
	return loss, err
}

// MemStats sums the layer's allocations by kind (backend.Stats).
func (l *layer) MemStats() backend.MemStats {
	st := backend.MemStats{ChunkRows: l.chunk}
	for _, b := range l.mem.bufs {
		switch b.cat {
		case catState:
			st.StateBytes += b.bytes
		case catInput:
			st.InputBytes += b.bytes
		default:
			st.ExtraBytes += b.bytes
		}
	}
	onDevice(func() error {
		if free, _, err := cu.MemInfo(); err == nil && l.free0 > 0 {
			st.DeviceBytes = l.free0 - free
		}
		return nil
	})
	return st
}

// FloorMs times the training plan's cuBLAS products alone, on the loaded
// batch's buffers (backend.Stats): the median of reps runs, each
// synchronised.
func (l *layer) FloorMs(rows, reps int) (float64, error) {
	if rows < 1 || rows > l.cfg.B || reps < 1 {
		return 0, fmt.Errorf("cuda: FloorMs(%d, %d): want 1 ≤ rows ≤ %d and reps ≥ 1", rows, reps, l.cfg.B)
	}
	ms := make([]float64, 0, reps)
	err := onDevice(func() error {
		for i := -1; i < reps; i++ {
			if err := cu.Synchronize(); err != nil {
				return fmt.Errorf("cuda: synchronising: %w", err)
			}
			t0 := time.Now()
			if err := l.train.run(rows, l.chunk, true, nil); err != nil {
				return err
			}
			if err := cu.Synchronize(); err != nil {
				return fmt.Errorf("cuda: synchronising: %w", err)
			}
			if i >= 0 {
				ms = append(ms, float64(time.Since(t0).Nanoseconds())/1e6)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	sort.Float64s(ms)
	return ms[len(ms)/2], nil
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
		l.loaded = 0
		if err := l.toDevice(l.x, x, int64(rows*l.cfg.N)*l.esize); err != nil {
			return err
		}
		z = tensor.New(tensor.WithShape(rows, l.cfg.T), tensor.Of(l.cfg.DType))
		return l.fwd.run(rows, l.chunk, false, func(r0, n int) error {
			var err error
			off, bytes := r0*l.cfg.T, int64(n*l.cfg.T)*l.esize
			switch d := z.Data().(type) {
			case []float32:
				err = cu.MemcpyDtoH(hostPtr(d[off:]), l.fwd.logits.ptr, bytes)
			case []float64:
				err = cu.MemcpyDtoH(hostPtr(d[off:]), l.fwd.logits.ptr, bytes)
			}
			if err != nil {
				return fmt.Errorf("cuda: copying logits to the host: %w", err)
			}
			return nil
		})
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
