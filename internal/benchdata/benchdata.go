// Package benchdata draws the benchmark's inputs (x, W, targets) from a
// counter-based generator that bench/peers/benchdata.py implements too, bit
// for bit, so that `dsx bench` and the Python peers (PyTorch, Cut
// Cross-Entropy, Liger) time the same step on the same numbers without
// shipping gigabytes between them. Every value is a function of (seed,
// stream, index) through integer hashing and single float32 operations,
// which IEEE 754 rounds the same in Go, numpy and PyTorch on any device.
//
// Two kinds of inputs:
//
//   - Random: x ~ U[−√3, √3) (unit variance), W ~ 0.01·U[−√3, √3),
//     targets uniform over the T classes. The softmax of x·W is nearly
//     uniform (entropy ≈ log T): nothing can be skipped.
//   - LM: the logits look like a trained language model's. Class j has a
//     frequency rank r(j) (a fixed permutation of the classes, so that
//     frequent classes are spread over the vocabulary as token ids are), a
//     prior logit −α·⌊log₂(r+1)⌋ (a Zipf law by octaves of rank: each octave
//     holds the same share of the targets), Gaussian-like noise of standard
//     deviation σ from the product x·W, and a planted boost δ on the row's
//     target, whose octave is uniform (so the targets follow the same Zipf
//     law). With σ = 1.5, α = 1 and δ = 0.6·⌊log₂ T⌋ the mean row entropy is
//     about 2 nats and the mean loss 2–3 nats at T = 128256, as for an LLM,
//     and below CCE's filter threshold (2⁻¹²) lie all but ~0.1 % of the
//     softmax entries: whole vocabulary blocks can be skipped once the
//     classes are sorted by frequency, and almost none before.
//
// The construction: feature 0 of every row is 1 and W[0, j] holds the prior,
// features k ≥ 1 carry x[b,k] = u + γ·W[k, y_b] with u ~ U[−1, 1) and
// W[k, j] ~ s·U[−1, 1), s = 3σ/√(N−1) (so the noise of a logit has standard
// deviation σ), γ = 3δ/((N−1)·s²) (so the target's logit rises by about δ).
package benchdata

import (
	"fmt"
	"math"
	"math/bits"
	"runtime"
	"sync"
)

// Kind selects the distribution.
type Kind int

const (
	Random Kind = iota // plain random inputs
	LM                 // logits like a trained language model's
)

func (k Kind) String() string {
	switch k {
	case Random:
		return "random"
	case LM:
		return "lm"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// ParseKind reads "random" or "lm".
func ParseKind(s string) (Kind, error) {
	switch s {
	case "random":
		return Random, nil
	case "lm":
		return LM, nil
	}
	return 0, fmt.Errorf("inputs %q: want random or lm", s)
}

// The LM kind's constants (see the package doc).
const (
	Sigma      = 1.5 // standard deviation of a logit's noise
	Alpha      = 1.0 // prior logit lost per octave of frequency rank
	DeltaPerL2 = 0.6 // the target's boost per unit of ⌊log₂ T⌋
	perm1      = 1000003
	perm2      = 1000033
)

// Streams of the generator.
const (
	streamX     = 1
	streamW     = 2
	streamY     = 3
	streamLevel = 4
)

// hash is Chris Wellons' lowbias32, a bijection of uint32.
func hash(x uint32) uint32 {
	x ^= x >> 16
	x *= 0x7feb352d
	x ^= x >> 15
	x *= 0x846ca68b
	x ^= x >> 16
	return x
}

func key(seed uint32, stream uint32) uint32 { return hash(seed + stream*0x9e3779b9) }

// unit maps a hash to a float32 in [−1, 1): the top 24 bits, centred, times
// 2⁻²³ (both steps exact in float32).
func unit(h uint32) float32 {
	return float32(int32(h>>8)-1<<23) * (1.0 / (1 << 23))
}

// Inputs is one batch and the parameters it starts from: x is B×N and W is
// N×T, both row-major float32; Y holds B class indices; b is zero.
type Inputs struct {
	B, N, T int
	Kind    Kind
	X, W    []float32
	Y       []int32
}

// Params are the float32 scalars of a shape's LM inputs (zero for Random).
type Params struct {
	S, Gamma, Delta float32
	P               int // class of rank r: r·P mod T
}

// LMParams returns the scalars the LM kind uses for N features and T
// classes. Computed in float64 with IEEE operations only (sqrt, ×, ÷), then
// rounded to float32, as benchdata.py does.
func LMParams(N, T int) Params {
	l2 := bits.Len(uint(T)) - 1 // ⌊log₂ T⌋
	delta := DeltaPerL2 * float64(l2)
	s := float32(3 * Sigma / math.Sqrt(float64(N-1)))
	s64 := float64(s)
	gamma := float32(3 * delta / (float64(N-1) * (s64 * s64)))
	p := perm1
	if T%perm1 == 0 {
		p = perm2
	}
	return Params{S: s, Gamma: gamma, Delta: float32(delta), P: p}
}

// Generate draws the inputs for shape B×N×T. B·N and N·T must be below 2³²
// (every element has its own 32-bit counter), and LM needs N ≥ 2.
func Generate(kind Kind, B, N, T int, seed uint32) (*Inputs, error) {
	if B < 1 || N < 1 || T < 1 {
		return nil, fmt.Errorf("benchdata: shape %d×%d×%d: sizes must be ≥ 1", B, N, T)
	}
	if uint64(B)*uint64(N) >= 1<<32 || uint64(N)*uint64(T) >= 1<<32 {
		return nil, fmt.Errorf("benchdata: shape %d×%d×%d: B·N and N·T must be below 2³²", B, N, T)
	}
	if kind == LM && N < 2 {
		return nil, fmt.Errorf("benchdata: lm inputs need N ≥ 2 (feature 0 holds the prior), not %d", N)
	}
	in := &Inputs{B: B, N: N, T: T, Kind: kind, X: make([]float32, B*N), W: make([]float32, N*T), Y: make([]int32, B)}
	kx, kw, ky, kl := key(seed, streamX), key(seed, streamW), key(seed, streamY), key(seed, streamLevel)
	switch kind {
	case Random:
		sx := float32(math.Sqrt(3))
		sw := float32(0.01 * math.Sqrt(3))
		parallel(len(in.W), func(lo, hi int) {
			for i := lo; i < hi; i++ {
				in.W[i] = unit(hash(uint32(i)^kw)) * sw
			}
		})
		parallel(len(in.X), func(lo, hi int) {
			for i := lo; i < hi; i++ {
				in.X[i] = unit(hash(uint32(i)^kx)) * sx
			}
		})
		for b := range in.Y {
			in.Y[b] = int32(hash(uint32(b)^ky) % uint32(T))
		}
	case LM:
		p := LMParams(N, T)
		// Row 0 of W: the prior of each class from its rank.
		q := modInverse(p.P%T, T)
		for j := 0; j < T; j++ {
			r := int(uint64(j) * uint64(q) % uint64(T))
			in.W[j] = -float32(Alpha) * float32(bits.Len(uint(r+1))-1)
		}
		parallel((N-1)*T, func(lo, hi int) {
			for i := T + lo; i < T+hi; i++ {
				in.W[i] = unit(hash(uint32(i)^kw)) * p.S
			}
		})
		lmax := uint32(bits.Len(uint(T)) - 1)
		for b := range in.Y {
			h := hash(uint32(b) ^ ky)
			level := hash(uint32(b)^kl) % (lmax + 1)
			r := uint64(1)<<level - 1 + uint64(h)%(uint64(1)<<level)
			if r >= uint64(T) {
				r = uint64(h) % uint64(T)
			}
			in.Y[b] = int32(r * uint64(p.P) % uint64(T))
		}
		parallel(B, func(lo, hi int) {
			for b := lo; b < hi; b++ {
				row, y := in.X[b*N:(b+1)*N], int(in.Y[b])
				row[0] = 1
				for k := 1; k < N; k++ {
					u := unit(hash(uint32(b*N+k) ^ kx))
					// Two roundings, as in Python: γ·W, then the sum.
					g := float32(p.Gamma * in.W[k*T+y])
					row[k] = float32(u + g)
				}
			}
		})
	default:
		return nil, fmt.Errorf("benchdata: unknown kind %v", kind)
	}
	return in, nil
}

// modInverse returns a⁻¹ mod m for gcd(a, m) = 1 (0 when m = 1).
func modInverse(a, m int) int {
	if m == 1 {
		return 0
	}
	t, newT, r, newR := 0, 1, m, a
	for newR != 0 {
		q := r / newR
		t, newT = newT, t-q*newT
		r, newR = newR, r-q*newR
	}
	if t < 0 {
		t += m
	}
	return t
}

// parallel runs f over [0, n) in contiguous parts, one per CPU.
func parallel(n int, f func(lo, hi int)) {
	w := runtime.GOMAXPROCS(0)
	if n < 1<<16 || w == 1 {
		f(0, n)
		return
	}
	per := (n + w - 1) / w
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += per {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			f(lo, hi)
		}(lo, min(lo+per, n))
	}
	wg.Wait()
}

// RowStats returns the mean cross-entropy against labels and the mean
// softmax entropy (nats) of rows of logits z (rows×T, float64): what
// `dsx bench` and the peers report as loss0 and entropy0.
func RowStats(z []float64, T int, label func(row int) int) (loss, entropy float64) {
	rows := len(z) / T
	for r := 0; r < rows; r++ {
		row := z[r*T : (r+1)*T]
		m := math.Inf(-1)
		for _, v := range row {
			m = math.Max(m, v)
		}
		s := 0.0
		for _, v := range row {
			s += math.Exp(v - m)
		}
		lse := m + math.Log(s)
		h := 0.0
		for _, v := range row {
			h -= math.Exp(v-lse) * (v - lse)
		}
		entropy += h
		loss += lse - row[label(r)]
	}
	return loss / float64(rows), entropy / float64(rows)
}
