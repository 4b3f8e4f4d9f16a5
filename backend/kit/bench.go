package kit

import (
	"dsx/backend"

	"gorgonia.org/tensor"
)

// Stats is implemented by layers that report their memory and can time the
// matrix products of a step alone (the floor a step cannot beat). Check for
// it with a type assertion.
type Stats interface {
	MemStats() backend.MemStats
	// FloorMs runs only the matrix products of a step on rows rows, reps
	// times, and returns the median milliseconds of one step's products.
	FloorMs(rows, reps int) (float64, error)
}

// Resident is implemented by layers that can keep a batch on the device and
// step on it again without copying it (benchmarks, and many epochs on data
// that fit the device). Load copies and checks the batch once; StepLoaded
// runs Step on the loaded batch.
type Resident interface {
	Load(x, targets *tensor.Dense) error
	StepLoaded() (float64, error)
}
