package graph_test

import (
	"fmt"
	"log"
	"math/rand/v2"

	"dsx/graph"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// dsx's op as the head of one's own Gorgonia model: a hidden ReLU layer,
// then logits = h·W2 + b2 with graph.BiasAdd, graph.SoftmaxCrossEntropy
// for the loss, gradients by G.Grad and a stock Gorgonia solver. The four
// classes are the quadrants of the plane, which no linear head separates
// from raw (x, y) but the hidden layer does.
func Example_gorgoniaModel() {
	const B, N, H, T = 64, 2, 16, 4
	r := rand.New(rand.NewPCG(1, 2))
	xs, ys := make([]float64, B*N), make([]float64, B)
	for i := 0; i < B; i++ {
		a, c := r.Float64()*2-1, r.Float64()*2-1
		xs[i*N], xs[i*N+1] = a, c
		switch {
		case a >= 0 && c >= 0:
			ys[i] = 0
		case a < 0 && c >= 0:
			ys[i] = 1
		case a < 0:
			ys[i] = 2
		default:
			ys[i] = 3
		}
	}
	normal := func(n int, sd float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = r.NormFloat64() * sd
		}
		return v
	}
	g := G.NewGraph()
	param := func(name string, v []float64, shape ...int) *G.Node {
		t := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))
		if len(shape) == 1 {
			return G.NewVector(g, tensor.Float64, G.WithShape(shape...), G.WithName(name), G.WithValue(t))
		}
		return G.NewMatrix(g, tensor.Float64, G.WithShape(shape...), G.WithName(name), G.WithValue(t))
	}
	x := param("x", xs, B, N)
	y := param("y", ys, B) // class indices, as floats
	W1, b1 := param("W1", normal(N*H, 1), N, H), param("b1", make([]float64, H), H)
	W2, b2 := param("W2", normal(H*T, 0.5), H, T), param("b2", make([]float64, T), T)

	must := func(n *G.Node, err error) *G.Node {
		if err != nil {
			log.Fatal(err)
		}
		return n
	}
	h := must(G.Rectify(must(graph.BiasAdd(must(G.Mul(x, W1)), b1))))
	logits := must(graph.BiasAdd(must(G.Mul(h, W2)), b2))
	loss := must(graph.SoftmaxCrossEntropy(logits, y, graph.LossOptions{}))
	learnables := G.Nodes{W1, b1, W2, b2}
	if _, err := G.Grad(loss, learnables...); err != nil {
		log.Fatal(err)
	}

	vm := G.NewTapeMachine(g, G.BindDualValues(learnables...))
	defer vm.Close()
	solver := G.NewAdamSolver(G.WithLearnRate(0.01))
	for step := 1; step <= 100; step++ {
		if err := vm.RunAll(); err != nil {
			log.Fatal(err)
		}
		if step == 1 || step%25 == 0 {
			fmt.Printf("step %3d: loss %.2f\n", step, loss.Value().Data().(float64))
		}
		if err := solver.Step(G.NodesToValueGrads(learnables)); err != nil {
			log.Fatal(err)
		}
		vm.Reset()
	}

	// Accuracy on the training points, from the last logits.
	if err := vm.RunAll(); err != nil {
		log.Fatal(err)
	}
	z := logits.Value().Data().([]float64)
	correct := 0
	for i := 0; i < B; i++ {
		best := 0
		for c := 1; c < T; c++ {
			if z[i*T+c] > z[i*T+best] {
				best = c
			}
		}
		if best == int(ys[i]) {
			correct++
		}
	}
	fmt.Printf("%d of %d training points classified right\n", correct, B)
	// Output:
	// step   1: loss 2.10
	// step  25: loss 0.62
	// step  50: loss 0.26
	// step  75: loss 0.16
	// step 100: loss 0.11
	// 63 of 64 training points classified right
}
