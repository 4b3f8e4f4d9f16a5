package train_test

import (
	"context"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"

	"dsx/backend"
	_ "dsx/cpu" // registers the CPU backend
	"dsx/data"
	"dsx/model"
	"dsx/train"
)

// Training a head on a data set in memory and saving a model that `dsx
// eval` reads. The points are three Gaussian blobs in 4 dimensions, far
// from the origin (the trainer standardises them).
func Example() {
	rng := rand.New(rand.NewPCG(7, 7))
	set := &data.Set{Rows: 600, N: 4, Classes: 3, Source: "blobs"}
	for i := 0; i < set.Rows; i++ {
		c := i % 3
		set.Y = append(set.Y, int32(c))
		for j := 0; j < set.N; j++ {
			set.X = append(set.X, float32(100+3*float64(c*(j%2+1))+rng.NormFloat64()))
		}
	}
	be, _, err := backend.Choose("cpu")
	if err != nil {
		log.Fatal(err)
	}
	tr, err := train.New(be, set, set, train.Config{Epochs: 5, Batch: 32, Seed: 1,
		Optimizer:  backend.Optimizer{Kind: backend.Adam, LR: 0.05},
		ClassNames: []string{"a", "b", "c"}}, train.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.Close()
	res, err := tr.Run(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	m, err := tr.Model()
	if err != nil {
		log.Fatal(err)
	}
	dir, _ := os.MkdirTemp("", "dsx-example")
	defer os.RemoveAll(dir)
	if err := model.Save(filepath.Join(dir, "model.safetensors"), m); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d epochs, accuracy %.2f, classes %v\n", len(res.Epochs), res.TestAccuracy, m.Classes)
	// Output:
	// 5 epochs, accuracy 1.00, classes [a b c]
}
