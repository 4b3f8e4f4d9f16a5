package lower

import (
	"fmt"

	"dsx/cudakernels"
)

// Category says what a device buffer holds (backend.MemStats).
type Category int

const (
	Extra Category = iota // activations, logits, per-row values, operand copies, scratch
	State                 // parameters, their gradients, optimizer state
	Input                 // the batch: x, the targets and dx
)

func (c Category) String() string {
	switch c {
	case Extra:
		return "extra"
	case State:
		return "state"
	case Input:
		return "input"
	}
	return fmt.Sprintf("Category(%d)", int(c))
}

// Buffer is one device allocation of a lowered layer. The runtime allocates
// every buffer once (Open) and binds its address; a plan only refers to
// buffers.
type Buffer struct {
	ID    int    // index in Program.Buffers
	What  string // for errors and MemStats
	Bytes int64
	// RowBytes is the bytes per batch row of a buffer indexed by the batch's
	// rows (x, targets, dx, per-row losses): a chunk starting at row r0 uses
	// the address + r0·RowBytes. 0 for buffers without a batch axis and for
	// chunk-local ones (logits), which hold one chunk from their start.
	RowBytes int64
	Cat      Category
	// BF16 marks a buffer of bfloat16 elements (2 bytes, as 16-bit
	// integers) rather than the layer's dtype: operand copies, and under
	// bfloat16 storage x, dx, the bfloat16 gradient of the logits and W's
	// copy. The runtime converts x and dx on the host side of their copies.
	BF16 bool
}

// Addr is the device address of a buffer, bound by the runtime (or a fake
// one in tests).
type Addr func(*Buffer) cudakernels.Ptr

// at is the address of row r0 of b.
func at(a Addr, b *Buffer, r0 int) cudakernels.Ptr {
	if b == nil {
		return 0
	}
	return a(b) + cudakernels.Ptr(int64(r0)*b.RowBytes)
}

// Phase says when a step runs in a batch split into chunks of rows.
type Phase int

const (
	Pre      Phase = iota // once, before the chunks, over the whole batch (the mean's denominator, operand copies of W)
	PerChunk              // once per chunk (products, bias, softmax-cross-entropy; dW and db accumulate)
	Post                  // once, after the chunks, over the whole batch (the loss reduction)
)

func (p Phase) String() string {
	switch p {
	case Pre:
		return "pre"
	case PerChunk:
		return "per-chunk"
	case Post:
		return "post"
	}
	return fmt.Sprintf("Phase(%d)", int(p))
}

// Ctx is where a step runs: rows [R0, R0+Rows) of the batch (the whole
// batch for Pre and Post), First for the batch's first chunk, and Iter the
// optimizer's step count (from 1; optimizer steps only).
type Ctx struct {
	R0, Rows int
	First    bool
	Iter     int
	// C0 and Cols are the vocabulary tile's columns [C0, C0+Cols) for a
	// step of a tile loop (Step.Tiles), FirstTile for its first tile.
	C0, Cols  int
	FirstTile bool
}

// Dims is a kernel launch's geometry.
type Dims struct{ GridX, GridY, BlockX, BlockY, Shmem int }

// Op is one step's device work: a *Gemm or a Kernel.
type Op interface {
	// Describe is one line for plan listings and errors.
	Describe() string
}

// Kernel is one kernel launch. NewArgs returns a pointer to a new zero
// argument struct of the kernel (a cudakernels type); Fill writes every
// field of it for c, without allocating; Dims is the launch geometry.
type Kernel interface {
	Op
	Kernel() string
	NewArgs() any
	Fill(args any, a Addr, c Ctx)
	Dims(c Ctx) Dims
}

// Step is one unit of a plan. Tiles, when not 0, makes a PerChunk step
// part of a vocabulary-tile loop: the consecutive steps with the same Tiles
// run, in order, once per tile of Plan.VocabTile columns before the chunk's
// next step.
type Step struct {
	Phase Phase
	Op    Op
	Tiles int
}

// Plan is the ordered device work of one graph (training or forward) and
// the buffers that hold its outputs (nil when the graph has no such
// output).
type Plan struct {
	Steps                            []*Step
	Loss, Losses, DW, DB, DX, Logits *Buffer
	// VocabTile is the columns of a vocabulary tile and T the classes, for
	// plans with tile loops (0 otherwise).
	VocabTile, T int
	// Chunk, when not 0, is this plan's rows per chunk (the forward plan of
	// a vocabulary-tiled layer); 0 means the layer's.
	Chunk int
	// RowLoss is the per-row losses in float64, each times its reduction
	// scale (nil in a forward plan): where the host looks for the row to
	// blame when the loss is not finite.
	RowLoss *Buffer
	// Scale is the reduction's two scales (2 float64: the cross-entropy's
	// and the z-loss's), which the plan's xent_scale step (IsScale) writes
	// from the batch's own rows. A data-parallel layer skips that step and
	// writes them from the global batch's denominators instead.
	Scale *Buffer
}

// IsScale reports whether op is the step that computes the reduction's
// scales from the batch (Plan.Scale).
func IsScale(op Op) bool {
	_, ok := op.(*xentScale)
	return ok
}

// Run runs the plan over rows rows in chunks of chunk rows: the Pre steps
// once over the whole batch, the PerChunk steps for each chunk, then the Post
// steps. do runs step i of p.Steps; gemmOnly runs only the products (the
// floor); after, when not nil, runs after each chunk.
func (p *Plan) Run(rows, chunk int, gemmOnly bool, do func(i int, c Ctx) error, after func(r0, n int) error) error {
	if rows < 1 || chunk < 1 {
		return fmt.Errorf("cuda: running a plan over %d rows in chunks of %d", rows, chunk)
	}
	runs := func(s *Step, ph Phase) bool {
		_, gemm := s.Op.(*Gemm)
		return s.Phase == ph && (gemm || !gemmOnly)
	}
	phase := func(ph Phase, c Ctx) error {
		for i := 0; i < len(p.Steps); i++ {
			s := p.Steps[i]
			if s.Phase != ph {
				continue
			}
			if s.Tiles == 0 || ph != PerChunk {
				if runs(s, ph) {
					if err := do(i, c); err != nil {
						return err
					}
				}
				continue
			}
			// A tile loop: steps i..j-1 (those of this phase with the same
			// Tiles), once per tile.
			j := i
			for j < len(p.Steps) && (p.Steps[j].Phase != ph || p.Steps[j].Tiles == s.Tiles) {
				j++
			}
			if p.VocabTile < 1 || p.T < 1 {
				return fmt.Errorf("cuda: a tile loop in a plan without tiles (VocabTile %d, T %d)", p.VocabTile, p.T)
			}
			for c0 := 0; c0 < p.T; c0 += p.VocabTile {
				tc := c
				tc.C0, tc.Cols, tc.FirstTile = c0, min(p.VocabTile, p.T-c0), c0 == 0
				for k := i; k < j; k++ {
					if runs(p.Steps[k], ph) {
						if err := do(k, tc); err != nil {
							return err
						}
					}
				}
			}
			i = j - 1
		}
		return nil
	}
	whole := Ctx{R0: 0, Rows: rows, First: true}
	if err := phase(Pre, whole); err != nil {
		return err
	}
	for r0 := 0; r0 < rows; r0 += chunk {
		n := min(chunk, rows-r0)
		if err := phase(PerChunk, Ctx{R0: r0, Rows: n, First: r0 == 0}); err != nil {
			return err
		}
		if after != nil {
			if err := after(r0, n); err != nil {
				return err
			}
		}
	}
	return phase(Post, whole)
}

// Describe lists the plan, a step a line (tests and debugging).
func (p *Plan) Describe() []string {
	out := make([]string, len(p.Steps))
	for i, s := range p.Steps {
		ph := s.Phase.String()
		if s.Tiles != 0 {
			ph += fmt.Sprintf(", tile loop %d", s.Tiles)
		}
		out[i] = ph + ": " + s.Op.Describe()
	}
	return out
}
