package cudatest

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"dsx/backend"
	"dsx/graph"
	"dsx/internal/tol"

	"gorgonia.org/tensor"
)

var Sizes = []int{3, 1000, 8003, 50257}

// LossCases are every option of graph.LossOptions, alone and combined.
func LossCases(T int) map[string]graph.LossOptions {
	w := make([]float64, T)
	r := rand.New(rand.NewPCG(uint64(T), 7))
	for i := range w {
		w[i] = 0.25 + 2*r.Float64()
	}
	return map[string]graph.LossOptions{
		"mean":                      {},
		"sum":                       {Reduction: graph.Sum},
		"none":                      {Reduction: graph.None},
		"weights":                   {ClassWeights: w},
		"ignore":                    {UseIgnoreIndex: true, IgnoreIndex: -100},
		"smoothing":                 {LabelSmoothing: 0.1},
		"weights+smooth+none":       {ClassWeights: w, LabelSmoothing: 0.2, Reduction: graph.None, UseIgnoreIndex: true, IgnoreIndex: 0},
		"soft":                      {SoftTargets: true},
		"soft+weights+smooth":       {SoftTargets: true, ClassWeights: w, LabelSmoothing: 0.15, Reduction: graph.Sum},
		"soft+none":                 {SoftTargets: true, Reduction: graph.None},
		"all-ignored-mean":          {UseIgnoreIndex: true, IgnoreIndex: 1 << 20},
		"ignore+weights+sum":        {UseIgnoreIndex: true, IgnoreIndex: -1, ClassWeights: w, Reduction: graph.Sum},
		"weights+smooth+mean":       {ClassWeights: w, LabelSmoothing: 0.3},
		"full-smoothing(ε=1)":       {LabelSmoothing: 1},
		"soft+ignore-unused":        {SoftTargets: true, UseIgnoreIndex: true, IgnoreIndex: 2},
		"ignore-row-with-mean":      {UseIgnoreIndex: true, IgnoreIndex: 0},
		"softcap":                   {Softcap: 3},
		"zloss+weights+ignore":      {ZLoss: 1e-3, ClassWeights: w, UseIgnoreIndex: true, IgnoreIndex: 0},
		"softcap+zloss+smooth+none": {Softcap: 20, ZLoss: 1e-4, LabelSmoothing: 0.1, Reduction: graph.None},
		"soft+softcap+zloss":        {SoftTargets: true, Softcap: 5, ZLoss: 1e-2},
	}
}

// RowScales gives rows of very different scale.
var RowScales = []float64{1e-3, 1, 30, 1000, 0.5, 5, 200}

// TargetsFor draws rows targets for o: labels (some ignored), or
// probabilities.
func TargetsFor(r *rand.Rand, rows, T int, o graph.LossOptions, name string) []float64 {
	if o.SoftTargets {
		tg := make([]float64, rows*T)
		for i := 0; i < rows; i++ {
			s := 0.0
			for c := 0; c < T; c++ {
				v := r.Float64()
				if r.IntN(4) == 0 {
					v = 0
				}
				tg[i*T+c] = v
				s += v
			}
			for c := 0; c < T; c++ {
				tg[i*T+c] /= s + 1e-300
			}
		}
		return tg
	}
	tg := make([]float64, rows)
	for i := range tg {
		tg[i] = float64(r.IntN(T))
		if o.UseIgnoreIndex && i%3 == 1 {
			tg[i] = float64(o.IgnoreIndex)
		}
		if strings.HasPrefix(name, "all-ignored") {
			tg[i] = float64(o.IgnoreIndex)
		}
	}
	return tg
}

type Problem struct {
	W, B, X, Tg []float64
}

func NewProblem(seed uint64, B, N, T int, o graph.LossOptions, name string) Problem {
	r := rand.New(rand.NewPCG(seed, uint64(T)))
	p := Problem{W: make([]float64, N*T), B: make([]float64, T), X: make([]float64, B*N)}
	for i := range p.W {
		p.W[i] = r.NormFloat64()
	}
	for i := range p.B {
		p.B[i] = r.NormFloat64()
	}
	for i := 0; i < B; i++ {
		for j := 0; j < N; j++ {
			p.X[i*N+j] = r.NormFloat64() * RowScales[i%len(RowScales)] / math.Sqrt(float64(N))
		}
	}
	p.Tg = TargetsFor(r, B, T, o, name)
	return p
}

func open(t *testing.T, name string, cfg backend.Config) backend.Layer {
	t.Helper()
	l, err := get(t, name).Open(cfg)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func parityTol(dt tensor.Dtype) tol.Tol {
	if dt == tensor.Float32 {
		return tol.ParityF32
	}
	return tol.ParityF64
}

// roundBF16 rounds each value to float32 and then to bfloat16 (nearest, ties
// to even), as the to_bf16 kernel does.
func roundBF16(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		u := math.Float32bits(float32(x))
		u += 0x7fff + (u>>16)&1
		out[i] = float64(math.Float32frombits(u &^ 0xffff))
	}
	return out
}

// get returns the backend registered as name.
func get(t *testing.T, name string) backend.Backend {
	t.Helper()
	b, err := backend.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
