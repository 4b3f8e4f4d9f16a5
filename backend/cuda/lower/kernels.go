package lower

import (
	"fmt"

	"dsx/backend"
	k "dsx/cudakernels"
)

// The kernel steps of a plan. Each names its kernel, holds the buffers and
// constants the lowering chose, and fills the kernel's typed argument struct
// (package cudakernels) for one chunk: buffers indexed by batch row are
// offset to the chunk's first row (Buffer.RowBytes), and Rows is the chunk's.

// Gemm is a cuBLAS product, in row-major terms C (M×N) = op(A)·op(B) +
// beta·C with op(A) M×K, A stored with Lda columns and B with Ldb. A
// dimension on the batch axis takes the chunk's row count. When K is the
// batch axis (dW = xᵀ·dz) the chunks accumulate: beta is 1 after the first.
type Gemm struct {
	What       string
	TA, TB     bool
	M, N, K    Dim
	A, B, C    *Buffer
	Lda, Ldb   int
	Mode       backend.MatMode
	F32        bool
	Accumulate bool // beta = 1 after the first chunk
	C16        bool // C is stored in bfloat16 (BF16 mode; dx under bfloat16 storage)
	// Vocabulary tiles (a step of a tile loop): ColB / ColC offset B / C by
	// the tile's first column (B = W, C = dW: columns of a wider matrix,
	// Ldb / Ldc apart), AccTiles sets beta = 1 after the first tile (dx
	// summed over the tiles).
	ColB, ColC bool
	Ldc        int // 0: N
	AccTiles   bool
	// LdaTile / LdbTile: A / B is a dense tile (the gradient's), whose rows
	// are Ctx.Cols apart.
	LdaTile, LdbTile bool
}

// GemmCall is one cuBLAS call of a Gemm for a chunk.
type GemmCall struct {
	TA, TB   bool
	M, N, K  int
	A        k.Ptr
	Lda      int
	B        k.Ptr
	Ldb      int
	Beta     float64
	C        k.Ptr
	Ldc      int
	Mode     backend.MatMode
	F32      bool
	C16      bool // C in bfloat16 (Mode BF16 only)
	Describe string
}

// Call is the product for chunk (and tile) c.
func (g *Gemm) Call(a Addr, c Ctx) GemmCall {
	beta := 0.0
	if g.Accumulate && !c.First || g.AccTiles && !c.FirstTile {
		beta = 1
	}
	n := g.N.at(c)
	ldc := g.Ldc
	if ldc == 0 {
		ldc = n
	}
	B, C := at(a, g.B, c.R0), at(a, g.C, c.R0)
	if g.ColB {
		B += k.Ptr(int64(c.C0) * g.elemSize(g.B))
	}
	if g.ColC {
		C += k.Ptr(int64(c.C0) * g.elemSize(g.C))
	}
	lda, ldb := g.Lda, g.Ldb
	if g.LdaTile {
		lda = c.Cols
	}
	if g.LdbTile {
		ldb = c.Cols
	}
	return GemmCall{TA: g.TA, TB: g.TB, M: g.M.at(c), N: n, K: g.K.at(c),
		A: at(a, g.A, c.R0), Lda: lda, B: B, Ldb: ldb, Beta: beta, C: C, Ldc: ldc,
		Mode: g.Mode, F32: g.F32, C16: g.C16, Describe: g.What}
}

// elemSize is the bytes of an element of b as this product reads it.
func (g *Gemm) elemSize(b *Buffer) int64 {
	switch {
	case b.BF16:
		return 2
	case g.F32:
		return 4
	}
	return 8
}

func (g *Gemm) Describe() string {
	t := func(b bool) string {
		if b {
			return "ᵀ"
		}
		return ""
	}
	acc := ""
	if g.Accumulate {
		acc = ", accumulated over chunks"
	}
	if g.AccTiles {
		acc += ", summed over tiles"
	}
	if g.ColB || g.ColC {
		acc += ", tile columns"
	}
	mode := g.Mode.String()
	if !g.F32 {
		mode = "fp64"
	}
	return fmt.Sprintf("gemm %s: %s%s × %s%s → %s (%v×%v×%v, %s%s)", g.What, g.A.What, t(g.TA), g.B.What, t(g.TB), g.C.What, g.M, g.N, g.K, mode, acc)
}

// xentScale computes the reduction's two scales over the whole batch: the
// cross-entropy's (1/Σ w_y for mean) and the z-loss's (1/kept rows).
type xentScale struct {
	f32           bool
	tg, w, scale  *Buffer
	T             int
	flags, ignore int64
}

func (s *xentScale) Kernel() string   { return "xent_scale" + suffix(s.f32) }
func (s *xentScale) NewArgs() any     { return new(k.XentScale) }
func (s *xentScale) Describe() string { return s.Kernel() + " → " + s.scale.What }
func (s *xentScale) Dims(Ctx) Dims    { return ReduceDims }
func (s *xentScale) Fill(args any, a Addr, c Ctx) {
	*args.(*k.XentScale) = k.XentScale{Tg: at(a, s.tg, c.R0), W: at(a, s.w, 0), ScaleP: a(s.scale),
		Rows: int64(c.Rows), T: int64(s.T), Flags: s.flags, Ignore: s.ignore}
}

// xentFused is the fused softmax-cross-entropy (and gradient in place).
type xentFused struct {
	f32                                    bool
	esize                                  int64
	z, tg, w, rowloss, losses, scale, bias *Buffer
	g16                                    *Buffer // the gradient in bfloat16 too (bfloat16 storage), or nil
	T                                      int
	flags, ignore                          int64
	eps, wsum, gscale, softcap, zloss      float64
}

func (x *xentFused) Kernel() string {
	name, _ := XentKernel(x.T, x.f32, x.flags&k.XentCache != 0, x.softcap != 0, x.esize, 1)
	return name
}
func (x *xentFused) NewArgs() any { return new(k.Xent) }
func (x *xentFused) Describe() string {
	s := fmt.Sprintf("%s: %s", x.Kernel(), x.z.What)
	if x.bias != nil {
		s += " + " + x.bias.What
	}
	if x.flags&k.XentGrad != 0 {
		s += ", gradient in place"
	}
	if x.g16 != nil {
		s += " and to " + x.g16.What
	}
	return s
}
func (x *xentFused) Dims(c Ctx) Dims {
	_, d := XentKernel(x.T, x.f32, x.flags&k.XentCache != 0, x.softcap != 0, x.esize, c.Rows)
	return d
}
func (x *xentFused) Fill(args any, a Addr, c Ctx) {
	*args.(*k.Xent) = k.Xent{Z: at(a, x.z, c.R0), Ld: int64(x.T), Tg: at(a, x.tg, c.R0), Ldt: int64(x.T),
		W: at(a, x.w, 0), RowLoss: at(a, x.rowloss, c.R0), Losses: at(a, x.losses, c.R0), ScaleP: a(x.scale),
		Rows: int64(c.Rows), T: int64(x.T), Flags: x.flags, Ignore: x.ignore, Eps: x.eps, WSum: x.wsum,
		GScale: x.gscale, Softcap: x.softcap, ZLoss: x.zloss, Bias: at(a, x.bias, 0), G16: at(a, x.g16, 0)}
}

// xentReduce sums the per-row losses (which carry their scales) into the
// loss.
type xentReduce struct{ rowloss, loss *Buffer }

func (r *xentReduce) Kernel() string   { return "xent_reduce" }
func (r *xentReduce) NewArgs() any     { return new(k.XentReduce) }
func (r *xentReduce) Describe() string { return "xent_reduce → " + r.loss.What }
func (r *xentReduce) Dims(Ctx) Dims    { return ReduceDims }
func (r *xentReduce) Fill(args any, a Addr, c Ctx) {
	*args.(*k.XentReduce) = k.XentReduce{RowLoss: a(r.rowloss), Out: a(r.loss), Rows: int64(c.Rows)}
}

// biasAdd adds b to each row of z in place.
type biasAdd struct {
	f32  bool
	z, b *Buffer
	T    int
}

func (s *biasAdd) Kernel() string { return "bias_add" + suffix(s.f32) }
func (s *biasAdd) NewArgs() any   { return new(k.BiasAdd) }
func (s *biasAdd) Describe() string {
	return fmt.Sprintf("%s: %s += %s", s.Kernel(), s.z.What, s.b.What)
}
func (s *biasAdd) Dims(c Ctx) Dims {
	return Dims{GridX: ceilDiv(s.T, 256), GridY: min(c.Rows, 65535), BlockX: 256, BlockY: 1}
}
func (s *biasAdd) Fill(args any, a Addr, c Ctx) {
	*args.(*k.BiasAdd) = k.BiasAdd{Z: at(a, s.z, c.R0), Ld: int64(s.T), B: a(s.b), Rows: int64(c.Rows), T: int64(s.T)}
}

// colSumPart sums slabs of rows of g into part (float64).
type colSumPart struct {
	f32     bool
	g, part *Buffer
	T       int
}

func (s *colSumPart) Kernel() string { return "colsum_part" + suffix(s.f32) }
func (s *colSumPart) NewArgs() any   { return new(k.ColSumPart) }
func (s *colSumPart) Describe() string {
	return fmt.Sprintf("%s: Σ slabs of %s → %s", s.Kernel(), s.g.What, s.part.What)
}
func (s *colSumPart) Dims(c Ctx) Dims {
	return Dims{GridX: ceilDiv(s.T, 32), GridY: ColSumSlabs(s.T, c.Rows), BlockX: 32, BlockY: 8}
}
func (s *colSumPart) Fill(args any, a Addr, c Ctx) {
	*args.(*k.ColSumPart) = k.ColSumPart{G: at(a, s.g, c.R0), Ld: int64(s.T), Part: a(s.part), Rows: int64(c.Rows),
		T: int64(s.T), S: int64(ColSumSlabs(s.T, c.Rows))}
}

// colSumFin adds the slabs into out, accumulating after the first chunk
// (into out's columns of the tile, with tile).
type colSumFin struct {
	f32       bool
	part, out *Buffer
	T         int
	tile      bool
}

func (s *colSumFin) Kernel() string { return "colsum_fin" + suffix(s.f32) }
func (s *colSumFin) NewArgs() any   { return new(k.ColSumFin) }
func (s *colSumFin) Describe() string {
	return fmt.Sprintf("%s: %s → %s, accumulated over chunks", s.Kernel(), s.part.What, s.out.What)
}
func (s *colSumFin) Dims(c Ctx) Dims {
	cols := s.T
	if s.tile {
		cols = c.Cols
	}
	return ColSumFinDims(cols)
}
func (s *colSumFin) Fill(args any, a Addr, c Ctx) {
	acc := int64(1)
	if c.First {
		acc = 0
	}
	cols, out := s.T, a(s.out)
	if s.tile {
		cols = c.Cols
		out += k.Ptr(int64(c.C0) * esizeOf(s.f32))
	}
	*args.(*k.ColSumFin) = k.ColSumFin{Part: a(s.part), DB: out, T: int64(cols), S: int64(ColSumSlabs(s.T, c.Rows)), Acc: acc}
}

func esizeOf(f32 bool) int64 {
	if f32 {
		return 4
	}
	return 8
}

// toBF16 makes the bfloat16 copy of a product operand: the chunk's rows of
// a batch-indexed one (cols a row), or the whole of another.
type toBF16 struct {
	src, dst    *Buffer
	total, cols int
	batch       bool
	toBatch     bool // the chunk's rows from a chunk-local src into the batch-indexed dst (dx)
	tileRows    bool // a dense rows×Ctx.Cols tile
}

func (s *toBF16) Kernel() string   { return "to_bf16" }
func (s *toBF16) NewArgs() any     { return new(k.ToBF16) }
func (s *toBF16) Describe() string { return fmt.Sprintf("to_bf16: %s → %s", s.src.What, s.dst.What) }
func (s *toBF16) Dims(c Ctx) Dims {
	n := s.total
	switch {
	case s.tileRows:
		n = c.Rows * c.Cols
	case s.toBatch || s.batch:
		n = c.Rows * s.cols
	}
	return Dims{GridX: min(ceilDiv(n, 256), 8192), GridY: 1, BlockX: 256, BlockY: 1}
}
func (s *toBF16) Fill(args any, a Addr, c Ctx) {
	if s.tileRows {
		*args.(*k.ToBF16) = k.ToBF16{Src: a(s.src), Dst: a(s.dst), N: int64(c.Rows) * int64(c.Cols)}
		return
	}
	if s.toBatch {
		*args.(*k.ToBF16) = k.ToBF16{Src: a(s.src), Dst: at(a, s.dst, c.R0), N: int64(c.Rows) * int64(s.cols)}
		return
	}
	if s.batch {
		*args.(*k.ToBF16) = k.ToBF16{Src: at(a, s.src, c.R0), Dst: a(s.dst), N: int64(c.Rows) * int64(s.cols)}
		return
	}
	*args.(*k.ToBF16) = k.ToBF16{Src: a(s.src), Dst: a(s.dst), N: int64(s.total)}
}
