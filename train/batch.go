package train

import (
	"errors"
	"fmt"

	"dsx/data"
	"dsx/model"

	"gorgonia.org/tensor"
)

// ScaleFunc scales the first rows rows of x (rows×N) in place; a value it
// takes out of float32's range is an error (model.Model.ScaleInputs is
// one).
type ScaleFunc func(x []float32, rows int) error

// Batcher gathers rows of a data set into reusable tensors of a layer's
// dtype, scaled there: the set's features stay as read (they may be a
// file's mapped pages, which a write would copy). The tensors it returns
// are valid until its next Batch.
type Batcher struct {
	set   *data.Set
	scale ScaleFunc // nil: none
	dt    tensor.Dtype
	x32   []float32
	y32   []int32
	x64   []float64
	tgt32 []float32
	tgt64 []float64
}

// NewBatcher returns a Batcher for batches of at most B rows of s in
// dtype dt (float32 or float64), scaled by scale (nil: none).
func NewBatcher(s *data.Set, B int, dt tensor.Dtype, scale ScaleFunc) *Batcher {
	b := &Batcher{set: s, scale: scale, dt: dt, x32: make([]float32, B*s.N), y32: make([]int32, B)}
	if dt == tensor.Float64 {
		b.x64, b.tgt64 = make([]float64, B*s.N), make([]float64, B)
	} else {
		b.tgt32 = make([]float32, B)
	}
	return b
}

// Batch returns rows idx (at most B of them) as x (rows×N) and
// class-index targets (rows), and the labels as read (nil slices' worth
// of zeros for an unlabelled set). A feature that scaling takes out of
// float32's range is an error naming the set's row.
func (b *Batcher) Batch(idx []int) (x, y *tensor.Dense, labels []int32, err error) {
	n, N := len(idx), b.set.N
	if n > len(b.y32) {
		return nil, nil, nil, fmt.Errorf("train: batch of %d rows, batcher holds %d", n, len(b.y32))
	}
	if err := b.set.Batch(idx, b.x32[:n*N], b.y32[:n]); err != nil {
		return nil, nil, nil, err
	}
	if b.scale != nil {
		if err := b.scale(b.x32[:n*N], n); err != nil {
			var se *model.ScaleError
			if errors.As(err, &se) {
				se.Row = idx[se.Row]
			}
			return nil, nil, nil, fmt.Errorf("%s: %w", b.set.Source, err)
		}
	}
	labels = b.y32[:n]
	if b.dt == tensor.Float64 {
		for i, v := range b.x32[:n*N] {
			b.x64[i] = float64(v)
		}
		return tensor.New(tensor.WithShape(n, N), tensor.WithBacking(b.x64[:n*N])),
			targetsInto(b.tgt64[:n], labels), labels, nil
	}
	return tensor.New(tensor.WithShape(n, N), tensor.WithBacking(b.x32[:n*N])),
		targetsInto(b.tgt32[:n], labels), labels, nil
}

// Targets returns labels as the class-index targets Layer.Step and
// Layer.Compute take: a vector of len(labels) values of dtype dt
// (tensor.Float32 or tensor.Float64). data.Set.Y is such labels.
func Targets(labels []int32, dt tensor.Dtype) *tensor.Dense {
	if dt == tensor.Float64 {
		return targetsInto(make([]float64, len(labels)), labels)
	}
	return targetsInto(make([]float32, len(labels)), labels)
}

func targetsInto[F float32 | float64](dst []F, labels []int32) *tensor.Dense {
	for i, v := range labels {
		dst[i] = F(v)
	}
	return tensor.New(tensor.WithShape(len(labels)), tensor.WithBacking(dst))
}

// scaleOnce scales a set whose features are its own memory in place, and
// returns nil (nothing left to do per batch); for mapped features, which
// must stay unwritten, it returns scale for the batcher. A nil set needs
// nothing.
func scaleOnce(s *data.Set, scale ScaleFunc) (ScaleFunc, error) {
	if s == nil || s.Stats.Mapped {
		return scale, nil
	}
	if err := scale(s.X, s.Rows); err != nil {
		return nil, fmt.Errorf("%s: %w", s.Source, err)
	}
	return nil, nil
}
