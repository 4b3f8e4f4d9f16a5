package run

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"unsafe"

	"dsx/backend"
	"dsx/backend/cuda/lower"
	"dsx/cudakernels"
	"dsx/graph"

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
	if err := backend.CheckOptions(cfg, name, backend.Support{Modes: []string{"fp32", "tf32", "bf16"}, Xents: []string{"fused", "unfused"},
		Storages: []string{"bf16"}, Chunks: true, VocabTiles: true}); err != nil {
		return nil, err
	}
	low, err := lower.Lower(cfg)
	if err != nil {
		return nil, err
	}
	l := &Layer{name: name, dev: dev, low: low, cfg: cfg, loss: make([]float64, 1)}
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

// Layer is a lowered layer on a Device: backend.Layer, backend.Stats and
// backend.Resident.
type Layer struct {
	name  string
	dev   Device
	low   *lower.Layer
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
	for _, b := range l.low.OptimState {
		if err := l.mem.Zero(b); err != nil {
			return fmt.Errorf("%s: zeroing %s: %w", l.name, b.What, err)
		}
	}
	return nil
}

func (l *Layer) SetParams(W, b *tensor.Dense) error {
	if err := l.check(); err != nil {
		return err
	}
	if err := backend.CheckParams(l.cfg, W, b); err != nil {
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
	rows, err := backend.CheckBatch(l.cfg, x, targets)
	if err != nil {
		return 0, err
	}
	x, targets = contiguous(x), contiguous(targets)
	o := &l.cfg.Loss
	switch d := targets.Data().(type) {
	case []float32:
		err = graph.CheckTargets(d, rows, l.cfg.T, o)
	case []float64:
		err = graph.CheckTargets(d, rows, l.cfg.T, o)
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", l.name, err)
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
		p, c := l.low.Train, l.cfg
		for _, o := range []struct {
			buf   *lower.Buffer
			into  **tensor.Dense
			shape []int
		}{{p.Losses, &r.Losses, []int{rows}}, {p.DW, &r.DW, []int{c.N, c.T}}, {p.DB, &r.DB, []int{c.T}}, {p.DX, &r.DX, []int{rows, c.N}}} {
			if o.buf == nil {
				continue
			}
			if *o.into, err = l.toHost(o.buf, o.shape...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// stepReady checks that Step can run.
func (l *Layer) stepReady() error {
	if l.cfg.Optimizer.Kind == "" {
		return fmt.Errorf("%s: Step needs an optimizer in the layer's Config", l.name)
	}
	if w := l.cfg.Want; !w.W || !w.B {
		return fmt.Errorf("%s: Step needs the gradients of W and b (layer computes %v)", l.name, w)
	}
	return nil
}

func (l *Layer) Step(x, targets *tensor.Dense) (float64, error) {
	if err := l.stepReady(); err != nil {
		return 0, err
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
	l.iter++
	for _, o := range l.optim {
		if err := o.r.Run(l.addr, lower.Ctx{Rows: rows, First: true, Iter: l.iter}); err != nil {
			return 0, err
		}
	}
	return loss, nil
}

// checkedLoss reads the loss of the training plan just run over rows rows.
// When it is not finite the error is a *graph.NonFiniteError that names the
// row and what is to blame, as the CPU backend's: the host reads the float64
// per-row losses, recomputes the first bad row's logits x·W + b in the
// layer's dtype from x's row and the parameters (copied back for this), and
// backend.ExplainNonFinite looks at them. All of it is on the error path.
func (l *Layer) checkedLoss(rows int) (float64, error) {
	loss, err := l.readLoss()
	if err != nil || loss-loss == 0 {
		return loss, err
	}
	rl := make([]float64, rows)
	if err := l.mem.ToHost(bytesOf(rl), l.addr(l.low.Train.RowLoss)); err != nil {
		return 0, fmt.Errorf("%s: reading the per-row losses: %w", l.name, err)
	}
	W, err := l.toHost(l.low.W, l.cfg.N, l.cfg.T)
	if err != nil {
		return 0, err
	}
	b, err := l.toHost(l.low.Bias, l.cfg.T)
	if err != nil {
		return 0, err
	}
	r := 0
	for r < rows && rl[r]-rl[r] == 0 {
		r++
	}
	if r == rows { // every row finite: only their sum overflowed
		return 0, &graph.NonFiniteError{Row: -1, Col: -1}
	}
	x := tensor.New(tensor.WithShape(1, l.cfg.N), tensor.Of(l.cfg.DType))
	xb, h := denseBytes(x), []uint16(nil)
	if l.low.X.BF16 { // x's row in bfloat16, widened below
		h = make([]uint16, l.cfg.N)
		xb = bytesOf(h)
	}
	if err := l.mem.ToHost(xb, l.addr(l.low.X)+cudakernels.Ptr(int64(r)*int64(len(xb)))); err != nil {
		return 0, fmt.Errorf("%s: reading x's row %d: %w", l.name, r, err)
	}
	for i, v := range h {
		x.Data().([]float32)[i] = math.Float32frombits(uint32(v) << 16)
	}
	var nf *graph.NonFiniteError
	switch xd := x.Data().(type) {
	case []float32:
		nf = rowNonFinite(xd, W.Data().([]float32), b.Data().([]float32), rl[r])
	case []float64:
		nf = rowNonFinite(xd, W.Data().([]float64), b.Data().([]float64), rl[r])
	}
	return 0, backend.ExplainNonFinite(nf, r, x, W, b)
}

// rowNonFinite recomputes one row's logits z = x·W + b (x N, W N×T, b T)
// in F and names its first non-finite logit (graph.FindNonFinite; row 0).
func rowNonFinite[F float32 | float64](x, W, b []F, loss float64) *graph.NonFiniteError {
	T := len(b)
	z := make([]F, T)
	for k, xv := range x {
		for c, w := range W[k*T : (k+1)*T] {
			z[c] += xv * w
		}
	}
	for c := range z {
		z[c] += b[c]
	}
	return graph.FindNonFinite(z, []float64{loss}, T)
}

func (l *Layer) Logits(x *tensor.Dense) (*tensor.Dense, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	rows, err := backend.CheckBatch(l.cfg, x, nil)
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

// toDevice copies the first n elements of t to dst. A bfloat16 buffer (x
// under bfloat16 storage) gets t's float32 values rounded to bfloat16 on the
// host, as they are copied: half the bytes cross the bus, and the device
// never holds x in float32.
func (l *Layer) toDevice(dst *lower.Buffer, t *tensor.Dense, n int64) error {
	var b []byte
	if dst.BF16 {
		f, ok := t.Data().([]float32)
		if !ok {
			return fmt.Errorf("%s: %s: bfloat16 storage takes float32 data, not %T", l.name, dst.What, t.Data())
		}
		l.half = toBF16(l.half, f[:n])
		b = bytesOf(l.half)
	} else if b = denseBytes(t); b != nil {
		b = b[:n*int64(len(b)/max(1, t.Len()))]
	}
	if b == nil {
		return fmt.Errorf("%s: %s: unsupported data %T", l.name, dst.What, t.Data())
	}
	if err := l.mem.ToDevice(l.addr(dst), b); err != nil {
		return fmt.Errorf("%s: copying %s to the device: %w", l.name, dst.What, err)
	}
	return nil
}

// toHost copies src into a new tensor of shape (widening a bfloat16 buffer,
// dx under bfloat16 storage, to float32).
func (l *Layer) toHost(src *lower.Buffer, shape ...int) (*tensor.Dense, error) {
	t := tensor.New(tensor.WithShape(shape...), tensor.Of(l.cfg.DType))
	if src.BF16 {
		f := t.Data().([]float32)
		l.half = slices.Grow(l.half[:0], len(f))[:len(f)]
		if err := l.mem.ToHost(bytesOf(l.half), l.addr(src)); err != nil {
			return nil, fmt.Errorf("%s: copying %s to the host: %w", l.name, src.What, err)
		}
		for i, h := range l.half {
			f[i] = math.Float32frombits(uint32(h) << 16)
		}
		return t, nil
	}
	if err := l.mem.ToHost(denseBytes(t), l.addr(src)); err != nil {
		return nil, fmt.Errorf("%s: copying %s to the host: %w", l.name, src.What, err)
	}
	return t, nil
}

// toBF16 rounds f to bfloat16 (nearest, ties to even; NaN stays NaN) into
// dst, grown as needed: the host side of loading x under bfloat16 storage.
func toBF16(dst []uint16, f []float32) []uint16 {
	dst = slices.Grow(dst[:0], len(f))[:len(f)]
	for i, v := range f {
		u := math.Float32bits(v)
		if u&0x7fffffff > 0x7f800000 {
			dst[i] = uint16(u>>16) | 0x40
			continue
		}
		u += 0x7fff + (u>>16)&1
		dst[i] = uint16(u >> 16)
	}
	return dst
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
