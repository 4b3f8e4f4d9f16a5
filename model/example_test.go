package model_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"dsx/model"
)

// Loading a saved model and predicting. The model is written first (as
// dsx train does, to a temporary folder here): 2 features, 3 named
// classes, W (N×T), b (T) and the feature scaling of its training set.
// Load reads it back, ScaleInputs standardises raw features as the
// training set was, and Predict gives each row's class and probabilities.
func Example_loadAndPredict() {
	dir, err := os.MkdirTemp("", "dsx-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "model.safetensors")
	saved := &model.Model{
		N: 2, T: 3,
		W: []float32{
			2, -1, 0, // feature 0's weight for each class
			0, 1, -2, // feature 1's
		},
		B:       []float32{0, 0.5, 0},
		Mean:    []float32{10, 100}, // x' = (x − mean)/std
		Std:     []float32{2, 50},
		Classes: []string{"cat", "dog", "bird"},
	}
	if err := model.Save(path, saved); err != nil {
		log.Fatal(err)
	}

	m, err := model.Load(path)
	if err != nil {
		log.Fatal(err)
	}
	x := []float32{ // raw features, 3 rows
		14, 100,
		10, 200,
		8, 0,
	}
	rows := len(x) / m.N
	if err := m.CheckInput(2); err != nil {
		log.Fatal(err)
	}
	if err := m.ScaleInputs(x, rows); err != nil {
		log.Fatal(err)
	}
	labels, probs, err := m.Predict(x, rows)
	if err != nil {
		log.Fatal(err)
	}
	for i, c := range labels {
		fmt.Printf("row %d: %-4s p = %.3f\n", i, m.Classes[c], probs[i*m.T:(i+1)*m.T])
	}
	// Output:
	// row 0: cat  p = [0.978 0.004 0.018]
	// row 1: dog  p = [0.076 0.923 0.001]
	// row 2: bird p = [0.002 0.011 0.987]
}
