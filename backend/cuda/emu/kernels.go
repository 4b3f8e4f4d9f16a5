package emu

import (
	"fmt"
	"math"
	"strings"
	"unsafe"

	"dsx/backend/cuda/hostkern"
	"dsx/backend/cuda/lower"
	k "dsx/cudakernels"
	"dsx/internal/rowmath"
)

// kernelRunner emulates one kernel step: it fills the kernel's argument
// struct exactly as the GPU runtime does, checks the launch geometry, and
// runs the kernel's documented arithmetic on the host.
type kernelRunner struct {
	op   lower.Kernel
	args any
	m    *memory
}

func (r *kernelRunner) Run(a lower.Addr, c lower.Ctx) error {
	r.op.Fill(r.args, a, c)
	name := r.op.Kernel()
	esize := int64(4)
	if strings.HasSuffix(name, "_f64") {
		esize = 8
	}
	d := r.op.Dims(c)
	if err := checkDims(name, esize, r.args, d); err != nil {
		return fmt.Errorf("%s: launch of %s: %w", Name, name, err)
	}
	var err error
	if r.m.host {
		err = r.m.arena.Launch(name, d, r.args, hostkern.Reverse())
	} else if g, ok := r.args.(*k.XVocabGrad); ok {
		// Its column sums go to one slab per block row (gridDim.y).
		if esize == 8 {
			err = xvGrad[float64](r.m, g, d.GridY)
		} else {
			err = xvGrad[float32](r.m, g, d.GridY)
		}
	} else if strings.HasSuffix(name, "_f64") {
		err = emulate[float64](r.m, r.args)
	} else {
		err = emulate[float32](r.m, r.args)
	}
	if err != nil {
		return fmt.Errorf("%s: %s: %w", Name, name, err)
	}
	return nil
}

// checkDims checks a launch the way the kernel needs it: blocks within the
// hardware's limits, and a grid that covers what the kernel does not stride
// over.
func checkDims(name string, esize int64, args any, d lower.Dims) error {
	if d.GridX < 1 || d.GridY < 1 || d.BlockX < 1 || d.BlockY < 1 || d.GridX > math.MaxInt32 || d.GridY > 65535 ||
		d.BlockX*d.BlockY > 1024 || d.Shmem < 0 || d.Shmem > 48<<10 {
		return fmt.Errorf("bad geometry %+v", d)
	}
	// What the GPU would refuse: registers or shared memory past a block's
	// (ptxas's figures for sm_90), more threads than __launch_bounds__.
	if err := k.CheckLaunch(name, d.BlockX*d.BlockY, d.Shmem); err != nil {
		return err
	}
	switch a := args.(type) {
	case *k.Xent:
		if strings.HasPrefix(name, "xent_t") {
			var tmax int
			fmt.Sscanf(strings.TrimPrefix(name, "xent_t"), "%d", &tmax)
			want, threads, block := lower.XentTile(int(a.T))
			if want != tmax || d.BlockX != block || d.BlockX%threads != 0 || d.Shmem != 0 {
				return fmt.Errorf("xent_t%d for T = %d with %+v (want Tmax %d, block %d)", tmax, a.T, d, want, block)
			}
			if a.Softcap != 0 {
				return fmt.Errorf("xent_t%d with soft-capping (the tiled kernels have no tanh)", tmax)
			}
			return nil
		}
		if d.GridX < int(a.Rows) || d.BlockX%32 != 0 {
			return fmt.Errorf("a block per row: grid %d for %d rows, block %d", d.GridX, a.Rows, d.BlockX)
		}
		if a.Flags&k.XentCache != 0 && int64(d.Shmem) < a.T*esize {
			return fmt.Errorf("XENT_CACHE with %d bytes of shared memory for %d classes", d.Shmem, a.T)
		}
	case *k.XVocabStats:
		if d.GridX < int(a.Rows) || d.BlockX%32 != 0 {
			return fmt.Errorf("a block per row: grid %d for %d rows, block %d", d.GridX, a.Rows, d.BlockX)
		}
	case *k.XVocabGrad:
		if int64(d.GridX)*int64(d.BlockX) < a.Vt {
			return fmt.Errorf("a thread per column: %d×%d threads for %d columns", d.GridX, d.BlockX, a.Vt)
		}
	case *k.XentScale, *k.XentReduce:
		if d.GridX != 1 || d.BlockX%32 != 0 {
			return fmt.Errorf("one block of whole warps, not %+v", d)
		}
	case *k.LogSoftmax:
		if d.GridX < int(a.Rows) || d.BlockX%32 != 0 {
			return fmt.Errorf("a block per row: grid %d for %d rows", d.GridX, a.Rows)
		}
	case *k.LogSoftmaxGrad:
		if d.GridX < int(a.Rows) || d.BlockX%32 != 0 {
			return fmt.Errorf("a block per row: grid %d for %d rows", d.GridX, a.Rows)
		}
	case *k.ColSumPart:
		if d.BlockX != 32 || d.BlockY != 8 || int64(d.GridY) != a.S || int64(d.GridX)*32 < a.T {
			return fmt.Errorf("colsum_part wants blocks (32, 8) and grid (≥ T/32, S = %d), not %+v", a.S, d)
		}
	}
	return nil
}

// floats views n elements of F at p (nil for p = 0).
func floats[F float32 | float64](m *memory, p k.Ptr, n int64) ([]F, error) {
	if p == 0 {
		return nil, nil
	}
	var zero F
	b, err := m.view(p, n*int64(unsafe.Sizeof(zero)))
	if err != nil || n == 0 {
		return nil, err
	}
	return unsafe.Slice((*F)(unsafe.Pointer(unsafe.SliceData(b))), n), nil
}

// need is floats for a pointer that must not be NULL.
func need[F float32 | float64](m *memory, what string, p k.Ptr, n int64) ([]F, error) {
	if p == 0 {
		return nil, fmt.Errorf("%s is NULL", what)
	}
	v, err := floats[F](m, p, n)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return v, nil
}

// emulate runs one kernel whose element type is F.
func emulate[F float32 | float64](m *memory, args any) error {
	switch a := args.(type) {
	case *k.Xent:
		return xent[F](m, a)
	case *k.XentScale:
		return xentScale[F](m, a)
	case *k.XentReduce:
		rl, err := need[float64](m, "rowloss", a.RowLoss, a.Rows)
		if err != nil {
			return err
		}
		out, err := need[float64](m, "out", a.Out, 1)
		if err != nil {
			return err
		}
		s := 0.0
		for _, v := range rl {
			s += v
		}
		out[0] = s
		return nil
	case *k.BiasAdd:
		z, err := need[F](m, "z", a.Z, (a.Rows-1)*a.Ld+a.T)
		if err != nil {
			return err
		}
		b, err := need[F](m, "b", a.B, a.T)
		if err != nil {
			return err
		}
		for r := int64(0); r < a.Rows; r++ {
			for c := int64(0); c < a.T; c++ {
				z[r*a.Ld+c] += b[c]
			}
		}
		return nil
	case *k.ColSumPart:
		return colSumPart[F](m, a)
	case *k.ColSumFin:
		part, err := need[float64](m, "part", a.Part, a.S*a.T)
		if err != nil {
			return err
		}
		db, err := need[F](m, "db", a.DB, a.T)
		if err != nil {
			return err
		}
		for c := int64(0); c < a.T; c++ {
			s := 0.0
			if a.Acc != 0 {
				s = float64(db[c])
			}
			for i := int64(0); i < a.S; i++ {
				s += part[i*a.T+c]
			}
			db[c] = F(s)
		}
		return nil
	case *k.ToBF16:
		return toBF16(m, a)
	case *k.XVocabStats:
		return xvStats[F](m, a)
	case *k.XVocabFinish:
		return xvFinish[F](m, a)
	case *k.XVocabGrad:
		return fmt.Errorf("xvocab_grad needs its grid (kernelRunner.Run)")
	case *k.SGD:
		return sgd[F](m, a)
	case *k.Adam:
		return adam[F](m, a)
	case *k.LogSoftmax:
		return logSoftmax[F](m, a)
	case *k.NLL:
		return nll[F](m, a)
	case *k.NLLGrad:
		return nllGrad[F](m, a)
	case *k.LogSoftmaxGrad:
		return logSoftmaxGrad[F](m, a)
	}
	return fmt.Errorf("no emulation for %T", args)
}

// lossOptions are the options a xent kernel's arguments encode.
func lossOptions(m *memory, flags, ignore int64, eps float64, w k.Ptr, T int64) (rowmath.Options, error) {
	o := rowmath.Options{SoftTargets: flags&k.XentSoft != 0, UseIgnoreIndex: flags&k.XentIgnore != 0, IgnoreIndex: int(ignore), LabelSmoothing: eps}
	if w != 0 {
		ws, err := floats[float64](m, w, T)
		if err != nil {
			return o, fmt.Errorf("class weights: %w", err)
		}
		o.ClassWeights = ws
	}
	return o, nil
}

// xent is xent_rows / xent_tile_rows: per row, rowmath.RowTerms for the
// cross-entropy ce and the z-loss zl, rowloss = sc·ce + sz·zl with the scales
// xent_scale wrote and losses = ce + zl; with XENT_GRAD, gscale times
// rowmath.RowGradScaled(sc, sz) in place. A row the kernel marks NaN (a NaN or
// +Inf logit, ±Inf under a cap, a label out of range) is NaN here too.
func xent[F float32 | float64](m *memory, a *k.Xent) error {
	if a.Ld < a.T || a.Rows < 1 {
		return fmt.Errorf("ld %d for T %d, rows %d", a.Ld, a.T, a.Rows)
	}
	o, err := lossOptions(m, a.Flags, a.Ignore, a.Eps, a.W, a.T)
	if err != nil {
		return err
	}
	o.Softcap, o.ZLoss = a.Softcap, a.ZLoss
	wsum := float64(a.T)
	if o.ClassWeights != nil {
		wsum = 0
		for _, w := range o.ClassWeights {
			wsum += w
		}
	}
	if math.Abs(wsum-a.WSum) > 1e-12*math.Max(1, wsum) {
		return fmt.Errorf("wsum %v, the class weights sum to %v", a.WSum, wsum)
	}
	z, err := need[F](m, "z", a.Z, (a.Rows-1)*a.Ld+a.T)
	if err != nil {
		return err
	}
	tn := a.Rows
	if o.SoftTargets {
		tn = (a.Rows-1)*a.Ldt + a.T
	}
	tg, err := need[F](m, "tg", a.Tg, tn)
	if err != nil {
		return err
	}
	rowloss, losses, err := rowLosses[F](m, a.RowLoss, a.Losses, a.Rows)
	if err != nil {
		return err
	}
	bias, err := floats[F](m, a.Bias, a.T)
	if err != nil {
		return fmt.Errorf("bias: %w", err)
	}
	scales, err := need[float64](m, "scales", a.ScaleP, 2)
	if err != nil {
		return err
	}
	sc, sz := scales[0], scales[1]
	g16, err := halves(m, a.G16, a.Rows*a.T)
	if err != nil {
		return fmt.Errorf("g16: %w", err)
	}
	// The bfloat16 copy of row r's gradient (dense rows of T), as written.
	put16 := func(r int, zr []F) {
		if g16 == nil {
			return
		}
		for c, v := range zr[:a.T] {
			g16[int64(r)*a.T+int64(c)] = BF16(float32(v))
		}
	}
	T := int(a.T)
	row := make([]F, T)
	for r := 0; r < int(a.Rows); r++ {
		zr := z[r*int(a.Ld) : r*int(a.Ld)+T]
		poisoned := false
		for c := range row {
			row[c] = zr[c]
			if bias != nil {
				row[c] = zr[c] + bias[c]
			}
			v := float64(row[c])
			poisoned = poisoned || math.IsNaN(v) || math.IsInf(v, 1) || (o.Softcap > 0 && math.IsInf(v, -1))
		}
		y, soft := -1, []F(nil)
		if o.SoftTargets {
			soft = tg[r*int(a.Ldt) : r*int(a.Ldt)+T]
		} else {
			y = int(tg[r])
			if float64(y) != float64(tg[r]) || !o.Ignored(y) && (y < 0 || y >= T) {
				poisoned = true // a bad label: xent_row_loss's "bad"
			}
		}
		if poisoned {
			rowloss[r] = math.NaN()
			if losses != nil {
				losses[r] = F(math.NaN())
			}
			if a.Flags&k.XentGrad != 0 {
				for c := range zr {
					zr[c] = F(math.NaN())
				}
				put16(r, zr)
			}
			continue
		}
		ce, zl, _ := rowmath.RowTerms(row, y, soft, &o)
		rowloss[r] = sc*ce + sz*zl
		if losses != nil {
			losses[r] = F(ce + zl)
		}
		if a.Flags&k.XentGrad != 0 {
			rowmath.RowGradScaled(zr, row, y, soft, &o, sc*a.GScale, sz*a.GScale)
			put16(r, zr)
		}
	}
	return nil
}

// xentScale is xent_scale: the reduction's scales, the cross-entropy's
// (1/Σ w_y over kept rows for mean) and the z-loss's (1/kept rows).
func xentScale[F float32 | float64](m *memory, a *k.XentScale) error {
	sc, err := need[float64](m, "scales", a.ScaleP, 2)
	if err != nil {
		return err
	}
	if a.Flags&k.XentMean == 0 {
		sc[0], sc[1] = 1, 1
		return nil
	}
	d, kept := 0.0, 0.0
	if a.Flags&k.XentSoft != 0 {
		d, kept = float64(a.Rows), float64(a.Rows)
	} else {
		tg, err := need[F](m, "tg", a.Tg, a.Rows)
		if err != nil {
			return err
		}
		o, err := lossOptions(m, a.Flags, a.Ignore, 0, a.W, a.T)
		if err != nil {
			return err
		}
		for _, v := range tg {
			y := int(v)
			if o.Ignored(y) {
				continue
			}
			kept++
			if y >= 0 && y < int(a.T) {
				d += o.Weight(y)
			}
		}
	}
	sc[0], sc[1] = 0, 0
	if d != 0 {
		sc[0] = 1 / d
	}
	if kept != 0 {
		sc[1] = 1 / kept
	}
	return nil
}

func colSumPart[F float32 | float64](m *memory, a *k.ColSumPart) error {
	g, err := need[F](m, "g", a.G, (a.Rows-1)*a.Ld+a.T)
	if err != nil {
		return err
	}
	part, err := need[float64](m, "part", a.Part, a.S*a.T)
	if err != nil {
		return err
	}
	R := (a.Rows + a.S - 1) / a.S
	for s := int64(0); s < a.S; s++ {
		for c := int64(0); c < a.T; c++ {
			v := 0.0
			for r := s * R; r < min(a.Rows, (s+1)*R); r++ {
				v += float64(g[r*a.Ld+c])
			}
			part[s*a.T+c] = v
		}
	}
	return nil
}

func toBF16(m *memory, a *k.ToBF16) error {
	src, err := need[float32](m, "src", a.Src, a.N)
	if err != nil {
		return err
	}
	b, err := m.view(a.Dst, 2*a.N)
	if err != nil {
		return fmt.Errorf("dst: %w", err)
	}
	dst := unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(b))), a.N)
	for i, v := range src {
		dst[i] = BF16(v)
	}
	return nil
}

// halves views n bfloat16 values at p (nil for p = 0).
func halves(m *memory, p k.Ptr, n int64) ([]uint16, error) {
	if p == 0 {
		return nil, nil
	}
	b, err := m.view(p, 2*n)
	if err != nil {
		return nil, err
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(b))), n), nil
}

// BF16 rounds to bfloat16 as the kernels do (cudakernels.BF16).
func BF16(v float32) uint16 { return k.BF16(v) }
