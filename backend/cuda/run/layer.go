package run

import (
	"errors"
	"fmt"
	"unsafe"

	"dsx/backend"
	"dsx/backend/cuda/lower"
	"dsx/backend/kit"
	"dsx/internal/rowmath"

	"gorgonia.org/tensor"
)

// Open lowers cfg's layer graph and allocates its buffers on dev. name is
// the backend's name for errors ("cuda").
func Open(dev Device, name string, cfg backend.Config) (backend.Layer, error) {
	if err := cfg.Spec.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Optimizer.Validate(); err != nil {
		return nil, err
	}
	cfg.Optimizer = cfg.Optimizer.WithDefaults()
	if err := lower.Capabilities().Check(name, cfg); err != nil {
		return nil, err
	}
	low, err := lower.Lower(cfg)
	if err != nil {
		return nil, err
	}
	l := &Layer{name: name, dev: dev, low: low, cfg: cfg, loss: make([]float64, 1), ranks: kit.DataParallel(cfg)}
	what := fmt.Sprintf("layer B×N×T = %d×%d×%d %v", cfg.B, cfg.N, cfg.T, cfg.DType)
	err = dev.Do(func() error {
		l.free0, _ = dev.FreeBytes()
		if l.mem, err = dev.Alloc(low.Buffers, what); err != nil {
			return err
		}
		l.addr = l.mem.Addr
		if l.train, err = l.bind(low.Train.Steps); err != nil {
			return err
		}
		if l.fwd, err = l.bind(low.Forward.Steps); err != nil {
			return err
		}
		if l.optim, err = l.bind(low.Optim); err != nil {
			return err
		}
		if l.refresh, err = l.bind(low.Refresh); err != nil {
			return err
		}
		for _, b := range []*lower.Buffer{low.W, low.Bias, low.W16} {
			if b == nil {
				continue
			}
			if err := l.mem.Zero(b); err != nil {
				return fmt.Errorf("%s: zeroing %s: %w", name, b.What, err)
			}
		}
		if low.ClassWeights != nil {
			w := append([]float64(nil), cfg.Loss.ClassWeights...)
			if err := l.mem.ToDevice(l.addr(low.ClassWeights), bytesOf(w)); err != nil {
				return fmt.Errorf("%s: copying class weights: %w", name, err)
			}
		}
		return l.resetOptim()
	})
	if err != nil {
		if l.mem != nil {
			dev.Do(l.mem.Free)
		}
		return nil, err
	}
	return l, nil
}

// Layer is a lowered layer on a Device: backend.Layer, kit.Stats and
// kit.Resident.
type Layer struct {
	name  string
	dev   Device
	low   *lower.Program
	cfg   backend.Config
	mem   Memory
	addr  lower.Addr
	train []bound
	fwd   []bound
	optim []bound
	// refresh remakes W's bfloat16 copy after the host sets W (bfloat16
	// storage; none otherwise).
	refresh []bound
	iter    int // optimizer steps taken (Adam's bias correction)
	closed  bool
	loss    []float64 // one value, its own allocation (cgo may be passed it)
	free0   int64     // free device memory before the layer allocated
	loaded  int       // rows of the batch Load left on the device (0: none)
	half    []uint16  // host staging of bfloat16 copies (x in, dx out)
	par     parallel  // a data-parallel layer's state (parallel.go)
	ranks   *kit.Ranks
}

// bound is a plan step ready to run.
type bound struct {
	s *lower.Step
	r Runner
}

func (l *Layer) bind(steps []*lower.Step) ([]bound, error) {
	out := make([]bound, len(steps))
	for i, s := range steps {
		r, err := l.dev.Bind(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", l.name, s.Op.Describe(), err)
		}
		out[i] = bound{s, r}
	}
	return out, nil
}

// runPlan runs a bound plan over rows rows (inside Do).
func (l *Layer) runPlan(p *lower.Plan, steps []bound, rows int, gemmOnly bool, after func(r0, n int) error) error {
	chunk := l.low.Chunk
	if p.Chunk > 0 {
		chunk = p.Chunk
	}
	return p.Run(rows, chunk, gemmOnly, func(i int, c lower.Ctx) error {
		if l.ranks != nil && lower.IsScale(steps[i].s.Op) {
			return nil // the global batch's scales, written by parallel.go
		}
		return steps[i].r.Run(l.addr, c)
	}, after)
}

func (l *Layer) Config() backend.Config { return l.cfg }

func (l *Layer) check() error {
	if l.closed {
		return fmt.Errorf("%s: layer used after Close", l.name)
	}
	return nil
}

// resetOptim zeroes the optimizer state (inside Do).
func (l *Layer) resetOptim() error {
	l.iter = 0
	for _, sb := range l.low.OptimState {
		if err := l.mem.Zero(sb.Buf); err != nil {
			return fmt.Errorf("%s: zeroing %s: %w", l.name, sb.Buf.What, err)
		}
	}
	return nil
}

func (l *Layer) SetParams(W, b *tensor.Dense) error {
	if err := l.check(); err != nil {
		return err
	}
	if err := kit.CheckParams(l.cfg, W, b); err != nil {
		return err
	}
	W, b = contiguous(W), contiguous(b)
	return l.dev.Do(func() error {
		if err := l.toDevice(l.low.W, W, int64(l.cfg.N*l.cfg.T)); err != nil {
			return err
		}
		if err := l.toDevice(l.low.Bias, b, int64(l.cfg.T)); err != nil {
			return err
		}
		for _, s := range l.refresh {
			if err := s.r.Run(l.addr, lower.Ctx{Rows: 1, First: true}); err != nil {
				return err
			}
		}
		return l.resetOptim()
	})
}

func (l *Layer) Params() (*tensor.Dense, *tensor.Dense, error) {
	if err := l.check(); err != nil {
		return nil, nil, err
	}
	var W, b *tensor.Dense
	err := l.dev.Do(func() error {
		var err error
		if W, err = l.toHost(l.low.W, l.cfg.N, l.cfg.T); err != nil {
			return err
		}
		b, err = l.toHost(l.low.Bias, l.cfg.T)
		return err
	})
	return W, b, err
}

// load validates a batch on the host (the checks every backend makes) and
// copies it to the device (inside Do).
func (l *Layer) load(x, targets *tensor.Dense) (int, error) {
	if err := l.check(); err != nil {
		return 0, err
	}
	if targets == nil {
		return 0, errors.New("batch: targets are nil")
	}
	rows, err := kit.CheckBatch(l.cfg, x, targets)
	if err != nil {
		return 0, err
	}
	x, targets = contiguous(x), contiguous(targets)
	o := &l.cfg.Loss
	switch d := targets.Data().(type) {
	case []float32:
		err = rowmath.CheckTargets(d, rows, l.cfg.T, (*rowmath.Options)(o))
	case []float64:
		err = rowmath.CheckTargets(d, rows, l.cfg.T, (*rowmath.Options)(o))
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", l.name, err)
	}
	if l.ranks != nil {
		l.par.denom = kit.LocalDenominators(l.cfg, targets, rows)
	}
	if err := l.toDevice(l.low.X, x, int64(rows*l.cfg.N)); err != nil {
		return 0, err
	}
	tn := int64(rows)
	if o.SoftTargets {
		tn *= int64(l.cfg.T)
	}
	if err := l.toDevice(l.low.Targets, targets, tn); err != nil {
		return 0, err
	}
	l.loaded = rows
	return rows, nil
}

func (l *Layer) readLoss() (float64, error) {
	if err := l.mem.ToHost(bytesOf(l.loss), l.addr(l.low.Train.Loss)); err != nil {
		return 0, fmt.Errorf("%s: reading the loss: %w", l.name, err)
	}
	return l.loss[0], nil
}

func (l *Layer) Compute(x, targets *tensor.Dense) (*backend.Result, error) {
	if l.ranks != nil {
		return l.parallel(x, targets, false, false)
	}
	var r *backend.Result
	err := l.dev.Do(func() error {
		rows, err := l.load(x, targets)
		if err != nil {
			return err
		}
		if err := l.runPlan(l.low.Train, l.train, rows, false, nil); err != nil {
			return err
		}
		r = &backend.Result{}
		if r.Loss, err = l.checkedLoss(rows); err != nil {
			return err
		}
		return l.results(r, rows)
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// results copies the training plan's outputs of a batch of rows into r
// (inside Do).
func (l *Layer) results(r *backend.Result, rows int) error {
	p, c := l.low.Train, l.cfg
	for _, o := range []struct {
		buf   *lower.Buffer
		into  **tensor.Dense
		shape []int
	}{{p.Losses, &r.Losses, []int{rows}}, {p.DW, &r.DW, []int{c.N, c.T}}, {p.DB, &r.DB, []int{c.T}}, {p.DX, &r.DX, []int{rows, c.N}}} {
		if o.buf == nil || o.shape[0] == 0 {
			continue
		}
		var err error
		if *o.into, err = l.toHost(o.buf, o.shape...); err != nil {
			return err
		}
	}
	return nil
}

func (l *Layer) Step(x, targets *tensor.Dense) (float64, error) {
	if err := kit.CheckStep(l.name, l.cfg); err != nil {
		return 0, err
	}
	if l.ranks != nil {
		r, err := l.parallel(x, targets, false, true)
		if err != nil {
			return 0, err
		}
		return r.Loss, nil
	}
	var loss float64
	err := l.dev.Do(func() error {
		rows, err := l.load(x, targets)
		if err != nil {
			return err
		}
		loss, err = l.step(rows)
		return err
	})
	return loss, err
}

// step runs the training plan and the optimizer on the loaded batch (inside
// Do). The loss is read before the optimizer runs (one 8-byte copy and a
// wait for the device between the two): a batch whose loss is not finite is
// an error, and the parameters, the optimizer's state and its step count
// stay as they were.
func (l *Layer) step(rows int) (float64, error) {
	if err := l.runPlan(l.low.Train, l.train, rows, false, nil); err != nil {
		return 0, err
	}
	loss, err := l.checkedLoss(rows)
	if err != nil {
		return 0, err
	}
	return loss, l.update(rows)
}

// update runs the optimizer's steps (inside Do).
func (l *Layer) update(rows int) error {
	l.iter++
	for _, o := range l.optim {
		if err := o.r.Run(l.addr, lower.Ctx{Rows: max(1, rows), First: true, Iter: l.iter}); err != nil {
			return err
		}
	}
	return nil
}

func (l *Layer) Logits(x *tensor.Dense) (*tensor.Dense, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	rows, err := kit.CheckBatch(l.cfg, x, nil)
	if err != nil {
		return nil, err
	}
	x = contiguous(x)
	var z *tensor.Dense
	err = l.dev.Do(func() error {
		l.loaded = 0
		if err := l.toDevice(l.low.X, x, int64(rows*l.cfg.N)); err != nil {
			return err
		}
		z = tensor.New(tensor.WithShape(rows, l.cfg.T), tensor.Of(l.cfg.DType))
		host := denseBytes(z)
		row := int64(l.cfg.T) * l.low.ESize
		return l.runPlan(l.low.Forward, l.fwd, rows, false, func(r0, n int) error {
			if err := l.mem.ToHost(host[int64(r0)*row:int64(r0+n)*row], l.addr(l.low.Forward.Logits)); err != nil {
				return fmt.Errorf("%s: copying logits to the host: %w", l.name, err)
			}
			return nil
		})
	})
	return z, err
}

// Close frees the layer's device memory; it is safe to call twice.
func (l *Layer) Close() error {
	if l.closed {
		return nil
	}
	l.closed = true
	return l.dev.Do(l.mem.Free)
}

func contiguous(t *tensor.Dense) *tensor.Dense {
	if t.RequiresIterator() {
		return t.Materialize().(*tensor.Dense)
	}
	return t
}

// denseBytes is the bytes of a float32 or float64 tensor's data (nil for
// other types), without copying.
func denseBytes(t *tensor.Dense) []byte {
	switch d := t.Data().(type) {
	case []float32:
		return bytesOf(d)
	case []float64:
		return bytesOf(d)
	}
	return nil
}

// bytesOf views a float slice as bytes.
func bytesOf[F float32 | float64 | uint16](s []F) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(s[0])))
}
