package lower

import (
	"dsx/backend"
	"dsx/graph"

	k "dsx/cudakernels"

	G "gorgonia.org/gorgonia"
)

// The lowering of each op family: products, the bias and its gradient, and
// the softmax-cross-entropy with its reduction.

// onlyLossReads reports whether every consumer of n in the plan's graph is
// the loss, its gradient, or a SizeOf (which reads no data).
func (lw *lowerer) onlyLossReads(n *G.Node) bool {
	cs := consumers(lw.sub, n)
	for _, c := range cs {
		switch recognize(c).kind {
		case nXent, nXentGrad, nSizeOf:
		default:
			return false
		}
	}
	return len(cs) > 0
}

// biasAdd lowers BiasAdd(x·W, b): when only the softmax-cross-entropy reads
// the logits, the fused kernel adds b as it reads each row (no pass of its
// own); otherwise one kernel adds b in place over the product's buffer.
func (lw *lowerer) biasAdd(n *G.Node, r recognized, src *G.Node, m, b val) error {
	if m.kind != kBuf || len(m.dims) != 2 || !m.dims[0].Batch || b.kind != kBuf || len(b.dims) != 1 || m.dims[1] != b.dims[0] {
		return notImpl(n, r, "bias add of a %v %v and a %v %v", m.kind, m.dims, b.kind, b.dims)
	}
	for _, c := range consumers(lw.sub, src) {
		if c != n && recognize(c).kind != nSizeOf {
			return notImpl(n, r, "the bias is added in place, but %v also reads its input", c)
		}
	}
	if lw.onlyLossReads(n) {
		m.bias = b.buf
		lw.vals[n] = m
		return nil
	}
	lw.add(PerChunk, &biasAdd{f32: lw.f32, z: m.buf, b: b.buf, T: m.dims[1].N})
	lw.vals[n] = m
	return nil
}

// colSum lowers ColSum(dz), the bias gradient Σ_rows dz: partial sums over
// slabs of rows in parallel, then a deterministic sum of the slabs
// (accumulated across chunks).
func (lw *lowerer) colSum(n *G.Node, r recognized, v val) error {
	if v.kind != kBuf || len(v.dims) != 2 || !v.dims[0].Batch || v.dims[1].Batch {
		return notImpl(n, r, "column sum of a %v %v", v.kind, v.dims)
	}
	T := v.dims[1].N
	out := lw.buffer(n, "Σ rows", T)
	if n == lw.g.DB {
		out.What, out.Cat = "db", State
	}
	part := lw.request("column sums by slab (float64)", int64(ColSumSlabs(T, lw.chunk))*int64(T)*8)
	lw.add(PerChunk, &colSumPart{f32: lw.f32, g: v.buf, part: part, T: T})
	lw.add(PerChunk, &colSumFin{f32: lw.f32, part: part, out: out, T: T})
	lw.vals[n] = val{kind: kBuf, buf: out, dims: []Dim{v.dims[1]}}
	return nil
}

// matmul lowers a matrix product to a cuBLAS gemm (on bfloat16 copies of
// the operands in BF16 mode).
func (lw *lowerer) matmul(n *G.Node, r recognized, in []val) error {
	a, b := in[0], in[1]
	if a.kind != kBuf || b.kind != kBuf || len(a.dims) != 2 || len(b.dims) != 2 {
		return notImpl(n, r, "operands must be matrices in device buffers")
	}
	if a.dims[1].Batch || b.dims[1].Batch {
		return notImpl(n, r, "a batch axis as a row stride")
	}
	opA := [2]Dim{a.dims[0], a.dims[1]}
	if r.tA {
		opA = [2]Dim{a.dims[1], a.dims[0]}
	}
	opB := [2]Dim{b.dims[0], b.dims[1]}
	if r.tB {
		opB = [2]Dim{b.dims[1], b.dims[0]}
	}
	if opA[1] != opB[0] {
		return notImpl(n, r, "inner dimensions %v and %v differ", opA[1], opB[0])
	}
	out := []Dim{opA[0], opB[1]}
	if out[1].Batch {
		return notImpl(n, r, "a batch axis as the product's columns")
	}
	what := map[*G.Node]string{lw.g.XW: "x·W (logits, then their gradient)", lw.g.DW: "dW", lw.g.DX: "dx"}[n]
	if what == "" {
		what = n.Op().String()
	}
	var c *Buffer
	switch {
	case n == lw.g.DW:
		c = lw.buffer(n, what, elems(out))
		c.Cat = State
	case out[0].Batch && n != lw.g.DX:
		// An intermediate with a batch axis holds one chunk.
		c = lw.buffer(n, what, lw.chunk*out[1].N)
	default:
		c = lw.buffer(n, what, elems(out))
		if out[0].Batch {
			c.RowBytes = int64(out[1].N) * lw.esize
		}
		if n == lw.g.DX {
			c.Cat = Input // the batch's gradient, as big as x
		}
	}
	if lw.storage && n == lw.g.DX {
		// dx stays on the device in bfloat16 (cuBLAS rounds the float32
		// accumulation once as it stores it).
		c.BF16, c.Bytes, c.RowBytes = true, int64(elems(out))*2, int64(out[1].N)*2
		c.What = "dx (bfloat16)"
		what = c.What
	}
	ab, bb := a.buf, b.buf
	if lw.mode == backend.BF16 {
		ab, bb = lw.toBF16(a), lw.toBF16(b)
	}
	delete(lw.converted, c)
	lw.add(PerChunk, &Gemm{What: what, TA: r.tA, TB: r.tB, M: opA[0], N: opB[1], K: opA[1], A: ab, B: bb, C: c,
		Lda: a.dims[1].N, Ldb: b.dims[1].N, Mode: lw.mode, F32: lw.f32, Accumulate: opA[1].Batch, C16: c.BF16})
	lw.vals[n] = val{kind: kBuf, buf: c, dims: out}
	return nil
}

// toBF16 returns the bfloat16 copy of a product operand and, the first time
// in a plan since the operand last changed, adds the step that makes it: per
// chunk for a value with a batch axis (the copy holds one chunk), once before
// the chunks otherwise.
func (lw *lowerer) toBF16(v val) *Buffer {
	src := v.buf
	if src.BF16 {
		return src // stored in bfloat16 (x under bfloat16 storage)
	}
	if cp, ok := lw.stored[src]; ok {
		return cp // kept current by the kernel that writes src
	}
	batch := v.dims[0].Batch
	cp, ok := lw.bf16[src]
	if !ok {
		n := elems(v.dims)
		if batch {
			n = lw.chunk * v.dims[1].N
		}
		cp = lw.request(src.What+" (bfloat16 copy)", int64(n)*2)
		cp.BF16 = true
		lw.bf16[src] = cp
	}
	if lw.converted[src] {
		return cp
	}
	lw.converted[src] = true
	ph := Pre
	if batch {
		ph = PerChunk
	}
	lw.add(ph, &toBF16{src: src, dst: cp, total: elems(v.dims), cols: v.dims[1].N, batch: batch})
	return cp
}

// xent lowers the XentOp node and, when the graph has it, its gradient
// node into the fused kernel: the gradient overwrites the logits.
func (lw *lowerer) xent(n *G.Node, r recognized, in []val) error {
	o := r.xent
	s := lw.cfg.Spec
	if len(in) != 2 || in[0].kind != kBuf || in[1].kind != kBuf || len(in[0].dims) != 2 || !in[0].dims[0].Batch || in[0].dims[1].N != o.T {
		return notImpl(n, r, "logits must be a rows×%d device buffer", o.T)
	}
	opts, T := o.Opts, o.T
	logits := children(lw.sub, n)[0]
	gscale, grad := 1.0, false
	for _, c := range consumers(lw.sub, logits) {
		switch rc := recognize(c); rc.kind {
		case nXent:
			if c != n {
				return notImpl(n, r, "logits read by a second loss node %v", c)
			}
		case nXentGrad:
			if rc.grad.Fwd != o {
				return notImpl(n, r, "logits read by the gradient of another loss")
			}
			up := children(lw.sub, c)[2]
			v, ok := lw.constOf(up)
			if !ok {
				return notImpl(n, r, "upstream gradient %v is not a constant", up)
			}
			gscale, grad = v, true
		default:
			return notImpl(n, r, "logits are overwritten by their gradient, but %v also reads them", c)
		}
	}
	lb := lw.lossBuffers(n, opts)
	flags, weights, wsum, rowloss, scale, losses := lb.flags, lb.weights, lb.wsum, lb.rowloss, lb.scale, lb.losses
	if grad {
		flags |= k.XentGrad
		lw.fused[logits] = true
	}
	if opts.Reduction == graph.Mean {
		flags |= k.XentMean
	}
	if int64(T)*lw.esize <= CacheBytes {
		flags |= k.XentCache
	}
	z, tg, bias := in[0].buf, in[1].buf, in[0].bias
	ignore := int64(opts.IgnoreIndex)
	// The reduction's denominator over the whole batch, before any chunk.
	lw.add(Pre, &xentScale{f32: lw.f32, tg: tg, w: weights, scale: scale, T: T, flags: flags, ignore: ignore})
	if lw.cfg.Xent == backend.Unfused { // hard targets only, no smoothing, soft-capping or z-loss (Capabilities)
		lp := lw.request("log-softmax (unfused)", int64(lw.chunk)*int64(T)*lw.esize)
		lw.add(PerChunk, &logSoftmax{f32: lw.f32, z: z, lp: lp, bias: bias, T: T})
		lw.add(PerChunk, &nll{f32: lw.f32, lp: lp, tg: tg, w: weights, rowloss: rowloss, losses: losses, scale: scale, T: T, flags: flags, ignore: ignore})
		if grad {
			lw.add(PerChunk, &nllGrad{f32: lw.f32, g: z, tg: tg, w: weights, scale: scale, T: T, flags: flags, ignore: ignore, gscale: gscale})
			lw.add(PerChunk, &logSoftmaxGrad{f32: lw.f32, g: z, lp: lp, T: T})
		}
	} else {
		var g16 *Buffer
		if lw.storage && grad {
			// The loss kernel writes the gradient twice: over the float32
			// logits (for db) and rounded to bfloat16 here, the operand of
			// dW = xᵀ·dz and dx = dz·Wᵀ.
			g16 = lw.request("gradient of the logits (bfloat16, from the loss kernel)", int64(lw.chunk)*int64(T)*2)
			g16.BF16 = true
			lw.stored[z] = g16
		}
		lw.add(PerChunk, &xentFused{f32: lw.f32, esize: lw.esize, g16: g16, z: z, tg: tg, w: weights, rowloss: rowloss, losses: losses,
			scale: scale, bias: bias, T: T, flags: flags, ignore: ignore, eps: opts.LabelSmoothing, wsum: wsum, gscale: gscale,
			softcap: opts.Softcap, zloss: opts.ZLoss})
	}
	lw.rowloss = rowloss
	rl := val{kind: kRowLoss, buf: losses, rowloss: rowloss, dims: []Dim{{N: s.B, Batch: true}}}
	if opts.Reduction == graph.None {
		lw.vals[n] = rl
	} else {
		lw.vals[n] = lw.reduce(rl)
	}
	return nil
}

// lossBufs are what a softmax-cross-entropy lowering reads and writes
// beside the logits and the targets: the kernel flags the options set
// (XentSoft, XentIgnore), the class weights (nil without) and their sum,
// the per-row losses in float64 (each times its reduction scale) and, for
// Reduction None, in the dtype, and the reduction's two scales.
type lossBufs struct {
	flags                  int64
	weights                *Buffer
	wsum                   float64
	rowloss, scale, losses *Buffer
}

// lossBuffers makes the lossBufs of loss node n (the plan's per-row losses
// are n's value under Reduction None).
func (lw *lowerer) lossBuffers(n *G.Node, opts graph.LossOptions) lossBufs {
	s := lw.cfg.Spec
	lb := lossBufs{wsum: float64(s.T)}
	if opts.SoftTargets {
		lb.flags |= k.XentSoft
	}
	if opts.UseIgnoreIndex {
		lb.flags |= k.XentIgnore
	}
	if opts.ClassWeights != nil {
		lb.weights = lw.namedBuf("class weights", int64(s.T)*8)
		lb.wsum = 0
		for _, w := range opts.ClassWeights {
			lb.wsum += w
		}
	}
	lb.rowloss = lw.namedBuf("per-row losses (float64)", int64(s.B)*8)
	lb.rowloss.RowBytes = 8
	lb.scale = lw.namedBuf("reduction scales", 16)
	lw.scale = lb.scale
	if opts.Reduction == graph.None {
		lb.losses = lw.buffer(n, "per-row losses", s.B)
		lb.losses.RowBytes = lw.esize
	}
	return lb
}

// reduce sums per-row losses times the reduction scale into the scalar loss.
func (lw *lowerer) reduce(v val) val {
	loss := lw.namedBuf("loss", 8)
	lw.add(Post, &xentReduce{rowloss: v.rowloss, loss: loss})
	return val{kind: kLoss, buf: loss}
}
