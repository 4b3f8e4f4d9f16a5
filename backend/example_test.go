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
