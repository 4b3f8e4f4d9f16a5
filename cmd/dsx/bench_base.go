package main

import (
	"fmt"

	"dsx/backend"
	"dsx/graph"
	"dsx/internal/benchdata"
	"dsx/internal/dense"

	"gorgonia.org/tensor"
)

// benchSetting is one precision a row runs in: a matmul mode and a storage.
type benchSetting struct {
	mode    backend.MatMode
	storage backend.Storage
}

// benchSettings crosses the storages with the modes; bfloat16 storage
// multiplies bfloat16 operands, so it goes with mode bf16 alone.
func benchSettings(storages []backend.Storage, modes []backend.MatMode) []benchSetting {
	var out []benchSetting
	for _, st := range storages {
		if st == backend.StorageBF16 {
			out = append(out, benchSetting{backend.BF16, st})
			continue
		}
		for _, m := range modes {
			out = append(out, benchSetting{m, st})
		}
	}
	return out
}

// benchConfig is the layer every row of a shape starts from: SGD, the
// gradients asked for, the loss options, whole batches (fp32, f32 storage,
// fused: the reference a --check compares with).
func benchConfig(sh shape, o benchOpts) backend.Config {
	return backend.Config{
		Spec: graph.Spec{B: sh.B, N: sh.N, T: sh.T, DType: o.dt,
			Want: graph.Want{DW: true, DB: true, DX: o.dx},
			Loss: graph.LossOptions{Softcap: o.softcap, ZLoss: o.zloss}},
		Optimizer: backend.Optimizer{Kind: backend.SGD, LR: 1e-3},
		ChunkRows: -1,
	}
}

// statRows is how many rows Loss0 and Entropy0 average, as the peers do.
const statRows = 256

// benchBaseline is what every row of one shape, inputs and backend is
// compared with: the reference result for --check and the row statistics.
type benchBaseline struct {
	ref             *backend.Result
	loss0, entropy0 float64
}

// benchBase opens the reference layer (fp32, float32 storage, fused, the
// batch whole) once: its Compute is the reference of --check, and its
// logits of the first rows give Loss0 and Entropy0.
func benchBase(be backend.Backend, sh shape, d benchData, o benchOpts) (benchBaseline, error) {
	var base benchBaseline
	cfg := benchConfig(sh, o)
	if !o.check {
		cfg.ChunkRows = 0 // statistics only: any chunking will do
	}
	l, err := be.Open(cfg)
	if err != nil {
		return base, fmt.Errorf("reference layer: %w", err)
	}
	defer l.Close()
	if err := l.SetParams(d.w, d.b); err != nil {
		return base, err
	}
	if o.check {
		if base.ref, err = l.Compute(d.x, d.y); err != nil {
			return base, err
		}
	}
	rows := min(statRows, sh.B)
	xs, err := d.x.Slice(tensor.S(0, rows))
	if err != nil {
		return base, err
	}
	// A slice of one row drops the row dimension: shape it rows×N again.
	xr := xs.(*tensor.Dense).Materialize().(*tensor.Dense)
	if err := xr.Reshape(rows, sh.N); err != nil {
		return base, err
	}
	z, err := l.Logits(xr)
	if err != nil {
		return base, err
	}
	yv := dense.F64(d.y)
	base.loss0, base.entropy0 = benchdata.RowStats(dense.F64(z), sh.T, func(r int) int { return int(yv[r]) })
	return base, nil
}
