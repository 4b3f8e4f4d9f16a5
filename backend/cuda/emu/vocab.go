package emu

import (
	"fmt"
	"math"
	"unsafe"

	k "dsx/cudakernels"
)

// The vocabulary-tile kernels (xvocab.cu), with the same running
// statistics: Acc {m, s, d, A} per row (xent_acc.cuh's acc_add and
// acc_merge, in float64, one element at a time), then xent_row_loss and
// xent_grad (xent_row.cuh). The conformance suite runs them against the CPU
// backend through the layers that use them.

// acc is xent_acc.cuh's Acc.
type acc struct{ m, s, d, A float64 }

// add is acc_add.
func (x *acc) add(raw, v, alpha float64, sums bool, softcap float64) {
	switch {
	case v > x.m:
		x.s = x.s*math.Exp(x.m-v) + 1
		if x.A != 0 {
			x.d += (v - x.m) * x.A
		}
		x.m = v
	case !math.IsInf(v, -1) || math.IsNaN(v):
		x.s += math.Exp(v - x.m)
		if sums {
			x.d += alpha * (x.m - v)
		}
	case alpha != 0:
		x.d = math.Inf(1)
	}
	x.A += alpha
	if math.IsNaN(raw) || math.IsInf(raw, 0) && (raw > 0 || softcap > 0) {
		x.m = math.NaN()
	}
}

// merge is acc_merge.
func (x *acc) merge(y acc) {
	m := math.Max(x.m, y.m)
	if math.IsNaN(x.m) || math.IsNaN(y.m) {
		m = math.NaN()
	}
	s, d := 0.0, 0.0
	part := func(z acc) float64 {
		if z.A != 0 {
			return z.d + (m-z.m)*z.A
		}
		return z.d
	}
	if !math.IsInf(m, -1) {
		if x.s != 0 || math.IsNaN(x.s) {
			s += x.s * math.Exp(x.m-m)
		}
		if y.s != 0 || math.IsNaN(y.s) {
			s += y.s * math.Exp(y.m-m)
		}
		d = part(*x) + part(y)
	}
	x.m, x.s, x.d, x.A = m, s, d, x.A+y.A
}

func capOf(v, c float64) float64 {
	if c > 0 {
		return c * math.Tanh(v/c)
	}
	return v
}

func dcapOf(v, c float64) float64 {
	if c <= 0 {
		return 1
	}
	t := math.Tanh(v / c)
	return 1 - t*t
}

// label is xent_label (cudakernels/xent_row.cuh).
func label[F float32 | float64](tg []F, r int, T, flags, ignore int64) (y int64, ignored, bad bool) {
	yl := float64(tg[r])
	y = int64(yl)
	ignored = flags&k.XentIgnore != 0 && y == ignore
	bad = !ignored && (y < 0 || y >= T || float64(y) != yl)
	return
}

func weightOf(w []float64, c int64) float64 {
	if w == nil {
		return 1
	}
	return w[c]
}

// tileInputs checks a tile [c0, c0+vt) of T classes and reads what both
// tile loops' kernels read: the tile's logits (rows×vt) and vocabInputs.
func tileInputs[F float32 | float64](m *memory, c0, vt int64, zp, tgp, wp, biasp k.Ptr, rows, T, flags int64) (z, tg []F, w []float64, bias []F, err error) {
	if c0 < 0 || vt < 1 || c0+vt > T {
		return nil, nil, nil, nil, fmt.Errorf("tile [%d, %d) of %d classes", c0, c0+vt, T)
	}
	if z, err = need[F](m, "z", zp, rows*vt); err != nil {
		return nil, nil, nil, nil, err
	}
	tg, w, bias, err = vocabInputs[F](m, tgp, wp, biasp, rows, T, flags)
	return z, tg, w, bias, err
}

// rowLosses reads a loss kernel's outputs: the float64 per-row losses and
// the per-row losses in the dtype (nil when the plan has none).
func rowLosses[F float32 | float64](m *memory, rlp, lossesp k.Ptr, rows int64) (rl []float64, losses []F, err error) {
	if rl, err = need[float64](m, "rowloss", rlp, rows); err != nil {
		return nil, nil, err
	}
	if losses, err = floats[F](m, lossesp, rows); err != nil {
		return nil, nil, fmt.Errorf("losses: %w", err)
	}
	return rl, losses, nil
}

// vocabInputs reads the arguments every xvocab kernel shares.
func vocabInputs[F float32 | float64](m *memory, tgp, wp, biasp k.Ptr, rows, T, flags int64) (tg []F, w []float64, bias []F, err error) {
	tn := rows
	if flags&k.XentSoft != 0 {
		tn = rows * T
	}
	if tg, err = need[F](m, "tg", tgp, tn); err != nil {
		return
	}
	if w, err = floats[float64](m, wp, T); err != nil {
		err = fmt.Errorf("w: %w", err)
		return
	}
	if bias, err = floats[F](m, biasp, T); err != nil {
		err = fmt.Errorf("bias: %w", err)
	}
	return
}

func xvStats[F float32 | float64](m *memory, a *k.XVocabStats) error {
	z, tg, w, bias, err := tileInputs[F](m, a.C0, a.Vt, a.Z, a.Tg, a.W, a.Bias, a.Rows, a.T, a.Flags)
	if err != nil {
		return err
	}
	accs, err := need[float64](m, "acc", a.Acc, 4*a.Rows)
	if err != nil {
		return err
	}
	zy, err := need[float64](m, "zy", a.Zy, a.Rows)
	if err != nil {
		return err
	}
	soft := a.Flags&k.XentSoft != 0
	kk := a.Eps / float64(a.T)
	sums := soft || a.Eps != 0
	for r := int64(0); r < a.Rows; r++ {
		y, ignored, bad := int64(-1), false, false
		if !soft {
			y, ignored, bad = label(tg, int(r), a.T, a.Flags, a.Ignore)
		}
		x := acc{m: math.Inf(-1)}
		for j := int64(0); j < a.Vt; j++ {
			c := a.C0 + j
			zv := z[r*a.Vt+j]
			if bias != nil {
				zv += bias[c]
			}
			raw := float64(zv)
			alpha := 0.0
			if soft {
				alpha = weightOf(w, c) * ((1-a.Eps)*float64(tg[r*a.T+c]) + kk)
			} else if a.Eps != 0 {
				alpha = weightOf(w, c)
			}
			x.add(raw, capOf(raw, a.Softcap), alpha, sums, a.Softcap)
			if !soft && !ignored && !bad && c == y {
				zy[r] = capOf(raw, a.Softcap)
			}
		}
		row := (*acc)(unsafe.Pointer(&accs[4*r]))
		if a.First != 0 {
			*row = x
		} else {
			row.merge(x)
		}
	}
	return nil
}

func xvFinish[F float32 | float64](m *memory, a *k.XVocabFinish) error {
	accs, err := need[float64](m, "acc", a.Acc, 4*a.Rows)
	if err != nil {
		return err
	}
	zy, err := need[float64](m, "zy", a.Zy, a.Rows)
	if err != nil {
		return err
	}
	tg, w, _, err := vocabInputs[F](m, a.Tg, a.W, 0, a.Rows, a.T, a.Flags)
	if err != nil {
		return err
	}
	rl, losses, err := rowLosses[F](m, a.RowLoss, a.Losses, a.Rows)
	if err != nil {
		return err
	}
	sc, err := need[float64](m, "scales", a.ScaleP, 2)
	if err != nil {
		return err
	}
	st, err := need[float64](m, "st", a.St, 3*a.Rows)
	if err != nil {
		return err
	}
	soft := a.Flags&k.XentSoft != 0
	kk := a.Eps / float64(a.T)
	for r := int64(0); r < a.Rows; r++ {
		y, ignored, bad := int64(-1), false, false
		if !soft {
			y, ignored, bad = label(tg, int(r), a.T, a.Flags, a.Ignore)
		}
		x := (*acc)(unsafe.Pointer(&accs[4*r]))
		L := math.Log(x.s)
		if math.IsInf(x.m, 0) || math.IsNaN(x.m) {
			L = math.NaN()
		}
		// xent_row_loss
		var S, ce, zl float64
		switch {
		case math.IsNaN(x.m) || math.IsNaN(L):
			S, ce, zl = math.NaN(), math.NaN(), math.NaN()
		case soft:
			S, ce = x.A, x.d+x.A*L
		case ignored:
		case bad:
			S, ce = math.NaN(), math.NaN()
		default:
			wy := weightOf(w, y)
			S = (1-a.Eps)*wy + kk*a.WSum
			ce = (1-a.Eps)*wy*(x.m-zy[r]) + S*L
			if a.Eps != 0 {
				ce += kk * x.d
			}
		}
		if a.ZLoss > 0 && !math.IsNaN(ce) && (soft || !ignored) {
			lse := x.m + L
			zl = a.ZLoss * lse * lse
		}
		rl[r] = sc[0]*ce + sc[1]*zl
		if losses != nil {
			losses[r] = F(ce + zl)
		}
		st[3*r], st[3*r+1], st[3*r+2] = x.m, L, S
	}
	return nil
}

// xvGrad is xvocab_grad launched with slabs block rows: row r's gradient
// goes into slab r mod slabs of the column sums, rows in order.
func xvGrad[F float32 | float64](m *memory, a *k.XVocabGrad, slabs int) error {
	z, tg, w, bias, err := tileInputs[F](m, a.C0, a.Vt, a.Z, a.Tg, a.W, a.Bias, a.Rows, a.T, a.Flags)
	if err != nil {
		return err
	}
	st, err := need[float64](m, "st", a.St, 3*a.Rows)
	if err != nil {
		return err
	}
	sc, err := need[float64](m, "scales", a.ScaleP, 2)
	if err != nil {
		return err
	}
	g16, err := halves(m, a.G16, a.Rows*a.Vt)
	if err != nil {
		return fmt.Errorf("g16: %w", err)
	}
	part, err := floats[float64](m, a.Part, int64(slabs)*a.Vt)
	if err != nil {
		return fmt.Errorf("part: %w", err)
	}
	if part != nil {
		clear(part)
	}
	soft := a.Flags&k.XentSoft != 0
	kk := a.Eps / float64(a.T)
	gsc := sc[0] * a.GScale
	for r := int64(0); r < a.Rows; r++ {
		y, ignored, bad := int64(-1), false, false
		if !soft {
			y, ignored, bad = label(tg, int(r), a.T, a.Flags, a.Ignore)
		}
		mm, L, S := st[3*r], st[3*r+1], st[3*r+2]
		zf := sc[1] * a.GScale * 2 * a.ZLoss * (mm + L)
		for j := int64(0); j < a.Vt; j++ {
			c := a.C0 + j
			g := 0.0
			if soft || !ignored {
				zv := z[r*a.Vt+j]
				if bias != nil {
					zv += bias[c]
				}
				raw := float64(zv)
				p := math.Exp((capOf(raw, a.Softcap) - mm) - L)
				var ac float64
				if soft {
					ac = weightOf(w, c) * ((1-a.Eps)*float64(tg[r*a.T+c]) + kk)
				} else {
					ac = kk * weightOf(w, c)
				}
				if c == y {
					ac += (1 - a.Eps) * weightOf(w, c)
				}
				g = (gsc*(S*p-ac) + zf*p) * dcapOf(raw, a.Softcap)
				if bad {
					g = math.NaN()
				}
			}
			z[r*a.Vt+j] = F(g)
			if g16 != nil {
				g16[r*a.Vt+j] = BF16(float32(g))
			}
			if part != nil {
				part[(r%int64(slabs))*a.Vt+j] += float64(F(g))
			}
		}
	}
	return nil
}
