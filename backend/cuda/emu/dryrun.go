package emu

import (
	"fmt"
	"math"
	"strings"

	"dsx/backend"
	"dsx/backend/cuda/lower"
	k "dsx/cudakernels"
)

// MaxGemmElements bounds every operand of a cuBLAS product: the elements it
// spans ((rows−1)·ld + cols) must be fewer than 2³¹. cuBLAS's 32-bit API
// takes int dimensions and leading dimensions, and it has failed on
// operands past 2³¹ elements; the lowering caps its chunks so that none is.
const MaxGemmElements = math.MaxInt32

// DryRunReport is what a dry run saw.
type DryRunReport struct {
	Launches, Products int
	// Largest is the most elements a product operand spanned, and what it
	// was.
	Largest     int64
	LargestWhat string
	Bytes       int64 // the layer's device memory
	Chunk       int   // rows per chunk
}

// DryRun lowers cfg as the cuda backend does and runs every plan (training,
// forward, the optimizer's steps and the refresh of W's bfloat16 copy) over
// a whole batch of cfg.B rows on a device that allocates nothing and does
// no arithmetic: each kernel launch is checked against the GPU's limits and
// ptxas's figures (checkDims), the grid must cover what its kernel does not
// stride over, every pointer a kernel or product receives must keep what it
// touches inside its buffer, and no product operand may span
// MaxGemmElements elements or more. For shapes too large to run:
// 32768×4096×256000 takes no memory and seconds.
func DryRun(cfg backend.Config) (DryRunReport, error) {
	var rep DryRunReport
	if err := cfg.Spec.Validate(); err != nil {
		return rep, err
	}
	cfg.Optimizer = cfg.Optimizer.WithDefaults()
	p, err := lower.Lower(cfg)
	if err != nil {
		return rep, err
	}
	rep.Bytes, rep.Chunk = p.Bytes(), p.Chunk
	addr := func(b *lower.Buffer) k.Ptr { return k.Ptr(uint64(b.ID+1) << 40) }
	inside := func(what string, ptr k.Ptr, bytes int64) error {
		if ptr == 0 {
			return nil
		}
		id := int(ptr>>40) - 1
		if id < 0 || id >= len(p.Buffers) {
			return fmt.Errorf("%s: address %#x is in no buffer", what, uint64(ptr))
		}
		b := p.Buffers[id]
		off := int64(ptr & (1<<40 - 1))
		if off+bytes > b.Bytes {
			return fmt.Errorf("%s: bytes [%d, %d) of %q, which has %d", what, off, off+bytes, b.What, b.Bytes)
		}
		return nil
	}
	step := func(s *lower.Step, c lower.Ctx) error {
		switch op := s.Op.(type) {
		case *lower.Gemm:
			rep.Products++
			call := op.Call(addr, c)
			if err := checkOperands(call); err != nil {
				return err
			}
			for _, o := range gemmOperands(call) {
				if o.elems > rep.Largest {
					rep.Largest, rep.LargestWhat = o.elems, fmt.Sprintf("%s of %s (%d×%d)", o.name, call.Describe, o.rows, o.cols)
				}
				if err := inside("gemm "+call.Describe+" "+o.name, o.ptr, o.elems*o.esize); err != nil {
					return err
				}
			}
			return nil
		case lower.Kernel:
			rep.Launches++
			args := op.NewArgs()
			op.Fill(args, addr, c)
			name := op.Kernel()
			esize := int64(4)
			if strings.HasSuffix(name, "_f64") {
				esize = 8
			}
			d := op.Dims(c)
			if err := checkDims(name, esize, args, d); err != nil {
				return fmt.Errorf("launch of %s: %w", name, err)
			}
			es := extents(esize, args)
			if g, ok := args.(*k.XVocabGrad); ok {
				es = append(es, extent{"part", g.Part, int64(d.GridY) * g.Vt * 8}) // a slab of column sums per block row
			}
			for _, e := range es {
				if err := inside(name+" "+e.name, e.ptr, e.bytes); err != nil {
					return err
				}
			}
			return nil
		}
		return fmt.Errorf("step %T", s.Op)
	}
	plans := []struct {
		p    *lower.Plan
		rows int
	}{{p.Train, cfg.B}, {p.Forward, cfg.B}, {&lower.Plan{Steps: p.Optim}, 1}, {&lower.Plan{Steps: p.Refresh}, 1}}
	for _, pl := range plans {
		if len(pl.p.Steps) == 0 {
			continue
		}
		chunk := p.Chunk
		if pl.p.Chunk > 0 {
			chunk = pl.p.Chunk
		}
		err := pl.p.Run(pl.rows, chunk, false, func(i int, c lower.Ctx) error {
			if c.Iter == 0 {
				c.Iter = 1
			}
			if err := step(pl.p.Steps[i], c); err != nil {
				return fmt.Errorf("%s (rows %d+%d): %w", pl.p.Steps[i].Op.Describe(), c.R0, c.Rows, err)
			}
			return nil
		}, nil)
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// checkOperands refuses a product with an operand of MaxGemmElements
// elements or more.
func checkOperands(call lower.GemmCall) error {
	for _, o := range gemmOperands(call) {
		if o.elems >= MaxGemmElements {
			return fmt.Errorf("gemm %s: operand %s spans %d elements (%d×%d, ld %d): cuBLAS's 32-bit API takes fewer than 2³¹", call.Describe, o.name, o.elems, o.rows, o.cols, o.ld)
		}
	}
	return nil
}

type operand struct {
	name           string
	ptr            k.Ptr
	rows, cols, ld int
	elems, esize   int64
}

// gemmOperands are A, B and C of a product as stored (row-major: rows×cols
// with ld between rows), and the elements each spans.
func gemmOperands(c lower.GemmCall) []operand {
	ar, ac := c.M, c.K
	if c.TA {
		ar, ac = c.K, c.M
	}
	br, bc := c.K, c.N
	if c.TB {
		br, bc = c.N, c.K
	}
	ldc := c.Ldc
	if ldc == 0 {
		ldc = c.N
	}
	in := int64(8)
	switch {
	case c.Mode == backend.BF16:
		in = 2
	case c.F32:
		in = 4
	}
	out := int64(8)
	switch {
	case c.C16:
		out = 2
	case c.F32 || c.Mode == backend.BF16:
		out = 4
	}
	span := func(rows, cols, ld int) int64 { return int64(rows-1)*int64(ld) + int64(cols) }
	return []operand{
		{"A", c.A, ar, ac, c.Lda, span(ar, ac, c.Lda), in},
		{"B", c.B, br, bc, c.Ldb, span(br, bc, c.Ldb), in},
		{"C", c.C, c.M, c.N, ldc, span(c.M, c.N, ldc), out},
	}
}

type extent struct {
	name  string
	ptr   k.Ptr
	bytes int64
}

// extents are the bytes each pointer of a kernel's arguments reaches, as
// its source documents them (cudakernels/*.cu), for elements of esize
// bytes.
func extents(esize int64, args any) []extent {
	span := func(rows, ld, cols int64) int64 {
		if rows < 1 {
			return 0
		}
		return (rows-1)*ld + cols
	}
	targets := func(flags, rows, ldt, T int64) int64 {
		if flags&k.XentSoft != 0 {
			return span(rows, ldt, T) * esize
		}
		return rows * esize
	}
	switch a := args.(type) {
	case *k.Xent:
		return []extent{{"z", a.Z, span(a.Rows, a.Ld, a.T) * esize}, {"tg", a.Tg, targets(a.Flags, a.Rows, a.Ldt, a.T)},
			{"w", a.W, a.T * 8}, {"rowloss", a.RowLoss, a.Rows * 8}, {"losses", a.Losses, a.Rows * esize}, {"scalep", a.ScaleP, 16},
			{"bias", a.Bias, a.T * esize}, {"g16", a.G16, a.Rows * a.T * 2}}
	case *k.XentScale:
		return []extent{{"tg", a.Tg, targets(a.Flags, a.Rows, a.T, a.T)}, {"w", a.W, a.T * 8}, {"scalep", a.ScaleP, 16}}
	case *k.XentReduce:
		return []extent{{"rowloss", a.RowLoss, a.Rows * 8}, {"out", a.Out, 8}}
	case *k.XVocabStats:
		return []extent{{"z", a.Z, a.Rows * a.Vt * esize}, {"tg", a.Tg, targets(a.Flags, a.Rows, a.T, a.T)}, {"w", a.W, a.T * 8},
			{"bias", a.Bias, a.T * esize}, {"acc", a.Acc, a.Rows * 32}, {"zy", a.Zy, a.Rows * 8}}
	case *k.XVocabFinish:
		return []extent{{"acc", a.Acc, a.Rows * 32}, {"zy", a.Zy, a.Rows * 8}, {"tg", a.Tg, targets(a.Flags, a.Rows, a.T, a.T)},
			{"w", a.W, a.T * 8}, {"rowloss", a.RowLoss, a.Rows * 8}, {"losses", a.Losses, a.Rows * esize}, {"scalep", a.ScaleP, 16},
			{"st", a.St, a.Rows * 24}}
	case *k.XVocabGrad:
		// part: one slab of Vt column sums per block row (gridDim.y), at
		// most as many as rows.
		return []extent{{"z", a.Z, a.Rows * a.Vt * esize}, {"tg", a.Tg, targets(a.Flags, a.Rows, a.T, a.T)}, {"w", a.W, a.T * 8},
			{"bias", a.Bias, a.T * esize}, {"st", a.St, a.Rows * 24}, {"scalep", a.ScaleP, 16}, {"g16", a.G16, a.Rows * a.Vt * 2}}
	case *k.BiasAdd:
		return []extent{{"z", a.Z, span(a.Rows, a.Ld, a.T) * esize}, {"b", a.B, a.T * esize}}
	case *k.ColSumPart:
		return []extent{{"g", a.G, span(a.Rows, a.Ld, a.T) * esize}, {"part", a.Part, a.S * a.T * 8}}
	case *k.ColSumFin:
		return []extent{{"part", a.Part, a.S * a.T * 8}, {"db", a.DB, a.T * esize}}
	case *k.ToBF16:
		return []extent{{"src", a.Src, a.N * 4}, {"dst", a.Dst, a.N * 2}}
	case *k.SGD:
		e := []extent{{"w", a.W, a.N * esize}, {"g", a.G, a.N * esize}, {"w16", a.W16, a.N * 2}}
		if a.Momentum != 0 {
			e = append(e, extent{"v", a.V, a.N * esize})
		}
		return e
	case *k.Adam:
		return []extent{{"w", a.W, a.N * esize}, {"g", a.G, a.N * esize}, {"m", a.M, a.N * esize}, {"v", a.V, a.N * esize}, {"w16", a.W16, a.N * 2}}
	case *k.LogSoftmax:
		return []extent{{"z", a.Z, a.Rows * a.T * esize}, {"lp", a.LP, a.Rows * a.T * esize}, {"bias", a.Bias, a.T * esize}}
	case *k.NLL:
		return []extent{{"lp", a.LP, a.Rows * a.T * esize}, {"tg", a.Tg, a.Rows * esize}, {"w", a.W, a.T * 8},
			{"rowloss", a.RowLoss, a.Rows * 8}, {"losses", a.Losses, a.Rows * esize}, {"scalep", a.ScaleP, 8}}
	case *k.NLLGrad:
		return []extent{{"g", a.G, a.Rows * a.T * esize}, {"tg", a.Tg, a.Rows * esize}, {"w", a.W, a.T * 8}, {"scalep", a.ScaleP, 8}}
	case *k.LogSoftmaxGrad:
		return []extent{{"g", a.G, a.Rows * a.T * esize}, {"lp", a.LP, a.Rows * a.T * esize}}
	}
	return nil
}
