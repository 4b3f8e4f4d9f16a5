package kit

import (
	"dsx/backend"
	"errors"
	"fmt"

	"dsx/graph"
	"dsx/internal/dense"

	"gorgonia.org/tensor"
)

// Contiguous returns t when its data are its elements in row-major order,
// and otherwise (a view that strides through a larger tensor, such as a
// column slice, or a transpose) a materialized copy: what a backend reads
// from t.Data() is then the values t shows, never its backing array.
// Every backend passes a batch through it after CheckBatch. nil stays nil.
func Contiguous(t *tensor.Dense) *tensor.Dense {
	if t == nil || !t.RequiresIterator() {
		return t
	}
	return t.Materialize().(*tensor.Dense)
}

// CheckBatch validates a batch against a layer's configuration and returns its
// row count. Every backend calls it first so that bad input gets the same
// error everywhere; the batch may be a view (a slice of a larger tensor),
// which the backend then reads through Contiguous.
func CheckBatch(cfg backend.Config, x, targets *tensor.Dense) (int, error) {
	if x == nil {
		return 0, errors.New("batch: x is nil")
	}
	s := x.Shape()
	if s.Dims() != 2 || s[1] != cfg.N {
		return 0, fmt.Errorf("batch: x has shape %v, want rows×%d", s, cfg.N)
	}
	rows := s[0]
	if rows < 1 || rows > cfg.B {
		return 0, fmt.Errorf("batch: %d rows, want 1..%d (the layer's B)", rows, cfg.B)
	}
	if x.Dtype() != cfg.DType {
		return 0, fmt.Errorf("batch: x is %v, layer is %v", x.Dtype(), cfg.DType)
	}
	if targets == nil {
		return rows, nil
	}
	ts := targets.Shape()
	if targets.Dtype() != cfg.DType {
		return 0, fmt.Errorf("batch: targets are %v, layer is %v", targets.Dtype(), cfg.DType)
	}
	if cfg.Loss.SoftTargets {
		if ts.Dims() != 2 || ts[0] != rows || ts[1] != cfg.T {
			return 0, fmt.Errorf("batch: probability targets have shape %v, want %d×%d", ts, rows, cfg.T)
		}
	} else if ts.Dims() != 1 || ts[0] != rows {
		return 0, fmt.Errorf("batch: class-index targets have shape %v, want (%d)", ts, rows)
	}
	return rows, nil
}

// CheckStep returns the error Layer.Step gives on a layer of cfg that
// cannot step (the backend named name): one without an optimizer, or
// without the gradients of W and b. Every backend calls it first.
func CheckStep(name string, cfg backend.Config) error {
	if cfg.Optimizer.Kind == backend.NoOptimizer {
		return fmt.Errorf("%s: Step needs an optimizer in the layer's Config", name)
	}
	if w := cfg.Want; !w.DW || !w.DB {
		return fmt.Errorf("%s: Step needs the gradients of W and b (layer computes %v)", name, w)
	}
	return nil
}

// CheckParams validates W and b for a layer.
func CheckParams(cfg backend.Config, W, b *tensor.Dense) error {
	if W == nil || b == nil {
		return errors.New("params: W and b must both be given")
	}
	if s := W.Shape(); s.Dims() != 2 || s[0] != cfg.N || s[1] != cfg.T {
		return fmt.Errorf("params: W has shape %v, want %d×%d", s, cfg.N, cfg.T)
	}
	if s := b.Shape(); s.Dims() != 1 || s[0] != cfg.T {
		return fmt.Errorf("params: b has shape %v, want (%d)", s, cfg.T)
	}
	if W.Dtype() != cfg.DType || b.Dtype() != cfg.DType {
		return fmt.Errorf("params: W is %v and b %v, layer is %v", W.Dtype(), b.Dtype(), cfg.DType)
	}
	for _, p := range []struct {
		name string
		t    *tensor.Dense
	}{{"W", Contiguous(W)}, {"b", Contiguous(b)}} { // the values shown, not a view's backing array
		if at, v, ok := firstNonFinite(p.t); !ok {
			return fmt.Errorf("params: %s%s is %v: %w", p.name, index(p.t, at), v, backend.ErrNonFinite)
		}
	}
	return nil
}

// firstNonFinite returns the index and value of t's first NaN or ±Inf, and
// ok = true when there is none.
func firstNonFinite(t *tensor.Dense) (int, float64, bool) {
	switch d := t.Data().(type) {
	case []float32:
		return scanFinite(d)
	case []float64:
		return scanFinite(d)
	}
	return 0, 0, true
}

func scanFinite[F dense.Float](d []F) (int, float64, bool) {
	for i, v := range d {
		if f := float64(v); f-f != 0 {
			return i, f, false
		}
	}
	return 0, 0, true
}

// index formats flat index i of t as [i] or [row, col].
func index(t *tensor.Dense, i int) string {
	if s := t.Shape(); s.Dims() == 2 {
		return fmt.Sprintf("[%d, %d]", i/s[1], i%s[1])
	}
	return fmt.Sprintf("[%d]", i)
}

// ExplainNonFinite fills in what is to blame in a *graph.NonFiniteError
// from a batch: x (the row's first non-finite feature), the parameters
// (their first non-finite value: the model has diverged), or neither (x·W +
// b overflows the dtype). row0 is added to the error's row (the first row of
// the chunk that failed). It looks at x's row and, only when that is finite,
// at W and b: work done on the error path alone. Any other error is
// returned as it is. The result wraps the *graph.NonFiniteError, so
// errors.As and errors.Is(err, ErrNonFinite) see it.
func ExplainNonFinite(err error, row0 int, x, W, b *tensor.Dense) error {
	var nf *graph.NonFiniteError
	if !errors.As(err, &nf) {
		return err
	}
	e := *nf
	r := e.Row // in x
	if e.Row >= 0 {
		e.Row += row0
	}
	switch {
	case e.Row < 0 || e.Col < 0:
		// Only the loss overflowed; every logit was finite.
	case x != nil && r < x.Shape()[0]:
		N := x.Shape()[1]
		if at, v, ok := firstNonFinite(rowOf(x, r)); !ok {
			e.Blame = fmt.Sprintf("x[%d, %d] is %v, so the row's logits are not finite (the input is at fault, not the model)", e.Row, at%N, v)
			break
		}
		fallthrough
	default:
		for _, p := range []struct {
			name string
			t    *tensor.Dense
		}{{"W", W}, {"b", b}} {
			if p.t == nil {
				continue
			}
			if at, v, ok := firstNonFinite(p.t); !ok {
				e.Blame = fmt.Sprintf("the parameters are not finite (%s%s is %v): the model has diverged; a smaller learning rate may help", p.name, index(p.t, at), v)
				return &e
			}
		}
		if x != nil {
			e.Blame = fmt.Sprintf("logit of class %d is %v although x and the parameters are finite: x·W + b overflows %v", e.Col, e.Value, x.Dtype())
		}
	}
	return &e
}

// rowOf is row i of a matrix as a 1×N view.
func rowOf(t *tensor.Dense, i int) *tensor.Dense {
	N := t.Shape()[1]
	switch d := t.Data().(type) {
	case []float32:
		return tensor.New(tensor.WithShape(1, N), tensor.WithBacking(d[i*N:(i+1)*N]))
	case []float64:
		return tensor.New(tensor.WithShape(1, N), tensor.WithBacking(d[i*N:(i+1)*N]))
	}
	return tensor.New(tensor.WithShape(1, 0), tensor.Of(tensor.Float64))
}
