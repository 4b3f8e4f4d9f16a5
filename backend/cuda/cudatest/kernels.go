package cudatest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"dsx/backend/cuda/lower"
	"dsx/backend/cuda/run"
	k "dsx/cudakernels"
	"dsx/graph"
	"dsx/internal/dense"
	"dsx/internal/rowmath"
	"dsx/internal/tol"
)

// The kernel tests: the loss kernels launched one by one, as a plan
// launches them (lower's geometry), against rowmath.RowTerms and
// rowmath.RowGradScaled on the same inputs, within tol.KernelF64 /
// tol.KernelF32 (float64 arithmetic, one rounding to the dtype). They run
// on a GPU (package cuda, build tag gpu) and on the kernels compiled for
// the host (package emu, through hostkern): the same CUDA source either way.

// Kernels launches single kernels on a device.
type Kernels interface {
	// Do runs f with the device ready (run.Device.Do).
	Do(f func() error) error
	// Alloc allocates bufs (inside Do).
	Alloc(bufs []*lower.Buffer, what string) (run.Memory, error)
	// Launch runs kernel name with its argument struct args over d on m's
	// buffers, and waits for it (inside Do).
	Launch(m run.Memory, name string, args any, d lower.Dims) error
}

// KernelSizes are the row lengths of the GPU's kernel test: around each
// tiled kernel's Tmax, and Sizes.
var KernelSizes = append([]int{32, 33, 64, 65, 512, 513, 1024, 1025, 3000, 4096}, Sizes...)

// HostKernelSizes are those of the host build's: one past a warp and past
// 512 and 1024 columns, the largest tiled kernel, a block-per-row row that
// shared memory caches in float32 but not float64 (8003), and one that it
// caches in neither (12000 float32 is 47 KiB, past lower.CacheBytes).
var HostKernelSizes = []int{33, 513, 1025, 4096, 8003, 12000}

// withBias are the cases whose rows get a bias added by the kernel as it
// reads them (b of x·W + b).
var withBias = map[string]bool{"mean": true, "softcap": true, "soft+softcap+zloss": true, "weights+smooth+none": true, "ignore": true}

// XentKernels runs the fused kernels (block per row, and the tiled one where
// T ≤ 4096) over every case of LossCases at each T of sizes, both dtypes, on
// logits whose rows have a stride ld > T, with NaN in the padding past the
// T valid columns and in a whole row past the batch; with a bias for the
// cases of withBias and, in float32, the gradient's bfloat16 copy, which
// must be the stored gradient rounded (emu.BF16's rounding) bit for bit.
func XentKernels(t *testing.T, dev Kernels, sizes []int) {
	for _, T := range sizes {
		for name, o := range LossCases(T) {
			for _, f32 := range []bool{true, false} {
				for _, warp := range []bool{false, true} {
					if tmax, _, _ := lower.XentTile(T); warp && (tmax == 0 || o.Softcap != 0) {
						continue // no tiled kernel (it has no soft cap)
					}
					t.Run(fmt.Sprintf("T=%d/%s/f32=%v/warp=%v", T, name, f32, warp), func(t *testing.T) {
						var err error
						if f32 {
							err = kernelCase[float32](dev, T, o, name, warp)
						} else {
							err = kernelCase[float64](dev, T, o, name, warp)
						}
						if err != nil {
							t.Fatal(err)
						}
					})
				}
			}
		}
	}
}

func kernelCase[F dense.Float](dev Kernels, T int, o graph.LossOptions, name string, warp bool) error {
	const rows = 5
	ld := T + 7
	r := rand.New(rand.NewPCG(uint64(T), uint64(len(name))))
	nan := F(math.NaN())
	z := make([]F, (rows+1)*ld) // one poisoned row past the batch
	for i := range z {
		z[i] = nan
	}
	for i := 0; i < rows; i++ {
		for c := 0; c < T; c++ {
			z[i*ld+c] = F(r.NormFloat64() * RowScales[i%len(RowScales)])
		}
	}
	var bias []F
	if withBias[name] {
		bias = make([]F, T)
		for c := range bias {
			bias[c] = F(r.NormFloat64())
		}
	}
	tg := dense.Convert[F](TargetsFor(r, rows, T, o, name))
	ro := (*rowmath.Options)(&o)
	esize, f32, kn := dtype[F]()
	// Reference, on the rows as the kernel reads them (+ b in F).
	packed := make([]F, rows*T)
	for i := 0; i < rows; i++ {
		copy(packed[i*T:(i+1)*T], z[i*ld:i*ld+T])
		for c := range bias {
			packed[i*T+c] += bias[c]
		}
	}
	sc, sz := rowmath.Scale(ro, rowmath.Denominator(tg, rows, ro)), rowmath.Scale(ro, rowmath.KeptRows(tg, rows, ro))
	wantLoss := make([]float64, rows)    // ce + zl
	wantRowLoss := make([]float64, rows) // sc·ce + sz·zl
	wantGrad := make([]F, rows*T)
	for i := 0; i < rows; i++ {
		y, soft := -1, []F(nil)
		if o.SoftTargets {
			soft = tg[i*T : (i+1)*T]
		} else {
			y = int(tg[i])
		}
		ce, zl, _ := rowmath.RowTerms(packed[i*T:(i+1)*T], y, soft, ro)
		wantLoss[i], wantRowLoss[i] = ce+zl, sc*ce+sz*zl
		rowmath.RowGradScaled(wantGrad[i*T:(i+1)*T], packed[i*T:(i+1)*T], y, soft, ro, sc, sz)
	}
	wantTotal := 0.0
	for _, l := range wantRowLoss {
		wantTotal += l
	}

	bufs := newBuffers(map[string]int64{"z": int64(len(z)) * esize, "targets": int64(len(tg)) * esize,
		"weights": int64(T) * 8, "rowloss": rows * 8, "losses": rows * esize, "scales": 16, "loss": 8,
		"bias": int64(T) * esize, "g16": rows * int64(T) * 2})
	got := make([]F, len(z))
	gotLoss := make([]float64, rows)
	gotLosses := make([]F, rows)
	var gotTotal [1]float64
	var gotScale [2]float64
	g16 := make([]uint16, rows*T)
	err := dev.Do(func() error {
		mem, err := dev.Alloc(bufs.list, "kernel test")
		if err != nil {
			return err
		}
		defer mem.Free()
		at := func(n string) k.Ptr { return mem.Addr(bufs.by[n]) }
		if err := toDevice(mem, at("z"), z); err != nil {
			return err
		}
		if err := toDevice(mem, at("targets"), tg); err != nil {
			return err
		}
		wp, wsum := k.Ptr(0), float64(T)
		if o.ClassWeights != nil {
			if err := toDevice(mem, at("weights"), o.ClassWeights); err != nil {
				return err
			}
			wp, wsum = at("weights"), 0
			for _, w := range o.ClassWeights {
				wsum += w
			}
		}
		bp, gp := k.Ptr(0), k.Ptr(0)
		if bias != nil {
			if err := toDevice(mem, at("bias"), bias); err != nil {
				return err
			}
			bp = at("bias")
		}
		if f32 {
			gp = at("g16")
		}
		flags := k.XentGrad | lossFlags(o)
		cache := int64(T)*esize <= lower.CacheBytes
		if cache {
			flags |= k.XentCache
		}
		err = dev.Launch(mem, kn("xent_scale"), &k.XentScale{Tg: at("targets"), W: wp, ScaleP: at("scales"), Rows: rows, T: int64(T), Flags: flags, Ignore: int64(o.IgnoreIndex)},
			lower.ReduceDims)
		if err != nil {
			return err
		}
		xname, d := kn("xent"), lower.Dims{GridX: rows, GridY: 1, BlockX: lower.RowThreads(T), BlockY: 1}
		if cache {
			d.Shmem = T * int(esize)
		}
		if warp {
			// Fewer threads than rows, so that the kernel strides over the
			// rows (the layer launches a row per warp or block): one block
			// of two warps, or two blocks of one row.
			xname, d = lower.XentKernel(T, f32, cache, false, esize, rows)
			d.GridX = 2
			if _, threads, _ := lower.XentTile(T); threads == 32 {
				d.GridX = 1
			}
		}
		err = dev.Launch(mem, xname, &k.Xent{Z: at("z"), Ld: int64(ld), Tg: at("targets"), Ldt: int64(T), W: wp, RowLoss: at("rowloss"),
			Losses: at("losses"), ScaleP: at("scales"), Rows: rows, T: int64(T), Flags: flags, Ignore: int64(o.IgnoreIndex),
			Eps: o.LabelSmoothing, WSum: wsum, GScale: 1, Softcap: o.Softcap, ZLoss: o.ZLoss, Bias: bp, G16: gp}, d)
		if err != nil {
			return err
		}
		err = dev.Launch(mem, "xent_reduce", &k.XentReduce{RowLoss: at("rowloss"), Out: at("loss"), Rows: rows}, lower.ReduceDims)
		if err != nil {
			return err
		}
		for _, c := range []struct {
			dst []byte
			src string
		}{{bytesOf(got), "z"}, {bytesOf(gotLoss), "rowloss"}, {bytesOf(gotLosses), "losses"}, {bytesOf(gotTotal[:]), "loss"},
			{bytesOf(gotScale[:]), "scales"}, {bytesOf(g16), "g16"}} {
			if err := mem.ToHost(c.dst, at(c.src)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	tolF := tol.KernelF64
	if f32 {
		tolF = tol.KernelF32
	}
	if err := tol.Close(gotScale[:], []float64{sc, sz}, tol.KernelF64); err != nil {
		return fmt.Errorf("scales: %v", err)
	}
	if err := tol.Close(gotLoss, wantRowLoss, tol.KernelF64); err != nil {
		return fmt.Errorf("row losses: %v", err)
	}
	if err := tol.Close(dense.Convert[float64](gotLosses), wantLoss, tolF); err != nil {
		return fmt.Errorf("row losses in the dtype: %v", err)
	}
	if err := tol.Close(gotTotal[:], []float64{wantTotal}, tol.KernelF64); err != nil {
		return fmt.Errorf("reduced loss: %v", err)
	}
	packed = packed[:0]
	for i := 0; i < rows; i++ {
		packed = append(packed, got[i*ld:i*ld+T]...)
	}
	if err := tol.Close(dense.Convert[float64](packed), dense.Convert[float64](wantGrad), tolF); err != nil {
		return fmt.Errorf("gradient: %v", err)
	}
	for i := 0; i < rows+1; i++ {
		lo := T
		if i == rows {
			lo = 0
		}
		for c := lo; c < ld; c++ {
			if v := got[i*ld+c]; !math.IsNaN(float64(v)) {
				return fmt.Errorf("row %d, column %d past the valid block was written: %v", i, c, v)
			}
		}
	}
	if f32 {
		if err := sameBF16(g16, packed); err != nil {
			return fmt.Errorf("bfloat16 gradient: %v", err)
		}
	}
	return nil
}

// VocabKernels runs the vocabulary-tile kernels (xvocab.cu) over tiles of
// vt columns (the last one shorter) as a chunk of the tiled plan does:
// xent_scale; xvocab_stats per tile; xvocab_finish; xvocab_grad per tile,
// with its column sums by slab, colsum_fin into db's columns of the tile and,
// in float32, the gradient's bfloat16 copy; xent_reduce. The row losses, the
// loss, the gradient of every tile and db are checked against rowmath on
// the whole rows.
func VocabKernels(t *testing.T, dev Kernels, sizes []int) {
	for _, T := range sizes {
		vt := max(16, T/3-5) // three tiles and a short fourth
		for name, o := range LossCases(T) {
			for _, f32 := range []bool{true, false} {
				t.Run(fmt.Sprintf("T=%d/tile=%d/%s/f32=%v", T, vt, name, f32), func(t *testing.T) {
					var err error
					if f32 {
						err = vocabCase[float32](dev, T, vt, o, name)
					} else {
						err = vocabCase[float64](dev, T, vt, o, name)
					}
					if err != nil {
						t.Fatal(err)
					}
				})
			}
		}
	}
}

func vocabCase[F dense.Float](dev Kernels, T, vt int, o graph.LossOptions, name string) error {
	const rows = 5
	r := rand.New(rand.NewPCG(uint64(T), uint64(len(name))+99))
	z := make([]F, rows*T)
	for i := 0; i < rows; i++ {
		for c := 0; c < T; c++ {
			z[i*T+c] = F(r.NormFloat64() * RowScales[i%len(RowScales)])
		}
	}
	bias := make([]F, T)
	for c := range bias {
		bias[c] = F(r.NormFloat64())
	}
	tg := dense.Convert[F](TargetsFor(r, rows, T, o, name))
	ro := (*rowmath.Options)(&o)
	esize, f32, kn := dtype[F]()
	packed := make([]F, rows*T)
	for i := range packed {
		packed[i] = z[i] + bias[i%T]
	}
	sc, sz := rowmath.Scale(ro, rowmath.Denominator(tg, rows, ro)), rowmath.Scale(ro, rowmath.KeptRows(tg, rows, ro))
	wantLoss, wantRowLoss := make([]float64, rows), make([]float64, rows)
	wantGrad := make([]F, rows*T)
	wantTotal := 0.0
	for i := 0; i < rows; i++ {
		y, soft := -1, []F(nil)
		if o.SoftTargets {
			soft = tg[i*T : (i+1)*T]
		} else {
			y = int(tg[i])
		}
		ce, zl, _ := rowmath.RowTerms(packed[i*T:(i+1)*T], y, soft, ro)
		wantLoss[i], wantRowLoss[i] = ce+zl, sc*ce+sz*zl
		wantTotal += wantRowLoss[i]
		rowmath.RowGradScaled(wantGrad[i*T:(i+1)*T], packed[i*T:(i+1)*T], y, soft, ro, sc, sz)
	}
	slabs := lower.ColSumSlabs(vt, rows)
	bufs := newBuffers(map[string]int64{"tile": rows * int64(vt) * esize, "targets": int64(len(tg)) * esize,
		"weights": int64(T) * 8, "bias": int64(T) * esize, "acc": rows * 32, "zy": rows * 8, "st": rows * 24,
		"rowloss": rows * 8, "losses": rows * esize, "scales": 16, "loss": 8, "g16": rows * int64(vt) * 2,
		"part": int64(slabs) * int64(vt) * 8, "db": int64(T) * esize})
	got := make([]F, rows*T)
	gotG16 := make([]uint16, rows*T)
	gotRowLoss, gotLosses, gotDB := make([]float64, rows), make([]F, rows), make([]F, T)
	var gotTotal [1]float64
	err := dev.Do(func() error {
		mem, err := dev.Alloc(bufs.list, "vocabulary-tile kernel test")
		if err != nil {
			return err
		}
		defer mem.Free()
		at := func(n string) k.Ptr { return mem.Addr(bufs.by[n]) }
		if err := toDevice(mem, at("targets"), tg); err != nil {
			return err
		}
		if err := toDevice(mem, at("bias"), bias); err != nil {
			return err
		}
		wp, wsum := k.Ptr(0), float64(T)
		if o.ClassWeights != nil {
			if err := toDevice(mem, at("weights"), o.ClassWeights); err != nil {
				return err
			}
			wp, wsum = at("weights"), 0
			for _, w := range o.ClassWeights {
				wsum += w
			}
		}
		gp := k.Ptr(0)
		if f32 {
			gp = at("g16")
		}
		flags := lossFlags(o)
		if err := dev.Launch(mem, kn("xent_scale"), &k.XentScale{Tg: at("targets"), W: wp, ScaleP: at("scales"), Rows: rows, T: int64(T),
			Flags: flags, Ignore: int64(o.IgnoreIndex)}, lower.ReduceDims); err != nil {
			return err
		}
		flags &^= k.XentMean
		tile := make([]F, rows*vt)
		loadTile := func(c0, cols int) error {
			for i := 0; i < rows; i++ {
				copy(tile[i*cols:(i+1)*cols], z[i*T+c0:i*T+c0+cols])
			}
			return toDevice(mem, at("tile"), tile[:rows*cols])
		}
		for c0 := 0; c0 < T; c0 += vt {
			cols := min(vt, T-c0)
			if err := loadTile(c0, cols); err != nil {
				return err
			}
			first := int64(0)
			if c0 == 0 {
				first = 1
			}
			if err := dev.Launch(mem, kn("xvocab_stats"), &k.XVocabStats{Z: at("tile"), C0: int64(c0), Vt: int64(cols), Tg: at("targets"), W: wp,
				Bias: at("bias"), Acc: at("acc"), Zy: at("zy"), Rows: rows, T: int64(T), Flags: flags, Ignore: int64(o.IgnoreIndex),
				Eps: o.LabelSmoothing, Softcap: o.Softcap, First: first}, lower.VocabStatsDims(rows, cols)); err != nil {
				return err
			}
		}
		if err := dev.Launch(mem, kn("xvocab_finish"), &k.XVocabFinish{Acc: at("acc"), Zy: at("zy"), Tg: at("targets"), W: wp,
			RowLoss: at("rowloss"), Losses: at("losses"), ScaleP: at("scales"), St: at("st"), Rows: rows, T: int64(T), Flags: flags,
			Ignore: int64(o.IgnoreIndex), Eps: o.LabelSmoothing, WSum: wsum, ZLoss: o.ZLoss}, lower.VocabFinishDims(rows)); err != nil {
			return err
		}
		g16 := make([]uint16, rows*vt)
		for c0 := 0; c0 < T; c0 += vt {
			cols := min(vt, T-c0)
			if err := loadTile(c0, cols); err != nil {
				return err
			}
			if err := dev.Launch(mem, kn("xvocab_grad"), &k.XVocabGrad{Z: at("tile"), C0: int64(c0), Vt: int64(cols), Tg: at("targets"), W: wp,
				Bias: at("bias"), St: at("st"), ScaleP: at("scales"), G16: gp, Part: at("part"), Rows: rows, T: int64(T), Flags: flags,
				Ignore: int64(o.IgnoreIndex), Eps: o.LabelSmoothing, GScale: 1, Softcap: o.Softcap, ZLoss: o.ZLoss},
				lower.VocabGradDims(rows, cols, vt, true)); err != nil {
				return err
			}
			if err := dev.Launch(mem, kn("colsum_fin"), &k.ColSumFin{Part: at("part"), DB: at("db") + k.Ptr(int64(c0)*esize), T: int64(cols),
				S: int64(slabs), Acc: 0}, lower.ColSumFinDims(cols)); err != nil {
				return err
			}
			if err := mem.ToHost(bytesOf(tile[:rows*cols]), at("tile")); err != nil {
				return err
			}
			if err := mem.ToHost(bytesOf(g16[:rows*cols]), at("g16")); err != nil {
				return err
			}
			for i := 0; i < rows; i++ {
				copy(got[i*T+c0:i*T+c0+cols], tile[i*cols:(i+1)*cols])
				copy(gotG16[i*T+c0:i*T+c0+cols], g16[i*cols:(i+1)*cols])
			}
		}
		if err := dev.Launch(mem, "xent_reduce", &k.XentReduce{RowLoss: at("rowloss"), Out: at("loss"), Rows: rows}, lower.ReduceDims); err != nil {
			return err
		}
		for _, c := range []struct {
			dst []byte
			src string
		}{{bytesOf(gotRowLoss), "rowloss"}, {bytesOf(gotLosses), "losses"}, {bytesOf(gotTotal[:]), "loss"}, {bytesOf(gotDB), "db"}} {
			if err := mem.ToHost(c.dst, at(c.src)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	tolF := tol.KernelF64
	if f32 {
		tolF = tol.KernelF32
	}
	if err := tol.Close(gotRowLoss, wantRowLoss, tol.KernelF64); err != nil {
		return fmt.Errorf("row losses: %v", err)
	}
	if err := tol.Close(dense.Convert[float64](gotLosses), wantLoss, tolF); err != nil {
		return fmt.Errorf("row losses in the dtype: %v", err)
	}
	if err := tol.Close(gotTotal[:], []float64{wantTotal}, tol.KernelF64); err != nil {
		return fmt.Errorf("reduced loss: %v", err)
	}
	if err := tol.Close(dense.Convert[float64](got), dense.Convert[float64](wantGrad), tolF); err != nil {
		return fmt.Errorf("gradient: %v", err)
	}
	// db is the column sums of the gradient as stored: summed here from
	// what the kernel stored, in float64, then rounded once to F.
	wantDB := make([]float64, T)
	for c := range wantDB {
		s := 0.0
		for i := 0; i < rows; i++ {
			s += float64(got[i*T+c])
		}
		wantDB[c] = float64(F(s))
	}
	if err := tol.Close(dense.Convert[float64](gotDB), wantDB, tolF); err != nil {
		return fmt.Errorf("db: %v", err)
	}
	if f32 {
		if err := sameBF16(gotG16, got); err != nil {
			return fmt.Errorf("bfloat16 gradient: %v", err)
		}
	}
	return nil
}

// lossFlags are the kernels' flags for o: XentSoft, XentIgnore, XentMean.
func lossFlags(o graph.LossOptions) int64 {
	f := int64(0)
	if o.SoftTargets {
		f |= k.XentSoft
	}
	if o.UseIgnoreIndex {
		f |= k.XentIgnore
	}
	if o.Reduction == graph.Mean {
		f |= k.XentMean
	}
	return f
}

// dtype is F's element size, whether it is float32, and the kernel name
// with F's suffix.
func dtype[F dense.Float]() (int64, bool, func(string) string) {
	if _, ok := any(F(0)).(float32); ok {
		return 4, true, func(b string) string { return b + "_f32" }
	}
	return 8, false, func(b string) string { return b + "_f64" }
}

// sameBF16: the bfloat16 copy of a float32 gradient is each stored value
// rounded to the nearest bfloat16, ties to even (bf16.cuh), bit for bit.
func sameBF16[F dense.Float](h []uint16, g []F) error {
	for i, v := range g {
		if want := k.BF16(float32(v)); h[i] != want {
			return fmt.Errorf("element %d: %#04x, want %#04x (the stored %v rounded)", i, h[i], want, v)
		}
	}
	return nil
}

// buffers names a kernel test's buffers.
type buffers struct {
	list []*lower.Buffer
	by   map[string]*lower.Buffer
}

func newBuffers(sizes map[string]int64) buffers {
	b := buffers{by: map[string]*lower.Buffer{}}
	names := make([]string, 0, len(sizes))
	for n := range sizes {
		names = append(names, n)
	}
	for i := 1; i < len(names); i++ { // a fixed order: IDs do not depend on map iteration
		for j := i; j > 0 && names[j] < names[j-1]; j-- {
			names[j], names[j-1] = names[j-1], names[j]
		}
	}
	for i, n := range names {
		buf := &lower.Buffer{ID: i, What: n, Bytes: sizes[n]}
		b.list = append(b.list, buf)
		b.by[n] = buf
	}
	return b
}

func toDevice[F float32 | float64](m run.Memory, p k.Ptr, v []F) error {
	return m.ToDevice(p, bytesOf(v))
}

func bytesOf[E any](s []E) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(s[0])))
}
