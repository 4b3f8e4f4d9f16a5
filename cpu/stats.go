package cpu

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"dsx/backend"
	"dsx/backend/kit"
	"dsx/internal/dense"

	"gonum.org/v1/gonum/blas"
)

// MemStats is the layer's footprint for its chunks (kit.FootprintRows:
// what the chunk loop holds) and its chunk rows (kit.Stats).
func (l *layer) MemStats() backend.MemStats {
	m, _ := kit.FootprintRows(l.cfg, l.chunk.Rows)
	return m
}

// ChunkReason says why the layer's batches run in chunks of
// MemStats().ChunkRows rows (for dsx bench and dsx plan).
func (l *layer) ChunkReason() string { return l.chunk.Why }

// ChunkPlan is the rows per chunk a CPU layer of cfg would run its
// training batches in, and why (dsx plan).
func ChunkPlan(cfg backend.Config) (rows int, why string) {
	c := chunkRows(cfg)
	return c.Rows, c.Why
}

// FloorMs times the step's products alone (kit.Stats), as the chunk
// loop runs them: per chunk x_c·W, x_cᵀ·dz (accumulated) and, with dx,
// dz·Wᵀ, on the last batch the layer ran (its x, and the chunk buffer's
// values as dz); the median of reps runs, in milliseconds. It changes
// the layer's gradients, not its parameters.
func (l *layer) FloorMs(rows, reps int) (float64, error) {
	if rows < 1 || rows > l.cfg.B || reps < 1 {
		return 0, fmt.Errorf("cpu: FloorMs(%d, %d): want 1 ≤ rows ≤ %d and reps ≥ 1", rows, reps, l.cfg.B)
	}
	if err := l.check(); err != nil {
		return 0, err
	}
	switch {
	case l.t32 != nil:
		return floorMs(l.t32, dense.View[float32](l.w), rows, l.chunk.Rows, reps)
	case l.t64 != nil:
		return floorMs(l.t64, dense.View[float64](l.w), rows, l.chunk.Rows, reps)
	}
	return 0, errors.New("cpu: FloorMs before any batch: it times the products on the last batch's x")
}

func floorMs[F dense.Float](t *trainer[F], w []F, rows, chunk, reps int) (float64, error) {
	if len(t.lastX) < rows*t.cfg.N {
		return 0, fmt.Errorf("cpu: FloorMs(%d rows): the last batch had %d", rows, len(t.lastX)/t.cfg.N)
	}
	N, T, want := t.cfg.N, t.cfg.T, t.cfg.Want
	dw := make([]F, 0)
	if t.dw != nil {
		dw = dense.View[F](t.dw)
	}
	ms := make([]float64, 0, reps)
	for i := -1; i < reps; i++ {
		t0 := time.Now()
		for r0 := 0; r0 < rows; r0 += chunk {
			n := min(chunk, rows-r0)
			xc, z := t.lastX[r0*N:(r0+n)*N], t.z[:n*T]
			gemm(blas.NoTrans, blas.NoTrans, n, T, N, xc, N, w, T, 0, z, T)
			if want.DW {
				beta := F(1)
				if r0 == 0 {
					beta = 0
				}
				gemm(blas.Trans, blas.NoTrans, N, T, n, xc, N, z, T, beta, dw, T)
			}
			if want.DX {
				gemm(blas.NoTrans, blas.Trans, n, N, T, z, T, w, T, 0, dense.View[F](t.dx)[r0*N:(r0+n)*N], N)
			}
		}
		if i >= 0 {
			ms = append(ms, float64(time.Since(t0).Nanoseconds())/1e6)
		}
	}
	sort.Float64s(ms)
	return ms[len(ms)/2], nil
}
