package backend_test

import (
	"fmt"
	"log"

	"dsx/backend"
	_ "dsx/cpu" // registers the CPU backend
	"dsx/graph"

	"gorgonia.org/tensor"
)

// The backend API: choose a device (here the CPU, the only backend this
// program links in, unless DSX_DEVICE names another), open a layer for 4
// rows of 3 features and 2 classes that computes dW, db and dx, take a few
// SGD steps, then read the loss and the gradients of one batch. Values are
// printed rounded, so that they read the same whichever BLAS computes the
// products (DSX_BLAS=off: gonum).
func Example() {
	be, why, err := backend.Choose("auto")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(why)
	caps := be.Capabilities()
	fmt.Println("float64 layers:", caps.HasDType(tensor.Float64), "tf32 products:", caps.HasMatMode(backend.TF32))

	const B, N, T = 4, 3, 2
	cfg := backend.Config{
		Spec:      graph.Spec{B: B, N: N, T: T, DType: tensor.Float64, Want: graph.Want{DW: true, DB: true, DX: true}},
		Optimizer: backend.Optimizer{Kind: backend.SGD, LR: 0.5},
	}
	l, err := be.Open(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	W := tensor.New(tensor.WithShape(N, T), tensor.Of(tensor.Float64)) // zeros
	b := tensor.New(tensor.WithShape(T), tensor.Of(tensor.Float64))
	if err := l.SetParams(W, b); err != nil {
		log.Fatal(err)
	}
	x := tensor.New(tensor.WithShape(B, N), tensor.WithBacking([]float64{
		1, 0, 0.5,
		0, 1, -0.5,
		1, 1, 0,
		-1, 0, 1,
	}))
	y := tensor.New(tensor.WithShape(B), tensor.WithBacking([]float64{0, 1, 0, 1})) // class indices
	for step := 1; step <= 3; step++ {
		loss, err := l.Step(x, y)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("step %d: loss %.4f\n", step, loss)
	}
	r, err := l.Compute(x, y)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("loss %.4f\n", r.Loss)
	fmt.Printf("dW %.4f\n", r.DW.Data())
	fmt.Printf("db %.4f\n", r.DB.Data())
	fmt.Printf("dx row 0 %.4f\n", r.DX.Data().([]float64)[:N])
	// Output:
	// device cpu (auto)
	// float64 layers: true tf32 products: false
	// step 1: loss 0.6931
	// step 2: loss 0.5656
	// step 3: loss 0.4786
	// loss 0.4153
	// dW [-0.2181 0.2181 0.0404 -0.0404 -0.0255 0.0255]
	// db [0.0371 -0.0371]
	// dx row 0 [-0.0679 0.0042 -0.0023]
}

// A checkpoint and its resume: the parameters and the optimizer's state
// out of one layer after 2 Adam steps, into a fresh layer, whose third step
// gives the bits the first layer's third step gives.
func ExampleLayer_OptimizerState() {
	be, err := backend.Get("cpu")
	if err != nil {
		log.Fatal(err)
	}
	cfg := backend.Config{
		Spec:      graph.Spec{B: 2, N: 2, T: 2, DType: tensor.Float32, Want: graph.Want{DW: true, DB: true}},
		Optimizer: backend.Optimizer{Kind: backend.Adam, LR: 0.1},
	}
	x := tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float32{1, 0, 0, 1}))
	y := tensor.New(tensor.WithShape(2), tensor.WithBacking([]float32{0, 1}))
	open := func(W, b *tensor.Dense) backend.Layer {
		l, err := be.Open(cfg)
		if err != nil {
			log.Fatal(err)
		}
		if err := l.SetParams(W, b); err != nil {
			log.Fatal(err)
		}
		return l
	}
	a := open(tensor.New(tensor.WithShape(2, 2), tensor.Of(tensor.Float32)), tensor.New(tensor.WithShape(2), tensor.Of(tensor.Float32)))
	defer a.Close()
	for range 2 {
		if _, err := a.Step(x, y); err != nil {
			log.Fatal(err)
		}
	}
	// The checkpoint: W, b and the optimizer's state.
	W, b, err := a.Params()
	if err != nil {
		log.Fatal(err)
	}
	st, err := a.OptimizerState()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Kind, "step", st.Step, "holds", len(st.Tensors), "tensors, W.exp_avg", st.Tensors["W.exp_avg"].Shape())

	// The resume: SetParams (which resets the state), then the state.
	r := open(W, b)
	defer r.Close()
	if err := r.SetOptimizerState(st); err != nil {
		log.Fatal(err)
	}
	la, _ := a.Step(x, y)
	lr, _ := r.Step(x, y)
	Wa, _, _ := a.Params()
	Wr, _, _ := r.Params()
	fmt.Println("same loss:", la == lr, "same W:", fmt.Sprint(Wa.Data()) == fmt.Sprint(Wr.Data()))
	// Output:
	// adam step 2 holds 4 tensors, W.exp_avg (2, 2)
	// same loss: true same W: true
}
