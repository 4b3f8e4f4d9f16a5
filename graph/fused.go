package graph

import (
	"math"
	"unsafe"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// xentCPU is the CPU state of one XentOp: buffers reused across steps and
// the kernel's parameters, so that a warm forward + backward allocates
// nothing and splits its rows over the worker pool without closures.
//
// The forward pass reads each row of logits once: it finds the row maximum
// m, writes e_c = exp(z_c − m) into e (when the op has a gradient), and keeps
// 1/Σ_c e_c and the row's loss. The backward pass turns e into the gradient
// in place, dz_c = scale·(S·e_c/Σe − a_c), without a second exp, and returns
// e as its output. The stash is used only when the backward pass sees the
// same logits buffer and row count as the last forward pass; otherwise it
// recomputes.
type xentCPU[F Float] struct {
	op *XentOp
	T  int

	// inputs and outputs of the running pass
	z, tg []F
	rows  int
	dst   []F // backward output
	g     []F // backward: per-row upstream gradient, or nil
	scale float64
	bwd   bool

	e     []F       // B×T: exp(z − max) after forward, the gradient after backward
	inv   []float64 // per row: 1/Σ exp(z − max)
	loss  []float64 // per row loss before the reduction's scale
	valid bool      // e and inv hold the forward pass of zp
	zp    *F

	losses   *tensor.Dense // Reduction None output
	lossBack []F
	grad     *tensor.Dense // backward output wrapping e
	scalar   G.Value       // Mean/Sum output
}

func newXentCPU[F Float](op *XentOp) *xentCPU[F] { return &xentCPU[F]{op: op, T: op.T} }

// ensure sizes the buffers for rows (e only when needE).
func (k *xentCPU[F]) ensure(rows int, needE bool) {
	T := k.T
	if cap(k.inv) < rows {
		k.inv = make([]float64, rows)
		k.loss = make([]float64, rows)
	}
	k.inv, k.loss = k.inv[:rows], k.loss[:rows]
	if !needE {
		return
	}
	if cap(k.e) < rows*T {
		k.e = make([]F, rows*T)
	}
	if len(k.e) != rows*T {
		k.e = k.e[:rows*T]
		k.grad = nil
	}
}

// gradTensor is the backward output wrapping e (rows×T).
func (k *xentCPU[F]) gradTensor(rows int) *tensor.Dense {
	k.ensure(rows, true)
	if k.grad == nil {
		k.grad = tensorOf(k.e, rows, k.T)
	}
	return k.grad
}

// lossTensor is the Reduction None output (rows), reused across steps.
func (k *xentCPU[F]) lossTensor(rows int) (*tensor.Dense, []F) {
	if len(k.lossBack) != rows {
		k.lossBack = make([]F, rows)
		k.losses = tensorOf(k.lossBack, rows)
	}
	return k.losses, k.lossBack
}

// forward computes the per-row losses and returns their sum (unscaled).
func (k *xentCPU[F]) forward(z, tg []F, rows int) float64 {
	k.ensure(rows, k.op.hasGrad)
	k.z, k.tg, k.rows, k.bwd = z, tg, rows, false
	Parallel(rows, rowGrain(k.T), k)
	k.valid = k.op.hasGrad
	k.zp = &z[0]
	sum := 0.0
	for _, l := range k.loss {
		sum += l
	}
	return sum
}

// backward writes the gradient into dst (which may be k.e).
func (k *xentCPU[F]) backward(dst, z, tg []F, rows int, scale float64, rowScale []F) {
	if k.rows != rows || k.zp != &z[0] || len(k.e) != rows*k.T {
		k.valid = false
	}
	k.ensure(rows, true)
	k.dst, k.z, k.tg, k.rows, k.scale, k.g, k.bwd = dst, z, tg, rows, scale, rowScale, true
	Parallel(rows, rowGrain(k.T), k)
	if sameBuffer(dst, k.e) {
		k.valid = false // e now holds the gradient
	}
	k.g = nil
}

// RunRange runs the forward or backward pass over rows [lo, hi).
func (k *xentCPU[F]) RunRange(lo, hi int) {
	T, o := k.T, &k.op.Opts
	for i := lo; i < hi; i++ {
		z := k.z[i*T : (i+1)*T]
		y, soft := target(k.tg, i, T, o)
		if !k.bwd {
			var e []F
			if k.op.hasGrad {
				e = k.e[i*T : (i+1)*T]
			}
			m, s := expRow(z, e)
			lse := m + math.Log(s)
			if math.IsInf(m, -1) {
				lse = math.NaN()
			}
			k.inv[i] = 1 / s
			k.loss[i] = rowLossAt(z, lse, y, soft, o)
			continue
		}
		dz := k.dst[i*T : (i+1)*T]
		src := dz
		if k.valid {
			src = k.e[i*T : (i+1)*T]
		} else {
			_, s := expRow(z, dz)
			k.inv[i] = 1 / s
		}
		sc := k.scale
		if k.g != nil {
			sc *= float64(k.g[i])
		}
		gradRow(dz, src, k.inv[i], y, soft, o, sc)
	}
}

// expRow writes e_c = exp(z_c − m) (if e is not nil) and returns the row
// maximum m and Σ_c e_c, summed in float64.
func expRow[F Float](z, e []F) (m, s float64) {
	switch zz := any(z).(type) {
	case []float32:
		ee, _ := any(e).([]float32)
		mm, ss := expRow32(zz, ee)
		return float64(mm), ss
	case []float64:
		ee, _ := any(e).([]float64)
		return expRow64(zz, ee)
	}
	panic("unreachable")
}

func expRow32(z, e []float32) (float32, float64) {
	m := float32(math.Inf(-1))
	for _, v := range z {
		if v > m {
			m = v
		}
	}
	if e != nil {
		e = e[:len(z)]
	}
	return m, expSub32(z, m, e)
}

func expRow64(z, e []float64) (float64, float64) {
	m := math.Inf(-1)
	for _, v := range z {
		if v > m {
			m = v
		}
	}
	s := 0.0
	if e == nil {
		for _, v := range z {
			s += math.Exp(v - m)
		}
		return m, s
	}
	e = e[:len(z)]
	for c, v := range z {
		x := math.Exp(v - m)
		e[c] = x
		s += x
	}
	return m, s
}

// gradRow writes dz_c = scale·(S·p_c − a_c) with p_c = e_c·inv (RowGrad's
// formula); dz and e may be the same slice.
func gradRow[F Float](dz, e []F, inv float64, hardLabel int, soft []F, o *LossOptions, scale float64) {
	T := len(dz)
	e = e[:T]
	eps := o.LabelSmoothing
	if soft == nil {
		if o.Ignored(hardLabel) || scale == 0 {
			clear(dz)
			return
		}
		wy := o.Weight(hardLabel)
		S := (1-eps)*wy + eps/float64(T)*o.weightSum(T)
		f := F(scale * S * inv)
		if eps == 0 {
			for c := range dz {
				dz[c] = f * e[c]
			}
		} else {
			k := scale * eps / float64(T)
			for c := range dz {
				dz[c] = f*e[c] - F(k*o.Weight(c))
			}
		}
		dz[hardLabel] -= F(scale * (1 - eps) * wy)
		return
	}
	S := 0.0
	for c := range dz {
		S += o.Weight(c) * ((1-eps)*float64(soft[c]) + eps/float64(T))
	}
	f := scale * S * inv
	for c := range dz {
		a := o.Weight(c) * ((1-eps)*float64(soft[c]) + eps/float64(T))
		dz[c] = F(f*float64(e[c]) - scale*a)
	}
}

// Exp32 is exp(x) in float32 arithmetic (Cephes' expf: a degree-6
// polynomial after reduction by ln 2), within 2 ulp of the true value for
// normal results; it returns 0 below −87.3 (where expf would be subnormal),
// +Inf above 88.7 and NaN for NaN.
func Exp32(x float32) float32 {
	const (
		log2e = 1.44269504088896341
		c1    = 0.693359375
		c2    = -2.12194440e-4
	)
	switch {
	case x != x:
		return x
	case x > 88.72283905206835:
		return float32(math.Inf(1))
	case x < -87.33654475055310898:
		return 0
	}
	// n = round(x·log2 e)
	fn := x*log2e + 0.5
	n := int32(fn)
	if fn < 0 && float32(n) != fn {
		n-- // floor for negatives
	}
	f := float32(n)
	r := x - f*c1 - f*c2
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	y := p*r*r + r + 1
	// 2^n: n ∈ [−126, 128]; split 2^128 so the exponent stays normal.
	if n > 127 {
		return y * 2 * math.Float32frombits(uint32(n-1+127)<<23)
	}
	return y * math.Float32frombits(uint32(n+127)<<23)
}

// tensorOf wraps a slice as a tensor without copying.
func tensorOf[F Float](d []F, shape ...int) *tensor.Dense {
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(d))
}

// sameBuffer reports whether two slices start at the same element.
func sameBuffer[F Float](a, b []F) bool {
	return len(a) > 0 && len(b) > 0 && unsafe.SliceData(a) == unsafe.SliceData(b)
}

// Floats returns the elements of a float32 or float64 tensor as []F without
// the allocation of tensor.Tensor.Data (which boxes the slice).
func Floats[F Float](t tensor.Tensor) []F {
	if d, ok := t.(*tensor.Dense); ok {
		var zero F
		if unsafe.Sizeof(zero) == 4 {
			s := d.Float32s()
			return unsafe.Slice((*F)(unsafe.Pointer(unsafe.SliceData(s))), len(s))
		}
		s := d.Float64s()
		return unsafe.Slice((*F)(unsafe.Pointer(unsafe.SliceData(s))), len(s))
	}
	return t.Data().([]F)
}
