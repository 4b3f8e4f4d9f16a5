//go:build gpu

package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"unsafe"

	"dsx/backend/cuda/cudatest"
	"dsx/backend/cuda/lower"
	"dsx/cudakernels"
	"dsx/graph"
	"dsx/internal/dense"
	"dsx/internal/rowmath"
	"dsx/internal/tol"

	"gorgonia.org/cu"
)

// The kernel test: the fused xent kernels against rowmath.RowTerms and
// rowmath.RowGradScaled on the same inputs, within tol.KernelF64 /
// TolKernelF32 (float64 arithmetic, one rounding to the dtype).

// TestXentKernel runs the fused kernels (block per row, and the tiled one
// where T ≤ 4096) on logits whose rows have a stride ld > T, with NaN in the
// padding past the T valid columns and in a whole row past the batch, and
// compares them with the float64 reference rowmath.RowTerms / rowmath.RowGradScaled on
// the same inputs.
func TestXentKernel(t *testing.T) {
	requireGPU(t)
	for _, T := range append([]int{32, 33, 64, 65, 512, 513, 1024, 1025, 3000, 4096}, cudatest.Sizes...) {
		for name, o := range cudatest.LossCases(T) {
			for _, f32 := range []bool{true, false} {
				for _, warp := range []bool{false, true} {
					if tmax, _, _ := lower.XentTile(T); warp && (tmax == 0 || o.Softcap != 0) {
						continue // no tiled kernel (it has no soft cap)
					}
					t.Run(fmt.Sprintf("T=%d/%s/f32=%v/warp=%v", T, name, f32, warp), func(t *testing.T) {
						var err error
						if f32 {
							err = kernelCase[float32](T, o, name, warp)
						} else {
							err = kernelCase[float64](T, o, name, warp)
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

func kernelCase[F dense.Float](T int, o graph.LossOptions, name string, warp bool) error {
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
			z[i*ld+c] = F(r.NormFloat64() * cudatest.RowScales[i%len(cudatest.RowScales)])
		}
	}
	tg := dense.Convert[F](cudatest.TargetsFor(r, rows, T, o, name))
	ro := (*rowmath.Options)(&o)
	var esize int64 = 8
	f32 := false
	if _, ok := any(F(0)).(float32); ok {
		esize, f32 = 4, true
	}
	kn := func(b string) string {
		if f32 {
			return b + "_f32"
		}
		return b + "_f64"
	}
	// Reference.
	packed := make([]F, rows*T)
	for i := 0; i < rows; i++ {
		copy(packed[i*T:(i+1)*T], z[i*ld:i*ld+T])
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

	bufs := []*lower.Buffer{{What: "z", Bytes: int64(len(z)) * esize}, {What: "targets", Bytes: int64(len(tg)) * esize},
		{What: "weights", Bytes: int64(T) * 8}, {What: "rowloss", Bytes: rows * 8}, {What: "losses", Bytes: rows * esize},
		{What: "scales", Bytes: 16}, {What: "loss", Bytes: 8}}
	for i, b := range bufs {
		b.ID = i
	}
	bz, btg, bw, brl, bl, bs, bloss := bufs[0], bufs[1], bufs[2], bufs[3], bufs[4], bufs[5], bufs[6]
	got := make([]F, len(z))
	gotLoss := make([]float64, rows)
	gotLosses := make([]F, rows)
	var gotTotal [1]float64
	var gotScale [2]float64
	err := onDevice(func() error {
		mem, err := gpu{}.Alloc(bufs, "kernel test")
		if err != nil {
			return err
		}
		defer mem.Free()
		at := mem.Addr
		if err := mem.ToDevice(at(bz), bytesOf(z)); err != nil {
			return err
		}
		if err := mem.ToDevice(at(btg), bytesOf(tg)); err != nil {
			return err
		}
		wp := cudakernels.Ptr(0)
		wsum := float64(T)
		if o.ClassWeights != nil {
			if err := mem.ToDevice(at(bw), bytesOf(o.ClassWeights)); err != nil {
				return err
			}
			wp, wsum = at(bw), 0
			for _, w := range o.ClassWeights {
				wsum += w
			}
		}
		flags := cudakernels.XentGrad
		if o.SoftTargets {
			flags |= cudakernels.XentSoft
		}
		if o.UseIgnoreIndex {
			flags |= cudakernels.XentIgnore
		}
		if o.Reduction == graph.Mean {
			flags |= cudakernels.XentMean
		}
		cache := int64(T)*esize <= lower.CacheBytes
		if cache {
			flags |= cudakernels.XentCache
		}
		err = launch(kn("xent_scale"), &cudakernels.XentScale{Tg: at(btg), W: wp, ScaleP: at(bs), Rows: rows, T: int64(T), Flags: flags, Ignore: int64(o.IgnoreIndex)},
			lower.Dims{GridX: 1, GridY: 1, BlockX: 256, BlockY: 1})
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
		err = launch(xname, &cudakernels.Xent{Z: at(bz), Ld: int64(ld), Tg: at(btg), Ldt: int64(T), W: wp, RowLoss: at(brl),
			Losses: at(bl), ScaleP: at(bs), Rows: rows, T: int64(T), Flags: flags, Ignore: int64(o.IgnoreIndex),
			Eps: o.LabelSmoothing, WSum: wsum, GScale: 1, Softcap: o.Softcap, ZLoss: o.ZLoss}, d)
		if err != nil {
			return err
		}
		err = launch("xent_reduce", &cudakernels.XentReduce{RowLoss: at(brl), Out: at(bloss), Rows: rows},
			lower.Dims{GridX: 1, GridY: 1, BlockX: 256, BlockY: 1})
		if err != nil {
			return err
		}
		for _, c := range []struct {
			dst []byte
			src *lower.Buffer
		}{{bytesOf(got), bz}, {bytesOf(gotLoss), brl}, {bytesOf(gotLosses), bl}, {bytesOf(gotTotal[:]), bloss}, {bytesOf(gotScale[:]), bs}} {
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
	return nil
}

// launch runs one kernel with a typed argument struct (on the device
// thread).
func launch(name string, args any, d lower.Dims) error {
	fn, ok := device.fn[name]
	if !ok {
		return fmt.Errorf("no kernel %s", name)
	}
	v := reflect.ValueOf(args).Elem()
	ptrs := make([]unsafe.Pointer, v.NumField())
	for i := range ptrs {
		ptrs[i] = unsafe.Pointer(v.Field(i).UnsafeAddr())
	}
	if err := fn.Launch(d.GridX, d.GridY, 1, d.BlockX, d.BlockY, 1, d.Shmem, cu.NoStream, ptrs); err != nil {
		return fmt.Errorf("launching %s: %w", name, err)
	}
	return cu.Synchronize()
}

func bytesOf[F float32 | float64](s []F) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(s[0])))
}
