package conformance

// The declaration (Backend.Capabilities) against Open: everything declared
// opens, everything else is refused with ErrNotImplemented, so that a
// caller can trust the declaration without trying.

import (
	"errors"
	"fmt"
	"testing"

	"dsx/backend"
	"dsx/dist/disttest"
	"dsx/graph"

	"gorgonia.org/tensor"
)

// singleOptions are the loss options one at a time (LossCaps names them).
var singleOptions = []struct {
	name string
	o    graph.LossOptions
}{
	{"soft targets", graph.LossOptions{SoftTargets: true}},
	{"label smoothing", graph.LossOptions{LabelSmoothing: 0.1}},
	{"class weights", graph.LossOptions{ClassWeights: []float64{1, 2, 3, 4}}},
	{"ignore index", graph.LossOptions{UseIgnoreIndex: true, IgnoreIndex: -100}},
	{"softcap", graph.LossOptions{Softcap: 5}},
	{"z-loss", graph.LossOptions{ZLoss: 1e-4}},
}

func declared(t *testing.T, b backend.Backend, caps backend.Capabilities) {
	if !caps.HasXent(backend.Fused) {
		t.Errorf("%s declares no Fused softmax-cross-entropy, which every backend must run", b.Name())
	}
	dt := tensor.Float32
	if !caps.HasDType(dt) && len(caps.DTypes) > 0 {
		dt = caps.DTypes[0]
	}
	base := backend.Config{Spec: graph.Spec{B: 4, N: 3, T: 4, DType: dt, Want: graph.Want{DW: true, DB: true}}}
	// try opens cfg and checks the outcome against the declaration.
	try := func(what string, cfg backend.Config, ok bool) {
		t.Helper()
		l, err := b.Open(cfg)
		if l != nil {
			defer l.Close()
		}
		switch {
		case ok && err != nil:
			t.Errorf("%s: declared, but Open fails: %v", what, err)
		case !ok && !errors.Is(err, backend.ErrNotImplemented):
			t.Errorf("%s: not declared, but Open gives %v, not ErrNotImplemented", what, err)
		}
	}
	for _, d := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		cfg := base
		cfg.DType = d
		try(fmt.Sprintf("%v layers", d), cfg, caps.HasDType(d))
	}
	for _, m := range backend.MatModes() {
		cfg := base
		cfg.MatMode = m
		try("matmul mode "+m.String(), cfg, caps.HasMatMode(m) && (m == backend.FP32 || dt == tensor.Float32))
	}
	for _, st := range backend.Storages() {
		cfg := base
		cfg.Storage = st
		try("storage "+st.String(), cfg, caps.HasStorage(st) && (st == backend.StorageF32 || dt == tensor.Float32))
	}
	chunked := base
	chunked.ChunkRows = 2
	try("chunked batches", chunked, caps.Chunks)
	// Open needs no collective, so one rank of a world of two opens alone.
	parallel := base
	parallel.Comm = disttest.World(2)[0]
	try("data-parallel steps", parallel, caps.DataParallel)
	for _, x := range backend.XentImpls() {
		xc, has := caps.Xents[x]
		cfg := base
		cfg.Xent = x
		try(x.String()+" softmax-cross-entropy", cfg, has)
		if !has {
			continue
		}
		for _, o := range singleOptions {
			c := cfg
			c.Loss = o.o
			try(fmt.Sprintf("%v with %s", x, o.name), c, xc.Loss.Missing(o.o) == "")
		}
		tiles := cfg
		tiles.VocabTile = 2
		try(fmt.Sprintf("%v over vocabulary tiles", x), tiles, xc.VocabTiles)
	}
}
