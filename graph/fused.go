package graph

import (
	"math"
	"unsafe"

	"dsx/internal/dense"
	"dsx/internal/pool"
	"dsx/internal/rowmath"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// xentCPU is the CPU state of one XentOp: buffers reused across steps and
// the kernel's parameters, so that a warm forward + backward allocates
// nothing and splits its rows over the worker pool without closures.
//
// The forward pass reads each row of logits once: it finds the row maximum
// m, writes e_c = exp(ẑ_c − m) into e (when the op has a gradient; ẑ the
// soft-capped logits, or z), and keeps 1/Σ_c e_c, the row's scaled loss and,
// with z-loss, its lse. The backward pass turns e into the gradient in
// place (rowmath.RowGradScaled's formula, with p_c = e_c/Σe) without a second exp,
// and returns e as its output. The stash is used only when the backward
// pass sees the same logits buffer and row count as the last forward pass;
// otherwise it recomputes.
type xentCPU[F dense.Float] struct {
	op *XentOp
	T  int

	// inputs and outputs of the running pass
	z, tg  []F
	rows   int
	dst    []F     // backward output
	g      []F     // backward: per-row upstream gradient, or nil
	sc, sz float64 // the cross-entropy's and the z-loss's scales
	bwd    bool

	e     []F       // B×T: exp(ẑ − max) after forward, the gradient after backward
	inv   []float64 // per row: 1/Σ exp(ẑ − max)
	lse   []float64 // per row: log Σ exp(ẑ), with z-loss only
	loss  []float64 // per row: sc·ce + sz·zl
	valid bool      // e, inv and lse hold the forward pass of zp
	zp    *F

	losses   *tensor.Dense // Reduction None output
	lossBack []F
	grad     *tensor.Dense // backward output wrapping e
	scalar   G.Value       // Mean/Sum output
}

func newXentCPU[F dense.Float](op *XentOp) *xentCPU[F] { return &xentCPU[F]{op: op, T: op.T} }

// ensure sizes the buffers for rows (e only when needE).
func (k *xentCPU[F]) ensure(rows int, needE bool) {
	T := k.T
	if cap(k.inv) < rows {
		k.inv = make([]float64, rows)
		k.loss = make([]float64, rows)
	}
	k.inv, k.loss = k.inv[:rows], k.loss[:rows]
	if k.op.Opts.ZLoss > 0 {
		if cap(k.lse) < rows {
			k.lse = make([]float64, rows)
		}
		k.lse = k.lse[:rows]
	}
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

// forward computes the per-row losses and returns their sum, or an error
// naming the first row whose logits are not finite. The check costs nothing
// per element: such a row's Σ exp(z − m) is NaN (see rowExp), which marks
// its loss NaN, and the sum of the losses, taken here anyway, is then NaN
// too.
//
// sc and sz scale each row's cross-entropy and z-loss (rowmath.Scale; 1 for Sum and
// None), so that the sum is the reduced loss.
func (k *xentCPU[F]) forward(z, tg []F, rows int, sc, sz float64) (float64, error) {
	k.ensure(rows, k.op.hasGrad)
	k.z, k.tg, k.rows, k.sc, k.sz, k.bwd = z, tg, rows, sc, sz, false
	pool.Parallel(rows, rowGrain(k.T), k)
	k.valid = k.op.hasGrad
	k.zp = &z[0]
	sum := 0.0
	for _, l := range k.loss {
		sum += l
	}
	if sum-sum != 0 {
		k.valid = false
		return sum, nonFinite(z, k.loss, k.T)
	}
	return sum, nil
}

// backward writes the gradient of Σ_i (sc·ce_i + sz·zl_i)·g_i into dst
// (which may be k.e), g_i = rowScale[i] or 1.
func (k *xentCPU[F]) backward(dst, z, tg []F, rows int, sc, sz float64, rowScale []F) {
	if k.rows != rows || k.zp != &z[0] || len(k.e) != rows*k.T {
		k.valid = false
	}
	k.ensure(rows, true)
	k.dst, k.z, k.tg, k.rows, k.sc, k.sz, k.g, k.bwd = dst, z, tg, rows, sc, sz, rowScale, true
	pool.Parallel(rows, rowGrain(k.T), k)
	if sameBuffer(dst, k.e) {
		k.valid = false // e now holds the gradient
	}
	k.g = nil
}

// RunRange runs the forward or backward pass over rows [lo, hi).
func (k *xentCPU[F]) RunRange(lo, hi int) {
	T, o := k.T, k.op.Opts.row()
	for i := lo; i < hi; i++ {
		z := k.z[i*T : (i+1)*T]
		y, soft := rowmath.Target(k.tg, i, T, o)
		if !k.bwd {
			var e []F
			if k.op.hasGrad {
				e = k.e[i*T : (i+1)*T]
			}
			m, s, ok := rowExp(z, e, o.Softcap)
			k.inv[i] = 1 / s
			// A non-finite logit marks the row, ignored or not: its x would
			// still reach dW through the product.
			if !ok {
				k.loss[i] = math.NaN()
				continue
			}
			L := math.Log(s)
			ce, zl := rowmath.RowTermsAt(z, m, L, y, soft, o)
			k.loss[i] = k.sc*ce + k.sz*zl
			if k.lse != nil {
				k.lse[i] = m + L
			}
			continue
		}
		dz := k.dst[i*T : (i+1)*T]
		src := dz
		if k.valid {
			src = k.e[i*T : (i+1)*T]
		} else {
			m, s, _ := rowExp(z, dz, o.Softcap)
			k.inv[i] = 1 / s
			if k.lse != nil {
				k.lse[i] = m + math.Log(s)
			}
		}
		sc, sz := k.sc, k.sz
		if k.g != nil {
			sc *= float64(k.g[i])
			sz *= float64(k.g[i])
		}
		lse := 0.0
		if k.lse != nil {
			lse = k.lse[i]
		}
		gradRow(dz, src, z, k.inv[i], lse, y, soft, o, sc, sz)
	}
}

// rowExp writes e_c = exp(ẑ_c − m) (if e is not nil) for the capped logits
// ẑ and returns their maximum m and Σ_c e_c, and whether the row's logits
// are all finite, or, without soft-capping, finite but for −Inf at classes
// the loss does not look at.
//
// Without soft-capping that check costs nothing per element: a NaN logit
// makes the sum NaN, a +Inf one too (Inf − Inf), and so does a row of −Inf
// alone (m = −Inf, and −Inf − m is NaN). A −Inf logit among finite ones
// gets p = 0, as the softmax's limit gives (PyTorch's way of masking a
// class); the loss is +Inf, and so an error, if the row's target weighs
// that class, and otherwise x·W + b overflowed with finite x and
// parameters, and the row's gradient stays finite. (A non-finite x makes
// every logit of its row ±Inf or NaN, so it is always caught.)
//
// With soft-capping, tanh maps ±Inf to ±1 and the gradient's factor
// 1 − tanh² to 0, so the raw extremes are checked; as tanh is increasing,
// m = c·tanh(max_c z_c/c) and that first loop needs no tanh.
func rowExp[F dense.Float](z, e []F, c float64) (m, s float64, ok bool) {
	if c == 0 {
		m, s = expRow(z, e)
		return m, s, s < math.Inf(1)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range z {
		f := float64(v)
		if f > hi {
			hi = f
		}
		if f < lo {
			lo = f
		}
	}
	m = rowmath.Capped(hi, c)
	for j, v := range z {
		x := math.Exp(rowmath.Capped(float64(v), c) - m)
		if e != nil {
			e[j] = F(x)
		}
		s += x
	}
	return m, s, s < math.Inf(1) && lo > math.Inf(-1) && hi < math.Inf(1)
}

// expRow writes e_c = exp(z_c − m) (if e is not nil) and returns the row
// maximum m and Σ_c e_c, summed in float64.
func expRow[F dense.Float](z, e []F) (m, s float64) {
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

// gradRow writes rowmath.RowGradScaled's gradient with p_c = e_c·inv; dz and e may
// be the same slice. lse is the row's log-sum-exp (used with z-loss only).
func gradRow[F dense.Float](dz, e, z []F, inv, lse float64, hardLabel int, soft []F, o *rowmath.Options, sc, sz float64) {
	T := len(dz)
	e = e[:T]
	eps := o.LabelSmoothing
	zf := 0.0 // the z-loss's coefficient of p_c
	if o.ZLoss > 0 {
		zf = sz * 2 * o.ZLoss * lse
	}
	if soft == nil {
		if o.Ignored(hardLabel) || (sc == 0 && zf == 0) {
			clear(dz)
			return
		}
		wy := o.Weight(hardLabel)
		S := (1-eps)*wy + eps/float64(T)*o.WeightSum(T)
		f := F((sc*S + zf) * inv)
		if eps == 0 {
			for c := range dz {
				dz[c] = f * e[c]
			}
		} else {
			k := sc * eps / float64(T)
			for c := range dz {
				dz[c] = f*e[c] - F(k*o.Weight(c))
			}
		}
		dz[hardLabel] -= F(sc * (1 - eps) * wy)
	} else {
		S := 0.0
		for c := range dz {
			S += o.Weight(c) * ((1-eps)*float64(soft[c]) + eps/float64(T))
		}
		f := (sc*S + zf) * inv
		for c := range dz {
			a := o.Weight(c) * ((1-eps)*float64(soft[c]) + eps/float64(T))
			dz[c] = F(f*float64(e[c]) - sc*a)
		}
	}
	if cp := o.Softcap; cp > 0 {
		// ∂ẑ_c/∂z_c = 1 − tanh²(z_c/c)
		for c, v := range z[:T] {
			t := math.Tanh(float64(v) / cp)
			dz[c] = F(float64(dz[c]) * (1 - t*t))
		}
	}
}

// exp32 is exp(x) in float32 arithmetic (Cephes' expf: a degree-6
// polynomial after reduction by ln 2), within 2 ulp of the true value for
// normal results; it returns 0 below −87.3 (where expf would be subnormal),
// +Inf above 88.7 and NaN for NaN.
func exp32(x float32) float32 {
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
func tensorOf[F dense.Float](d []F, shape ...int) *tensor.Dense {
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(d))
}

// sameBuffer reports whether two slices start at the same element.
func sameBuffer[F dense.Float](a, b []F) bool {
	return len(a) > 0 && len(b) > 0 && unsafe.SliceData(a) == unsafe.SliceData(b)
}
