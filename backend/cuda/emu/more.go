package emu

import (
	"fmt"
	"math"
	"unsafe"

	"dsx/backend"
	"dsx/backend/cuda/lower"
	k "dsx/cudakernels"
)

// gemmRunner emulates a cuBLAS product: C = op(A)·op(B) + beta·C in
// row-major terms, summed in float64 and stored in the layer's dtype (in
// BF16 mode A and B hold bfloat16 and C float32).
type gemmRunner struct {
	op *lower.Gemm
	m  *memory
}

func (g *gemmRunner) Run(a lower.Addr, c lower.Ctx) error {
	call := g.op.Call(a, c)
	if err := g.run(call); err != nil {
		return fmt.Errorf("%s: gemm %s (%d×%d×%d): %w", Name, call.Describe, call.M, call.N, call.K, err)
	}
	return nil
}

func (g *gemmRunner) run(c lower.GemmCall) error {
	if c.M < 1 || c.N < 1 || c.K < 1 {
		return fmt.Errorf("empty product")
	}
	// Stored shapes: A is M×K (or K×M transposed) with Lda columns.
	ar, ac := c.M, c.K
	if c.TA {
		ar, ac = c.K, c.M
	}
	br, bc := c.K, c.N
	if c.TB {
		br, bc = c.N, c.K
	}
	if c.Lda < ac || c.Ldb < bc {
		return fmt.Errorf("lda %d / ldb %d below the stored columns %d / %d", c.Lda, c.Ldb, ac, bc)
	}
	ldc := c.Ldc
	if ldc == 0 {
		ldc = c.N
	}
	if ldc < c.N {
		return fmt.Errorf("ldc %d below the %d columns of C", ldc, c.N)
	}
	cn := int64((c.M-1)*ldc + c.N) // elements of C spanned
	ci := func(i int) int { return (i/c.N)*ldc + i%c.N }
	A, err := g.operand(c.A, c, int64((ar-1)*c.Lda+ac))
	if err != nil {
		return fmt.Errorf("A: %w", err)
	}
	B, err := g.operand(c.B, c, int64((br-1)*c.Ldb+bc))
	if err != nil {
		return fmt.Errorf("B: %w", err)
	}
	// op(A) as M×K and op(B) as K×N, dense; then C row by row.
	opA, opB := dense(A, c.Lda, c.M, c.K, c.TA), dense(B, c.Ldb, c.K, c.N, c.TB)
	out := make([]float64, c.M*c.N)
	for i := 0; i < c.M; i++ {
		oi := out[i*c.N : (i+1)*c.N]
		for l, a := range opA[i*c.K : (i+1)*c.K] {
			if a == 0 {
				continue
			}
			for j, b := range opB[l*c.N : (l+1)*c.N] {
				oi[j] += a * b
			}
		}
	}
	if c.C16 {
		if c.Mode != backend.BF16 {
			return fmt.Errorf("a bfloat16 C in %v mode", c.Mode)
		}
		if c.Beta != 0 {
			return fmt.Errorf("a bfloat16 C accumulated (beta %v)", c.Beta)
		}
		C, err := halves(g.m, c.C, cn)
		if err != nil {
			return fmt.Errorf("C: %w", err)
		}
		for i, v := range out {
			C[ci(i)] = BF16(float32(v))
		}
		return nil
	}
	if c.F32 || c.Mode == backend.BF16 {
		C, err := need[float32](g.m, "C", c.C, cn)
		if err != nil {
			return err
		}
		for i, v := range out {
			if c.Beta != 0 {
				v += c.Beta * float64(C[ci(i)])
			}
			C[ci(i)] = float32(v)
		}
		return nil
	}
	C, err := need[float64](g.m, "C", c.C, cn)
	if err != nil {
		return err
	}
	for i, v := range out {
		if c.Beta != 0 {
			v += c.Beta * C[ci(i)]
		}
		C[ci(i)] = v
	}
	return nil
}

// dense is the rows×cols matrix op(v) of v stored with ld columns
// (transposed when t).
func dense(v []float64, ld, rows, cols int, t bool) []float64 {
	out := make([]float64, rows*cols)
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			if t {
				out[i*cols+j] = v[j*ld+i]
			} else {
				out[i*cols+j] = v[i*ld+j]
			}
		}
	}
	return out
}

// operand reads n elements of a product operand as float64.
func (g *gemmRunner) operand(p k.Ptr, c lower.GemmCall, n int64) ([]float64, error) {
	out := make([]float64, n)
	switch {
	case c.Mode == backend.BF16:
		b, err := g.m.view(p, 2*n)
		if err != nil {
			return nil, err
		}
		for i, h := range unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(b))), n) {
			out[i] = float64(math.Float32frombits(uint32(h) << 16))
		}
	case c.F32:
		v, err := need[float32](g.m, "operand", p, n)
		if err != nil {
			return nil, err
		}
		for i, x := range v {
			out[i] = float64(x)
		}
	default:
		v, err := need[float64](g.m, "operand", p, n)
		if err != nil {
			return nil, err
		}
		copy(out, v)
	}
	if c.Mode == backend.TF32 {
		for i, v := range out { // TF32 keeps 10 mantissa bits (round to nearest)
			u := math.Float32bits(float32(v))
			u = (u + 0xfff + (u>>13)&1) &^ 0x1fff
			out[i] = float64(math.Float32frombits(u))
		}
	}
	return out, nil
}

func sgd[F float32 | float64](m *memory, a *k.SGD) error {
	w, err := need[F](m, "w", a.W, a.N)
	if err != nil {
		return err
	}
	g, err := need[F](m, "g", a.G, a.N)
	if err != nil {
		return err
	}
	var v []F
	if a.Momentum != 0 {
		if v, err = need[F](m, "v", a.V, a.N); err != nil {
			return err
		}
	}
	for i := range w {
		wi := float64(w[i])
		gi := float64(g[i]) + a.WD*wi
		if a.Momentum != 0 {
			vi := a.Momentum*float64(v[i]) + gi
			v[i] = F(vi)
			gi = vi
		}
		w[i] = F(wi - a.LR*gi)
	}
	return copy16(m, a.W16, w)
}

// copy16 writes w rounded to bfloat16 at p (the optimizers' W16), unless p
// is 0.
func copy16[F float32 | float64](m *memory, p k.Ptr, w []F) error {
	h, err := halves(m, p, int64(len(w)))
	if err != nil {
		return fmt.Errorf("w16: %w", err)
	}
	for i := range h {
		h[i] = BF16(float32(w[i]))
	}
	return nil
}

func adam[F float32 | float64](m *memory, a *k.Adam) error {
	var bufs [4][]F
	for i, p := range []struct {
		name string
		p    k.Ptr
	}{{"w", a.W}, {"g", a.G}, {"m", a.M}, {"v", a.V}} {
		v, err := need[F](m, p.name, p.p, a.N)
		if err != nil {
			return err
		}
		bufs[i] = v
	}
	w, g, mm, vv := bufs[0], bufs[1], bufs[2], bufs[3]
	for i := range w {
		wi, gi := float64(w[i]), float64(g[i])
		if a.Decoupled != 0 {
			wi -= a.LR * a.WD * wi
		} else {
			gi += a.WD * wi
		}
		mi := a.B1*float64(mm[i]) + (1-a.B1)*gi
		vi := a.B2*float64(vv[i]) + (1-a.B2)*gi*gi
		mm[i], vv[i] = F(mi), F(vi)
		w[i] = F(wi - a.LR*(mi/a.BC1)/(math.Sqrt(vi/a.BC2)+a.Eps))
	}
	return copy16(m, a.W16, w)
}

func logSoftmax[F float32 | float64](m *memory, a *k.LogSoftmax) error {
	z, err := need[F](m, "z", a.Z, a.Rows*a.T)
	if err != nil {
		return err
	}
	lp, err := need[F](m, "lp", a.LP, a.Rows*a.T)
	if err != nil {
		return err
	}
	bias, err := floats[F](m, a.Bias, a.T)
	if err != nil {
		return fmt.Errorf("bias: %w", err)
	}
	T := int(a.T)
	v := make([]float64, T)
	for r := 0; r < int(a.Rows); r++ {
		mx, s := math.Inf(-1), 0.0
		for c := range v {
			x := z[r*T+c]
			if bias != nil {
				x += bias[c]
			}
			v[c] = float64(x)
			mx = math.Max(mx, v[c])
		}
		for _, x := range v {
			s += math.Exp(x - mx)
		}
		lse := mx + math.Log(s)
		for c, x := range v {
			lp[r*T+c] = F(x - lse)
		}
	}
	return nil
}

func nll[F float32 | float64](m *memory, a *k.NLL) error {
	lp, err := need[F](m, "lp", a.LP, a.Rows*a.T)
	if err != nil {
		return err
	}
	tg, err := need[F](m, "tg", a.Tg, a.Rows)
	if err != nil {
		return err
	}
	rl, losses, err := rowLosses[F](m, a.RowLoss, a.Losses, a.Rows)
	if err != nil {
		return err
	}
	o, err := lossOptions(m, a.Flags, a.Ignore, 0, a.W, a.T)
	if err != nil {
		return err
	}
	sc, err := need[float64](m, "scale", a.ScaleP, 1)
	if err != nil {
		return err
	}
	for r := range rl {
		y := int(tg[r])
		l := 0.0
		switch {
		case o.Ignored(y):
		case y < 0 || y >= int(a.T):
			l = math.NaN()
		default:
			l = -o.Weight(y) * float64(lp[r*int(a.T)+y])
		}
		rl[r] = sc[0] * l
		if losses != nil {
			losses[r] = F(l)
		}
	}
	return nil
}

func nllGrad[F float32 | float64](m *memory, a *k.NLLGrad) error {
	g, err := need[F](m, "g", a.G, a.Rows*a.T)
	if err != nil {
		return err
	}
	tg, err := need[F](m, "tg", a.Tg, a.Rows)
	if err != nil {
		return err
	}
	sc, err := need[float64](m, "scale", a.ScaleP, 1)
	if err != nil {
		return err
	}
	o, err := lossOptions(m, a.Flags, a.Ignore, 0, a.W, a.T)
	if err != nil {
		return err
	}
	scale := sc[0] * a.GScale
	for i := range g {
		r, c := i/int(a.T), i%int(a.T)
		y := int(tg[r])
		v := 0.0
		if c == y && !o.Ignored(y) {
			v = -scale * o.Weight(y)
		}
		g[i] = F(v)
	}
	return nil
}

func logSoftmaxGrad[F float32 | float64](m *memory, a *k.LogSoftmaxGrad) error {
	g, err := need[F](m, "g", a.G, a.Rows*a.T)
	if err != nil {
		return err
	}
	lp, err := need[F](m, "lp", a.LP, a.Rows*a.T)
	if err != nil {
		return err
	}
	T := int(a.T)
	for r := 0; r < int(a.Rows); r++ {
		s := 0.0
		for c := 0; c < T; c++ {
			s += float64(g[r*T+c])
		}
		for c := 0; c < T; c++ {
			g[r*T+c] = F(float64(g[r*T+c]) - math.Exp(float64(lp[r*T+c]))*s)
		}
	}
	return nil
}
