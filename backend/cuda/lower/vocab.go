package lower

import (
	"fmt"

	"dsx/backend"
	k "dsx/cudakernels"
	"dsx/graph"

	G "gorgonia.org/gorgonia"
)

// Vocabulary tiles (backend.Config.VocabTile): the training plan of a layer
// whose chunk logits must never exist whole. It is the layer graph's
// training subgraph lowered as one fused unit rather than node by node: the
// nodes are the same (x·W, + b, XentOp, its gradient, db, dW, dx; the
// plan's outputs are theirs), but every product and kernel runs over
// rows×Vt tiles of the logits (xvocab.cu):
//
//	pre:        xent_scale
//	per chunk:  tile loop 1: z_t = x·W[:, t]; xvocab_stats
//	            xvocab_finish (row losses; m, L, S a row)
//	            tile loop 2: z_t = x·W[:, t] again; xvocab_grad (in place);
//	                         db[t] += Σ rows; dW[:, t] += xᵀ·dz_t; dx += dz_t·W[:, t]ᵀ
//	post:       xent_reduce
//
// Extra memory is one rows×Vt tile (and its bfloat16 copy under bfloat16
// storage), 8 doubles a row and the column sums' slabs, instead of
// rows×T logits; the price is one more x·W product per tile.

// vocabTiled reports whether cfg runs its training plan over vocabulary
// tiles.
func vocabTiled(c *lowerer) bool {
	return c.cfg.VocabTile > 0 && c.cfg.VocabTile < c.cfg.T
}

// vocabTrain builds the tiled training plan of g's training subgraph.
func (lw *lowerer) vocabTrain(sub *G.ExprGraph) (*Plan, error) {
	g, s := lw.g, lw.cfg.Spec
	lw.sub, lw.vals, lw.p, lw.converted = sub, map[*G.Node]val{}, &Plan{}, map[*Buffer]bool{}
	T, N, Vt := s.T, s.N, lw.cfg.VocabTile
	p := lw.p
	p.VocabTile, p.T = Vt, T
	for _, n := range []*G.Node{g.X, g.W, g.Bias, g.Targets} {
		if err := lw.input(n, recognize(n)); err != nil {
			return nil, err
		}
	}
	x, W, b, tg := lw.bufs[g.X], lw.bufs[g.W], lw.bufs[g.Bias], lw.bufs[g.Targets]
	opts := s.Loss
	lb := lw.lossBuffers(g.Xent, opts)
	flags, weights, wsum, rowloss, scale, losses := lb.flags, lb.weights, lb.wsum, lb.rowloss, lb.scale, lb.losses
	ignore := int64(opts.IgnoreIndex)
	rows := int64(lw.chunk)
	acc := lw.request("row statistics over the tiles (4 float64 a row)", rows*32)
	zy := lw.request("logit at the label (float64 a row)", rows*8)
	st := lw.request("row m, L, S (3 float64 a row)", rows*24)
	tile := lw.request(fmt.Sprintf("logits tile (rows×%d)", Vt), rows*int64(Vt)*lw.esize)
	var g16 *Buffer
	if lw.storage {
		g16 = lw.request(fmt.Sprintf("gradient tile (rows×%d, bfloat16)", Vt), rows*int64(Vt)*2)
		g16.BF16 = true
	}
	scaleFlags := flags
	if opts.Reduction == graph.Mean {
		scaleFlags |= k.XentMean
	}
	lw.add(Pre, &xentScale{f32: lw.f32, tg: tg, w: weights, scale: scale, T: T, flags: scaleFlags, ignore: ignore})

	// x·W[:, t] into the tile (products on bfloat16 operands in BF16 mode:
	// x's and W's copies, made once before the chunks, or kept current
	// under bfloat16 storage).
	xv := val{kind: kBuf, buf: x, dims: []Dim{{N: s.B, Batch: true}, {N: N}}}
	wv := val{kind: kBuf, buf: W, dims: []Dim{{N: N}, {N: T}}}
	logits := func(loop int) {
		A, B := x, W
		if lw.mode == backend.BF16 {
			// x's and W's bfloat16 copies (none under bfloat16 storage):
			// their steps, if any, go into the plan once, per chunk (x) or
			// before the chunks (W), outside the tile loops.
			A, B = lw.toBF16(xv), lw.toBF16(wv)
		}
		lw.p.Steps = append(lw.p.Steps, &Step{Phase: PerChunk, Tiles: loop, Op: &Gemm{What: "x·W tile", M: Dim{N: s.B, Batch: true},
			N: Dim{Tile: true}, K: Dim{N: N}, A: A, B: B, C: tile, Lda: N, Ldb: T, Mode: lw.mode, F32: lw.f32, ColB: true}})
	}
	tiled := func(loop int, op Op) { lw.p.Steps = append(lw.p.Steps, &Step{Phase: PerChunk, Tiles: loop, Op: op}) }

	logits(1)
	tiled(1, &xvStats{f32: lw.f32, z: tile, tg: tg, w: weights, bias: b, acc: acc, zy: zy, T: T, Vt: Vt,
		flags: flags, ignore: ignore, eps: opts.LabelSmoothing, softcap: opts.Softcap})
	lw.add(PerChunk, &xvFinish{f32: lw.f32, acc: acc, zy: zy, tg: tg, w: weights, rowloss: rowloss, losses: losses,
		scale: scale, st: st, T: T, flags: flags, ignore: ignore, eps: opts.LabelSmoothing, wsum: wsum, zloss: opts.ZLoss})

	want := s.Want
	if want.DW || want.DB || want.DX {
		logits(2)
		grad := &xvGrad{f32: lw.f32, z: tile, tg: tg, w: weights, bias: b, st: st, scale: scale, g16: g16, T: T, Vt: Vt,
			flags: flags, ignore: ignore, eps: opts.LabelSmoothing, gscale: 1, softcap: opts.Softcap, zloss: opts.ZLoss}
		tiled(2, grad)
		dz := tile // the products' operand: the tile's gradient, or its bfloat16 copy
		if g16 != nil {
			dz = g16
		} else if lw.mode == backend.BF16 {
			dz = lw.request(fmt.Sprintf("gradient tile (rows×%d, bfloat16 copy)", Vt), rows*int64(Vt)*2)
			dz.BF16 = true
			tiled(2, &toBF16{src: tile, dst: dz, cols: Vt, tileRows: true})
		}
		A, Wb := x, W
		if lw.mode == backend.BF16 {
			A, Wb = lw.toBF16(xv), lw.toBF16(wv)
		}
		if want.DB {
			db := lw.buffer(g.DB, "db", T)
			db.Cat = State
			// xvocab_grad sums the columns by row slab as it writes them;
			// colsum_fin adds the slabs into db's columns of the tile.
			grad.part = lw.request("column sums by slab (float64)", int64(ColSumSlabs(Vt, lw.chunk))*int64(Vt)*8)
			tiled(2, &colSumFin{f32: lw.f32, part: grad.part, out: db, T: Vt, tile: true})
			p.DB = db
		}
		if want.DW {
			dW := lw.buffer(g.DW, "dW", N*T)
			dW.Cat = State
			tiled(2, &Gemm{What: "dW tile", TA: true, M: Dim{N: N}, N: Dim{Tile: true}, K: Dim{N: s.B, Batch: true},
				A: A, B: dz, C: dW, Lda: N, LdbTile: true, Ldc: T, ColC: true, Mode: lw.mode, F32: lw.f32, Accumulate: true})
			p.DW = dW
		}
		if want.DX {
			dx := lw.buffer(g.DX, "dx", s.B*N)
			dx.RowBytes, dx.Cat = int64(N)*lw.esize, Input
			out := dx
			if lw.storage {
				// dx is summed over the tiles in float32, then stored in
				// bfloat16 once per chunk.
				dx.What, dx.BF16, dx.Bytes, dx.RowBytes = "dx (bfloat16)", true, int64(s.B)*int64(N)*2, int64(N)*2
				out = lw.request("dx of a chunk (float32, summed over the tiles)", rows*int64(N)*lw.esize)
			}
			g := &Gemm{What: "dx tile", TB: true, M: Dim{N: s.B, Batch: true}, N: Dim{N: N}, K: Dim{Tile: true},
				A: dz, B: Wb, C: out, LdaTile: true, Ldb: T, ColB: true, Mode: lw.mode, F32: lw.f32, AccTiles: true}
			if out == dx {
				tiled(2, g)
			} else {
				g.C = out
				tiled(2, g)
				lw.add(PerChunk, &toBF16{src: out, dst: dx, cols: N, toBatch: true})
			}
			p.DX = dx
		}
	}
	loss := lw.namedBuf("loss", 8)
	lw.add(Post, &xentReduce{rowloss: rowloss, loss: loss})
	p.Loss, p.Losses, p.RowLoss, p.Scale = loss, losses, rowloss, scale
	lw.rowloss = rowloss
	return p, nil
}

// xvStats is xvocab_stats over one tile.
type xvStats struct {
	f32                     bool
	z, tg, w, bias, acc, zy *Buffer
	T, Vt                   int
	flags, ignore           int64
	eps, softcap            float64
}

func (s *xvStats) Kernel() string { return "xvocab_stats" + suffix(s.f32) }
func (s *xvStats) NewArgs() any   { return new(k.XVocabStats) }
func (s *xvStats) Describe() string {
	return fmt.Sprintf("%s: %s + b → %s", s.Kernel(), s.z.What, s.acc.What)
}
func (s *xvStats) Dims(c Ctx) Dims { return VocabStatsDims(c.Rows, s.Vt) }
func (s *xvStats) Fill(args any, a Addr, c Ctx) {
	first := int64(0)
	if c.FirstTile {
		first = 1
	}
	*args.(*k.XVocabStats) = k.XVocabStats{Z: a(s.z), C0: int64(c.C0), Vt: int64(c.Cols), Tg: at(a, s.tg, c.R0), W: at(a, s.w, 0),
		Bias: at(a, s.bias, 0), Acc: a(s.acc), Zy: a(s.zy), Rows: int64(c.Rows), T: int64(s.T), Flags: s.flags,
		Ignore: s.ignore, Eps: s.eps, Softcap: s.softcap, First: first}
}

// xvFinish is xvocab_finish after the last tile.
type xvFinish struct {
	f32                                        bool
	acc, zy, tg, w, rowloss, losses, scale, st *Buffer
	T                                          int
	flags, ignore                              int64
	eps, wsum, zloss                           float64
}

func (s *xvFinish) Kernel() string { return "xvocab_finish" + suffix(s.f32) }
func (s *xvFinish) NewArgs() any   { return new(k.XVocabFinish) }
func (s *xvFinish) Describe() string {
	return fmt.Sprintf("%s: %s → %s, %s", s.Kernel(), s.acc.What, s.rowloss.What, s.st.What)
}
func (s *xvFinish) Dims(c Ctx) Dims { return VocabFinishDims(c.Rows) }
func (s *xvFinish) Fill(args any, a Addr, c Ctx) {
	*args.(*k.XVocabFinish) = k.XVocabFinish{Acc: a(s.acc), Zy: a(s.zy), Tg: at(a, s.tg, c.R0), W: at(a, s.w, 0),
		RowLoss: at(a, s.rowloss, c.R0), Losses: at(a, s.losses, c.R0), ScaleP: a(s.scale), St: a(s.st),
		Rows: int64(c.Rows), T: int64(s.T), Flags: s.flags, Ignore: s.ignore, Eps: s.eps, WSum: s.wsum, ZLoss: s.zloss}
}

// xvGrad is xvocab_grad over one tile.
type xvGrad struct {
	f32                            bool
	z, tg, w, bias, st, scale, g16 *Buffer
	part                           *Buffer // column sums by slab (db), or nil
	T, Vt                          int
	flags, ignore                  int64
	eps, gscale, softcap, zloss    float64
}

func (s *xvGrad) Kernel() string { return "xvocab_grad" + suffix(s.f32) }
func (s *xvGrad) NewArgs() any   { return new(k.XVocabGrad) }
func (s *xvGrad) Describe() string {
	d := fmt.Sprintf("%s: %s + b, gradient in place", s.Kernel(), s.z.What)
	if s.g16 != nil {
		d += " and to " + s.g16.What
	}
	if s.part != nil {
		d += ", Σ slabs → " + s.part.What
	}
	return d
}
func (s *xvGrad) Dims(c Ctx) Dims { return VocabGradDims(c.Rows, c.Cols, s.Vt, s.part != nil) }
func (s *xvGrad) Fill(args any, a Addr, c Ctx) {
	*args.(*k.XVocabGrad) = k.XVocabGrad{Z: a(s.z), C0: int64(c.C0), Vt: int64(c.Cols), Tg: at(a, s.tg, c.R0), W: at(a, s.w, 0),
		Bias: at(a, s.bias, 0), St: a(s.st), ScaleP: a(s.scale), G16: at(a, s.g16, 0), Part: at(a, s.part, 0), Rows: int64(c.Rows), T: int64(s.T),
		Flags: s.flags, Ignore: s.ignore, Eps: s.eps, GScale: s.gscale, Softcap: s.softcap, ZLoss: s.zloss}
}
