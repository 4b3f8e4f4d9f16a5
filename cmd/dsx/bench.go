package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"

	"dsx/backend"
	"dsx/graph"

	"gorgonia.org/tensor"
)

// benchRecord is one line of `dsx bench --json`.
type benchRecord struct {
	B         int     `json:"B"`
	N         int     `json:"N"`
	T         int     `json:"T"`
	Device    string  `json:"device"`
	Variant   string  `json:"variant"`
	DType     string  `json:"dtype"`
	Steps     int     `json:"steps"`
	MsPerStep float64 `json:"ms_per_step"` // median
	MsMin     float64 `json:"ms_min"`
	MsMax     float64 `json:"ms_max"`
	GFlops    float64 `json:"gflops"` // 4·B·N·T (x·W and xᵀ·dz) per median step
}

type shape struct{ B, N, T int }

func parseShapes(s string) ([]shape, error) {
	var out []shape
	for _, f := range strings.Split(s, ",") {
		parts := strings.Split(strings.TrimSpace(f), "x")
		if len(parts) != 3 {
			return nil, usageErr("--shapes: %q is not BxNxT", f)
		}
		var v [3]int
		for i, p := range parts {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 {
				return nil, usageErr("--shapes: %q is not BxNxT with sizes ≥ 1", f)
			}
			v[i] = n
		}
		out = append(out, shape{v[0], v[1], v[2]})
	}
	return out, nil
}

func cmdBench(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", `Time training steps (forward, backward for W and b, SGD update) on random
data with a fixed seed: warm-up, then the median of --steps timed steps.
GFLOP/s counts the two matrix products, 4·B·N·T per step.`, stdout)
	shapes := fs.String("shapes", "4096x784x10,4096x1024x1000", "comma-separated BxNxT")
	device := fs.String("device", "", "auto, cpu or cuda")
	dtype := fs.String("dtype", "float32", "float32 or float64")
	steps := fs.Int("steps", 20, "timed steps per shape")
	warmup := fs.Int("warmup", 3, "untimed steps first")
	asJSON := fs.Bool("json", false, "print a JSON array of records")
	if err := parse(fs, args); err != nil {
		return err
	}
	shs, err := parseShapes(*shapes)
	if err != nil {
		return err
	}
	dt, err := parseDType(*dtype)
	if err != nil {
		return err
	}
	if *steps < 1 || *warmup < 0 {
		return usageErr("--steps must be ≥ 1 and --warmup ≥ 0")
	}
	be, err := chooseDevice(*device, stderr)
	if err != nil {
		return err
	}
	var recs []benchRecord
	for _, sh := range shs {
		r, err := benchShape(be, sh, dt, *warmup, *steps)
		if err != nil {
			return fmt.Errorf("%dx%dx%d: %w", sh.B, sh.N, sh.T, err)
		}
		recs = append(recs, r)
		if !*asJSON {
			if len(recs) == 1 {
				fmt.Fprintf(stdout, "%-20s %-6s %-8s %-8s %10s %10s\n", "B×N×T", "device", "variant", "dtype", "ms/step", "GFLOP/s")
			}
			fmt.Fprintf(stdout, "%-20s %-6s %-8s %-8s %10.3f %10.1f\n", fmt.Sprintf("%d×%d×%d", r.B, r.N, r.T), r.Device, r.Variant, r.DType, r.MsPerStep, r.GFlops)
		}
	}
	if *asJSON {
		return writeJSON(stdout, recs)
	}
	return nil
}

// benchShape times one shape; the layer is closed before returning.
func benchShape(be backend.Backend, sh shape, dt tensor.Dtype, warmup, steps int) (benchRecord, error) {
	l, err := be.Open(backend.Config{
		Spec:      graph.Spec{B: sh.B, N: sh.N, T: sh.T, DType: dt, Want: graph.Want{W: true, B: true}},
		Optimizer: backend.Optimizer{Kind: "sgd", LR: 1e-3},
	})
	if err != nil {
		return benchRecord{}, err
	}
	defer l.Close()
	rng := rand.New(rand.NewPCG(42, uint64(sh.B*sh.N*sh.T)))
	x := make([]float32, sh.B*sh.N)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	y := make([]float32, sh.B)
	for i := range y {
		y[i] = float32(rng.IntN(sh.T))
	}
	w := make([]float32, sh.N*sh.T)
	for i := range w {
		w[i] = float32(rng.NormFloat64() * 0.01)
	}
	if err := l.SetParams(fromF32(w, dt, sh.N, sh.T), fromF32(make([]float32, sh.T), dt, sh.T)); err != nil {
		return benchRecord{}, err
	}
	xt, yt := fromF32(x, dt, sh.B, sh.N), fromF32(y, dt, sh.B)
	for i := 0; i < warmup; i++ {
		if _, err := l.Step(xt, yt); err != nil {
			return benchRecord{}, err
		}
	}
	ms := make([]float64, steps)
	for i := range ms {
		t0 := time.Now()
		// Step returns the loss to the host, so the step has finished on
		// any device when it returns.
		if _, err := l.Step(xt, yt); err != nil {
			return benchRecord{}, err
		}
		ms[i] = float64(time.Since(t0).Nanoseconds()) / 1e6
	}
	sort.Float64s(ms)
	med := ms[len(ms)/2]
	if len(ms)%2 == 0 {
		med = (ms[len(ms)/2-1] + ms[len(ms)/2]) / 2
	}
	return benchRecord{B: sh.B, N: sh.N, T: sh.T, Device: be.Name(), Variant: "graph", DType: dt.String(), Steps: steps,
		MsPerStep: med, MsMin: ms[0], MsMax: ms[len(ms)-1], GFlops: 4 * float64(sh.B) * float64(sh.N) * float64(sh.T) / (med * 1e6)}, nil
}
