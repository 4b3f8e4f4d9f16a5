package cpu

import (
	"fmt"

	"dsx/backend"
	"dsx/backend/kit"
	"dsx/graph"
	"dsx/internal/dense"

	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The training pass (Step and Compute) runs the layer graph's arithmetic
// without the VM, as the CUDA backend lowers it: the products on the BLAS,
// and the graph's own ops (graph.XentOp with its XentGradOp,
// graph.ColSumOp) on each chunk of rows, so that the loss and its gradient
// are the graph's. Per chunk of r rows (x_c = rows r0…r0+r of x):
//
//	z   = b + x_c·W                r×T, one buffer reused by every chunk: each
//	                               row set to b, then the product with β = 1
//	e   = exp(z − max), loss       the XentOp's forward, e its r×T stash
//	dz  = ∂loss/∂z                 into e, in place (XentGradOp)
//	db += Σ_rows dz                (ColSumOp)
//	dW += x_cᵀ·dz                  β = 0 for the first chunk, 1 after
//	dx_c = dz·Wᵀ                   straight into rows r0… of dx
//
// so the passes over a chunk's logits follow one another (in cache where
// the chunk fits it), the bias costs no pass of its own (the rows of b
// replace the zeroing a β = 0 product does first; the sum is b + x·W where
// the graph's BiasAddOp adds b to x·W, a difference of rounding), dW
// accumulates in the product itself (no pass over N×T per chunk), and the
// step holds two r×T buffers (z and e), B×T only when the batch runs whole
// (chunk.go picks r). The loss and gradient of every chunk are scaled by
// the whole batch's Mean denominators (XentOp.UseBatchDenominators), so the
// result is the whole batch's however it is chunked. It stores no
// probabilities: the backward pass turns the forward pass's e into dz.

// trainer holds one dtype's buffers and ops for the chunk loop; made on a
// layer's first batch, reused by every later one.
type trainer[F dense.Float] struct {
	cfg backend.Config
	xop *graph.XentOp     // the loss (its stash e is the chunk's second r×T buffer)
	gop *graph.XentGradOp // its gradient, written over the stash
	one G.Value           // the loss's upstream gradient

	z          []F                   // chunk×T logits
	zt         map[int]*tensor.Dense // z as r×T tensors, by r
	tg         []F                   // a chunk's class-index targets (a copy: no tensor header per chunk)
	tgt        map[int]*tensor.Dense // tg as r-vectors, by r
	dbc        []F                   // one chunk's column sums of dz (T)
	dbt        *tensor.Dense         // dbc as a tensor
	dw, db, dx *tensor.Dense         // whole-batch gradients (nil unless wanted)
	losses     *tensor.Dense         // per-row losses (Reduction None)
	lastX      []F                   // the last batch's x (FloorMs times the products on it)
}

func newTrainer[F dense.Float](cfg backend.Config, chunk int) (*trainer[F], error) {
	// The graph is built for one row: its ops are what the loop runs (the
	// XentOp knows from the graph whether a gradient reads its stash), and
	// nothing of the layer's size is allocated.
	spec := cfg.Spec
	spec.B = 1
	h, err := graph.Build(spec)
	if err != nil {
		return nil, err
	}
	xop, ok := graph.AsXent(h.Xent)
	if !ok {
		return nil, fmt.Errorf("cpu: the layer graph has no softmax-cross-entropy op")
	}
	t := &trainer[F]{cfg: cfg, xop: xop, gop: &graph.XentGradOp{Fwd: xop}, zt: map[int]*tensor.Dense{}, tgt: map[int]*tensor.Dense{}}
	var zero F
	if _, ok := any(zero).(float32); ok {
		t.one = G.NewF32(1)
	} else {
		t.one = G.NewF64(1)
	}
	t.z = make([]F, chunk*cfg.T)
	if !cfg.Loss.SoftTargets {
		t.tg = make([]F, chunk)
	}
	mk := func(shape ...int) *tensor.Dense { return tensor.New(tensor.WithShape(shape...), tensor.Of(cfg.DType)) }
	if cfg.Want.DW {
		t.dw = mk(cfg.N, cfg.T)
	}
	if cfg.Want.DB {
		t.db = mk(cfg.T)
		t.dbc = make([]F, cfg.T)
		t.dbt = tensor.New(tensor.WithShape(cfg.T), tensor.WithBacking(t.dbc))
	}
	if cfg.Want.DX {
		t.dx = mk(cfg.B, cfg.N)
	}
	if cfg.Loss.Reduction == graph.None {
		t.losses = mk(cfg.B)
	}
	return t, nil
}

// grads is the whole-batch dW and db buffers (nil when not wanted, or on a
// nil trainer).
func (t *trainer[F]) grads() (dw, db *tensor.Dense) {
	if t == nil {
		return nil, nil
	}
	return t.dw, t.db
}

// logits is z's first r rows as an r×T tensor.
func (t *trainer[F]) logits(r int) *tensor.Dense {
	return header(t.zt, r, t.z[:r*t.cfg.T], r, t.cfg.T)
}

// targets is rows [r0, r0+r) of the batch's targets: for class indices a
// copy into tg (r values), so that no chunk makes a tensor header; for
// probabilities a view.
func (t *trainer[F]) targets(targets *tensor.Dense, r0, r int) *tensor.Dense {
	if t.tg == nil {
		return rowsOf(targets, r0, r0+r)
	}
	copy(t.tg, dense.View[F](targets)[r0:r0+r])
	return header(t.tgt, r, t.tg[:r], r)
}

// header is the tensor of shape over buf, kept in m by r (the chunk's
// rows: at most a few sizes, the chunk's and the batches' last).
func header[F dense.Float](m map[int]*tensor.Dense, r int, buf []F, shape ...int) *tensor.Dense {
	h, ok := m[r]
	if !ok {
		h = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(buf))
		if len(m) > 4 {
			clear(m)
		}
		m[r] = h
	}
	return h
}

// run computes a batch of rows in chunks of chunk rows with the Mean
// denominators den (the cross-entropy's and the z-loss's).
func (t *trainer[F]) run(x, targets, W, b *tensor.Dense, rows, chunk int, den [2]float64) (result, error) {
	N, T, want := t.cfg.N, t.cfg.T, t.cfg.Want
	xs, ws, bs := dense.View[F](x), dense.View[F](W), dense.View[F](b)
	t.lastX = xs
	op := t.xop
	defer op.UseBatchDenominators(den[0], den[1])()
	var r result
	for r0 := 0; r0 < rows; r0 += chunk {
		n := min(chunk, rows-r0)
		xc := xs[r0*N : (r0+n)*N]
		z := t.logits(n)
		zs := t.z[:n*T]
		for i := 0; i < n; i++ {
			copy(zs[i*T:(i+1)*T], bs)
		}
		gemm(blas.NoTrans, blas.NoTrans, n, T, N, xc, N, ws, T, 1, zs, T)
		tg := t.targets(targets, r0, n)
		lv, err := op.Do(z, tg)
		if err != nil {
			return r, kit.ExplainNonFinite(err, r0, rowsOf(x, r0, r0+n), W, b)
		}
		if t.losses != nil {
			// Reduction None: the loss is the sum of the rows' losses.
			ls := dense.View[F](lv.(tensor.Tensor))
			copy(dense.View[F](t.losses)[r0:], ls)
			for _, v := range ls {
				r.loss += float64(v)
			}
		} else {
			r.loss += scalar(lv)
		}
		if !want.DW && !want.DB && !want.DX {
			continue
		}
		dzt, err := t.gop.Do(z, tg, t.one)
		if err != nil {
			return r, err
		}
		dz := dense.View[F](dzt.(tensor.Tensor))
		if want.DB {
			if _, err := (graph.ColSumOp{}).UsePreallocDo(t.dbt, dzt); err != nil {
				return r, err
			}
			addSlice(dense.View[F](t.db), t.dbc, r0 == 0)
		}
		if want.DW {
			beta := F(1)
			if r0 == 0 {
				beta = 0
			}
			gemm(blas.Trans, blas.NoTrans, N, T, n, xc, N, dz, T, beta, dense.View[F](t.dw), T)
		}
		if want.DX {
			gemm(blas.NoTrans, blas.Trans, n, N, T, dz, T, ws, T, 0, dense.View[F](t.dx)[r0*N:(r0+n)*N], N)
		}
	}
	if t.dw != nil {
		r.dw = t.dw
	}
	if t.db != nil {
		r.db = t.db
	}
	if t.dx != nil {
		r.dx = rowsOf(t.dx, 0, rows)
	}
	if t.losses != nil {
		r.losses = rowsOf(t.losses, 0, rows)
	}
	return r, nil
}

// gemm is C = op(A)·op(B) + β·C (row-major) through the layer's BLAS
// (blasImpl: the narrow kernels, the system's BLAS or gonum's).
func gemm[F dense.Float](tA, tB blas.Transpose, m, n, k int, a []F, lda int, b []F, ldb int, beta F, c []F, ldc int) {
	switch aa := any(a).(type) {
	case []float32:
		blasImpl{}.Sgemm(tA, tB, m, n, k, 1, aa, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	case []float64:
		blasImpl{}.Dgemm(tA, tB, m, n, k, 1, aa, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	}
}
