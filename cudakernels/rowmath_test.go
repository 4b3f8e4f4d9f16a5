package cudakernels_test

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"dsx/cudakernels"
	"dsx/internal/rowmath"
	"dsx/internal/tol"
)

// startRowmath compiles testdata/rowmath.cc (the kernels' headers for the
// host) with g++ and starts it; the test is skipped without g++.
func startRowmath(t *testing.T) *host {
	t.Helper()
	gxx, err := exec.LookPath("g++")
	if err != nil {
		t.Skip("skipped: no g++ to compile xent_row.cuh and xent_acc.cuh for the host (Debian: apt-get install g++)")
	}
	bin := filepath.Join(t.TempDir(), "rowmath")
	if out, err := exec.Command(gxx, "-O1", "-std=c++11", "-o", bin, "testdata/rowmath.cc", "-lm").CombinedOutput(); err != nil {
		t.Fatalf("g++ testdata/rowmath.cc: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	h := &host{in: stdin, out: bufio.NewScanner(stdout)}
	h.out.Buffer(nil, 1<<20)
	return h
}

// TestRowMath checks the per-row arithmetic the loss kernels share
// (xent_row.cuh: the target coefficients a_c and α_c, the loss from a row's
// gathered statistics, the gradient of one element, the soft cap) against
// the Go reference rowmath.RowTerms and rowmath.RowGradScaled, and the label
// decode against its definition, without a GPU: testdata/rowmath.cc
// compiles the header for the host with g++. The gathering itself (max,
// Σ exp, the smoothing sums over threads) is the kernels' and is checked on
// the GPU (backend/cuda TestKernel*) and, as the emulator runs it, by the
// conformance suite.
func TestRowMath(t *testing.T) {
	h := startRowmath(t)

	rng := rand.New(rand.NewPCG(7, 11))
	row := func(T int, offset, spread float64) []float64 {
		z := make([]float64, T)
		for i := range z {
			z[i] = offset + spread*rng.NormFloat64()
		}
		return z
	}
	// The float64 part of a kernel and of the reference: the same formulas
	// with sums in another order.
	tl := tol.KernelF64
	for _, c := range []struct {
		name      string
		T         int
		offset    float64 // added to every logit: cancellation shows here
		spread    float64
		o         rowmath.Options
		soft      bool
		label     int
		sc, sz, g float64 // the reduction's scales and the upstream gradient
	}{
		{"plain", 10, 0, 1, rowmath.Options{}, false, 3, 1, 1, 1},
		{"T=1", 1, 0, 1, rowmath.Options{}, false, 0, 1, 1, 1},
		{"offset 1e15", 37, 1e15, 3, rowmath.Options{}, false, 5, 0.25, 0.25, 1},
		{"offset 3e60", 100, 3e60, 0, rowmath.Options{}, false, 0, 1, 1, 1},
		{"outliers", 1000, 0, 40, rowmath.Options{}, false, 999, 1e-3, 1e-3, 2},
		{"smoothing+weights", 33, 5, 2, rowmath.Options{LabelSmoothing: 0.1, ClassWeights: weights(rng, 33)}, false, 7, 0.03, 0.1, 1},
		{"soft targets", 50, -3, 2, rowmath.Options{SoftTargets: true, LabelSmoothing: 0.2, ClassWeights: weights(rng, 50)}, true, -1, 0.5, 0.5, 1},
		{"softcap", 64, 0, 60, rowmath.Options{Softcap: 30}, false, 11, 1, 1, 1},
		{"softcap+zloss+smoothing", 129, 10, 20, rowmath.Options{Softcap: 15, ZLoss: 1e-4, LabelSmoothing: 0.05}, false, 128, 0.1, 0.2, 1},
		{"zloss large lse", 500, 1e4, 1, rowmath.Options{ZLoss: 1e-4}, false, 2, 1, 1, 1},
		{"ignored", 20, 0, 1, rowmath.Options{UseIgnoreIndex: true, IgnoreIndex: -100, ZLoss: 1e-3}, false, -100, 1, 1, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := c.o
			z := row(c.T, c.offset, c.spread)
			var soft []float64
			if c.soft {
				soft = probs(rng, c.T)
			}
			wantCE, wantZL, _ := rowmath.RowTerms(z, c.label, soft, &o)
			a, alpha := h.coefs(t, c.label, soft, &o, c.T)
			st := gather(z, c.label, soft, &o, alpha)
			S, _, ce, zl := h.loss(t, st)
			if err := tol.Close([]float64{ce, zl}, []float64{wantCE, wantZL}, tl); err != nil {
				t.Errorf("ce, zl: %v (got %v, %v; want %v, %v)", err, ce, zl, wantCE, wantZL)
			}
			want := make([]float64, c.T)
			rowmath.RowGradScaled(want, z, c.label, soft, &o, c.sc*c.g, c.sz*c.g)
			got := make([]float64, c.T)
			ignored := !c.soft && o.Ignored(c.label)
			zf := c.sz * c.g * 2 * o.ZLoss * (st.m + st.L)
			for k, v := range z {
				if ignored { // the kernels write 0 without calling xent_grad
					break
				}
				capped, dcap := h.cap(t, v, o.Softcap)
				p := math.Exp((capped - st.m) - st.L)
				got[k] = h.grad(t, p, a[k], S, c.sc*c.g, zf, dcap)
			}
			if err := tol.Close(got, want, tl); err != nil {
				t.Errorf("gradient: %v", err)
			}
		})
	}

	// What makes a row NaN: a NaN statistic (a non-finite logit), a bad
	// label; an ignored row is 0 unless its logits are not finite.
	nan := math.NaN()
	for _, c := range []struct {
		name               string
		soft, ignored, bad bool
		m, L               float64
		wantNaN            bool
	}{
		{"NaN logit", false, false, false, nan, nan, true},
		{"NaN logit, ignored row", false, true, false, nan, nan, true},
		{"all −Inf (L NaN)", false, false, false, 0, nan, true},
		{"bad label", false, false, true, 1, 0.5, true},
		{"ignored", false, true, false, 1, 0.5, false},
	} {
		_, _, ce, _ := h.loss(t, stats{soft: c.soft, ignored: c.ignored, bad: c.bad, m: c.m, L: c.L, wsum: 1})
		if math.IsNaN(ce) != c.wantNaN {
			t.Errorf("%s: ce = %v, want NaN: %v", c.name, ce, c.wantNaN)
		}
	}

	// xent_label: the label as stored in F, ignored (XENT_IGNORE and equal
	// to ignore), or bad (any other value that is not an integer in [0, T)).
	const ign = cudakernels.XentIgnore
	for _, c := range []struct {
		yl                   float64
		T, flags, ignore     int64
		label                int64
		wantIgnored, wantBad bool
	}{
		{3, 10, 0, 0, 3, false, false},
		{0, 10, 0, 0, 0, false, false},
		{9, 10, 0, 0, 9, false, false},
		{10, 10, 0, 0, 10, false, true},
		{-1, 10, 0, 0, -1, false, true},
		{3.5, 10, 0, 0, 3, false, true},
		{-100, 10, ign, -100, -100, true, false},
		{-100, 10, 0, -100, -100, false, true}, // ignore_index not in use
		{5, 10, ign, 5, 5, true, false},        // an ignore_index inside [0, T)
		{5, 10, ign, -100, 5, false, false},
	} {
		v := h.ask(t, 3, "Y %s %d %d %d", g(c.yl), c.T, c.flags, c.ignore)
		if v[1] != float64(b2i(c.wantIgnored)) || v[2] != float64(b2i(c.wantBad)) || v[0] != float64(c.label) {
			t.Errorf("xent_label(%v, T %d, flags %d, ignore %d) = %v, %v, %v; want %d, %v, %v",
				c.yl, c.T, c.flags, c.ignore, v[0], v[1] != 0, v[2] != 0, c.label, c.wantIgnored, c.wantBad)
		}
	}
}

// coefs asks rowmath for xent_coef's a_c and xent_alpha's α_c over a row of
// T classes.
func (h *host) coefs(t *testing.T, label int, soft []float64, o *rowmath.Options, T int) (a, alpha []float64) {
	var b strings.Builder
	fmt.Fprintf(&b, "K %d %d %s %d %d", b2i(soft != nil), label, g(o.LabelSmoothing), T, b2i(o.ClassWeights != nil))
	for _, w := range o.ClassWeights {
		fmt.Fprintf(&b, " %s", g(w))
	}
	for _, y := range soft {
		fmt.Fprintf(&b, " %s", g(y))
	}
	v := h.ask(t, 2*T, "%s", b.String())
	return v[:T], v[T:]
}

// stats is what a kernel gathers over a row before xent_row_loss.
type stats struct {
	soft, ignored, bad          bool
	m, L, d, Sa, zy, wy, eps, k float64
	wsum, lambda                float64
}

// gather computes, in the kernel's definitions, what a kernel gathers over
// the row z (in float64, one pass at a time), with α_c from xent_alpha.
func gather(z []float64, label int, soft []float64, o *rowmath.Options, alphas []float64) stats {
	T := len(z)
	st := stats{soft: soft != nil, eps: o.LabelSmoothing, k: o.LabelSmoothing / float64(T), lambda: o.ZLoss, m: math.Inf(-1)}
	st.ignored = soft == nil && o.Ignored(label)
	for c := 0; c < T; c++ {
		st.wsum += o.Weight(c)
	}
	zc := make([]float64, T)
	for i, v := range z {
		zc[i] = capOf(v, o.Softcap)
		st.m = math.Max(st.m, zc[i])
	}
	s := 0.0
	for _, v := range zc {
		s += math.Exp(v - st.m)
	}
	st.L = math.Log(s)
	for c, v := range zc {
		alpha := 0.0
		if soft != nil || st.eps != 0 {
			alpha = alphas[c]
		}
		st.Sa += alpha
		st.d += alpha * (st.m - v)
	}
	if soft == nil && !st.ignored {
		st.zy = zc[label]
		st.wy = o.Weight(label)
	}
	return st
}

func capOf(v, c float64) float64 {
	if c > 0 {
		return c * math.Tanh(v/c)
	}
	return v
}

func weights(rng *rand.Rand, T int) []float64 {
	w := make([]float64, T)
	for i := range w {
		w[i] = 0.25 + 2*rng.Float64()
	}
	w[T/2] = 0 // a class that counts for nothing
	return w
}

func probs(rng *rand.Rand, T int) []float64 {
	p := make([]float64, T)
	s := 0.0
	for i := range p {
		p[i] = rng.Float64()
		s += p[i]
	}
	for i := range p {
		p[i] /= s
	}
	return p
}

// host talks to the compiled rowmath.
type host struct {
	in  io.Writer
	out *bufio.Scanner
}

func (h *host) ask(t *testing.T, n int, format string, a ...any) []float64 {
	t.Helper()
	fmt.Fprintf(h.in, format+"\n", a...)
	if !h.out.Scan() {
		t.Fatalf("rowmath stopped answering: %v", h.out.Err())
	}
	f := strings.Fields(h.out.Text())
	if len(f) != n {
		t.Fatalf("rowmath answered %q", h.out.Text())
	}
	v := make([]float64, n)
	for i, s := range f {
		var err error
		if v[i], err = strconv.ParseFloat(s, 64); err != nil {
			// C prints nan, inf, -inf; Go parses NaN, Inf, -Inf.
			switch strings.ToLower(strings.TrimPrefix(s, "-")) {
			case "nan":
				v[i] = math.NaN()
			case "inf":
				v[i] = math.Inf(1)
				if s[0] == '-' {
					v[i] = math.Inf(-1)
				}
			default:
				t.Fatalf("rowmath answered %q", h.out.Text())
			}
		}
	}
	return v
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// g formats a float64 so that scanf reads the same bits (%lf reads nan/inf).
func g(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func (h *host) loss(t *testing.T, s stats) (S, wy, ce, zl float64) {
	v := h.ask(t, 4, "L %d %d %d %s %s %s %s %s %s %s %s %s %s", b2i(s.soft), b2i(s.ignored), b2i(s.bad), g(s.m), g(s.L), g(s.d), g(s.Sa),
		g(s.zy), g(s.wy), g(s.eps), g(s.k), g(s.wsum), g(s.lambda))
	return v[0], v[1], v[2], v[3]
}

func (h *host) grad(t *testing.T, p, ac, S, sc, zf, dcap float64) float64 {
	return h.ask(t, 1, "G %s %s %s %s %s %s", g(p), g(ac), g(S), g(sc), g(zf), g(dcap))[0]
}

func (h *host) cap(t *testing.T, v, c float64) (capped, dcap float64) {
	r := h.ask(t, 2, "C %s %s", g(v), g(c))
	return r[0], r[1]
}

// acc asks rowmath to gather a row with xent_acc.cuh's acc_add over parts
// contiguous pieces and acc_merge across them, as the kernels gather over
// threads and warps and xvocab over vocabulary tiles.
func (h *host) acc(t *testing.T, raw, alpha []float64, parts int, softcap float64) (m, s, d, A float64) {
	var b strings.Builder
	fmt.Fprintf(&b, "A %d %d %s", len(raw), parts, g(softcap))
	for i := range raw {
		fmt.Fprintf(&b, " %s %s", g(raw[i]), g(alpha[i]))
	}
	v := h.ask(t, 4, "%s", b.String())
	return v[0], v[1], v[2], v[3]
}

// TestAccMerge: the running statistics of xent_acc.cuh (m = max ẑ,
// s = Σ exp(ẑ − m), d = Σ α·(m − ẑ), A = Σ α), gathered in pieces and
// merged in any split, equal their definitions computed in one pass; a NaN
// or +Inf poisons m, a −Inf logit counts for nothing unless α > 0 (then d
// is +Inf). Compiled for the host from the CUDA header itself.
func TestAccMerge(t *testing.T) {
	h := startRowmath(t)

	rng := rand.New(rand.NewPCG(3, 5))
	inf, nan := math.Inf(1), math.NaN()
	for _, c := range []struct {
		name             string
		T                int
		offset, spread   float64
		softcap          float64
		alphas           bool
		set              map[int]float64 // raw values placed at columns
		zeroAlpha        map[int]bool    // columns whose α is 0
		wantNaN, wantInf bool            // m NaN; d +Inf
	}{
		{name: "plain", T: 50, spread: 3},
		{name: "soft targets", T: 333, offset: 7, spread: 10, alphas: true},
		{name: "offset 1e15", T: 64, offset: 1e15, spread: 5, alphas: true},
		{name: "softcap", T: 100, spread: 80, softcap: 20, alphas: true},
		{name: "growing max", T: 40, spread: 1, set: map[int]float64{0: -50, 39: 50}, alphas: true},
		{name: "lone -Inf, α 0", T: 20, spread: 1, alphas: true, set: map[int]float64{7: -inf}, zeroAlpha: map[int]bool{7: true}},
		{name: "lone -Inf first, α 0", T: 20, spread: 1, alphas: true, set: map[int]float64{0: -inf}, zeroAlpha: map[int]bool{0: true}},
		{name: "-Inf the target weighs", T: 20, spread: 1, alphas: true, set: map[int]float64{7: -inf}, wantInf: true},
		{name: "NaN", T: 20, spread: 1, set: map[int]float64{11: nan}, wantNaN: true},
		{name: "+Inf", T: 20, spread: 1, set: map[int]float64{3: inf}, wantNaN: true},
		{name: "-Inf under a cap", T: 20, spread: 1, softcap: 5, set: map[int]float64{3: -inf}, wantNaN: true},
	} {
		raw, alpha := make([]float64, c.T), make([]float64, c.T)
		for i := range raw {
			raw[i] = c.offset + c.spread*rng.NormFloat64()
			if c.alphas && !c.zeroAlpha[i] {
				alpha[i] = rng.Float64()
			}
		}
		for i, v := range c.set {
			raw[i] = v
		}
		// The definitions, in one pass.
		m, s, d, A := math.Inf(-1), 0.0, 0.0, 0.0
		for _, v := range raw {
			m = math.Max(m, capOf(v, c.softcap))
		}
		for i, v := range raw {
			z := capOf(v, c.softcap)
			s += math.Exp(z - m)
			if alpha[i] != 0 {
				d += alpha[i] * (m - z)
			}
			A += alpha[i]
		}
		for _, parts := range []int{1, 2, 3, 7, c.T} {
			gm, gs, gd, gA := h.acc(t, raw, alpha, parts, c.softcap)
			what := fmt.Sprintf("%s, %d pieces", c.name, parts)
			switch {
			case c.wantNaN:
				if !math.IsNaN(gm) {
					t.Errorf("%s: m = %v, want NaN", what, gm)
				}
				continue
			case c.wantInf:
				if !math.IsInf(gd, 1) {
					t.Errorf("%s: d = %v, want +Inf", what, gd)
				}
				continue
			}
			// Each statistic on its own scale (m's magnitude says nothing
			// about s's or d's).
			for _, q := range []struct {
				name      string
				got, want float64
			}{{"m", gm, m}, {"s", gs, s}, {"d", gd, d}, {"A", gA, A}} {
				if err := tol.Close([]float64{q.got}, []float64{q.want}, tol.KernelF64); err != nil {
					t.Errorf("%s: %s = %v, want %v: %v", what, q.name, q.got, q.want, err)
				}
			}
		}
	}
}
