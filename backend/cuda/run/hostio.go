package run

import (
	"fmt"
	"math"
	"slices"

	"dsx/backend/cuda/lower"
	"dsx/backend/kit"
	"dsx/cudakernels"
	"dsx/graph"
	"dsx/internal/dense"
	"dsx/internal/rowmath"

	"gorgonia.org/tensor"
)

// Copies between the host and the device, and the error path of a loss
// that is not finite.

// toDevice copies the first n elements of t to dst. A bfloat16 buffer (x
// under bfloat16 storage) gets t's float32 values rounded to bfloat16 on the
// host, as they are copied: half the bytes cross the bus, and the device
// never holds x in float32.
func (l *Layer) toDevice(dst *lower.Buffer, t *tensor.Dense, n int64) error {
	var b []byte
	if dst.BF16 {
		f, ok := t.Data().([]float32)
		if !ok {
			return fmt.Errorf("%s: %s: bfloat16 storage takes float32 data, not %T", l.name, dst.What, t.Data())
		}
		l.half = toBF16(l.half, f[:n])
		b = bytesOf(l.half)
	} else if b = denseBytes(t); b != nil {
		b = b[:n*int64(len(b)/max(1, t.Len()))]
	}
	if b == nil {
		return fmt.Errorf("%s: %s: unsupported data %T", l.name, dst.What, t.Data())
	}
	if err := l.mem.ToDevice(l.addr(dst), b); err != nil {
		return fmt.Errorf("%s: copying %s to the device: %w", l.name, dst.What, err)
	}
	return nil
}

// toHost copies src into a new tensor of shape (widening a bfloat16 buffer,
// dx under bfloat16 storage, to float32).
func (l *Layer) toHost(src *lower.Buffer, shape ...int) (*tensor.Dense, error) {
	t := tensor.New(tensor.WithShape(shape...), tensor.Of(l.cfg.DType))
	if src.BF16 {
		f := t.Data().([]float32)
		l.half = slices.Grow(l.half[:0], len(f))[:len(f)]
		if err := l.mem.ToHost(bytesOf(l.half), l.addr(src)); err != nil {
			return nil, fmt.Errorf("%s: copying %s to the host: %w", l.name, src.What, err)
		}
		for i, h := range l.half {
			f[i] = math.Float32frombits(uint32(h) << 16)
		}
		return t, nil
	}
	if err := l.mem.ToHost(denseBytes(t), l.addr(src)); err != nil {
		return nil, fmt.Errorf("%s: copying %s to the host: %w", l.name, src.What, err)
	}
	return t, nil
}

// toBF16 rounds f to bfloat16 (nearest, ties to even; NaN stays NaN) into
// dst, grown as needed: the host side of loading x under bfloat16 storage.
func toBF16(dst []uint16, f []float32) []uint16 {
	dst = slices.Grow(dst[:0], len(f))[:len(f)]
	for i, v := range f {
		u := math.Float32bits(v)
		if u&0x7fffffff > 0x7f800000 {
			dst[i] = uint16(u>>16) | 0x40
			continue
		}
		u += 0x7fff + (u>>16)&1
		dst[i] = uint16(u >> 16)
	}
	return dst
}

// checkedLoss reads the loss of the training plan just run over rows rows.
// When it is not finite the error is a *graph.NonFiniteError that names the
// row and what is to blame, as the CPU backend's: the host reads the float64
// per-row losses, recomputes the first bad row's logits x·W + b in the
// layer's dtype from x's row and the parameters (copied back for this), and
// kit.ExplainNonFinite looks at them. All of it is on the error path.
func (l *Layer) checkedLoss(rows int) (float64, error) {
	loss, err := l.readLoss()
	if err != nil || loss-loss == 0 {
		return loss, err
	}
	rl := make([]float64, rows)
	if err := l.mem.ToHost(bytesOf(rl), l.addr(l.low.Train.RowLoss)); err != nil {
		return 0, fmt.Errorf("%s: reading the per-row losses: %w", l.name, err)
	}
	W, err := l.toHost(l.low.W, l.cfg.N, l.cfg.T)
	if err != nil {
		return 0, err
	}
	b, err := l.toHost(l.low.Bias, l.cfg.T)
	if err != nil {
		return 0, err
	}
	r := 0
	for r < rows && rl[r]-rl[r] == 0 {
		r++
	}
	if r == rows { // every row finite: only their sum overflowed
		return 0, &graph.NonFiniteError{Row: -1, Col: -1}
	}
	x := tensor.New(tensor.WithShape(1, l.cfg.N), tensor.Of(l.cfg.DType))
	xb, h := denseBytes(x), []uint16(nil)
	if l.low.X.BF16 { // x's row in bfloat16, widened below
		h = make([]uint16, l.cfg.N)
		xb = bytesOf(h)
	}
	if err := l.mem.ToHost(xb, l.addr(l.low.X)+cudakernels.Ptr(int64(r)*int64(len(xb)))); err != nil {
		return 0, fmt.Errorf("%s: reading x's row %d: %w", l.name, r, err)
	}
	for i, v := range h {
		x.Data().([]float32)[i] = math.Float32frombits(uint32(v) << 16)
	}
	var nf *graph.NonFiniteError
	switch xd := x.Data().(type) {
	case []float32:
		nf = rowNonFinite(xd, W.Data().([]float32), b.Data().([]float32), rl[r])
	case []float64:
		nf = rowNonFinite(xd, W.Data().([]float64), b.Data().([]float64), rl[r])
	}
	return 0, kit.ExplainNonFinite(nf, r, x, W, b)
}

// rowNonFinite recomputes one row's logits z = x·W + b (x N, W N×T, b T)
// in F and names its first non-finite logit (rowmath.FirstNonFinite; row 0).
func rowNonFinite[F dense.Float](x, W, b []F, loss float64) *graph.NonFiniteError {
	T := len(b)
	z := make([]F, T)
	for k, xv := range x {
		for c, w := range W[k*T : (k+1)*T] {
			z[c] += xv * w
		}
	}
	for c := range z {
		z[c] += b[c]
	}
	r, c, v := rowmath.FirstNonFinite(z, []float64{loss}, T)
	return &graph.NonFiniteError{Row: r, Col: c, Value: v}
}
