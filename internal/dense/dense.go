// Package dense is the project's one set of converters between
// gorgonia.org/tensor's dense float tensors and Go slices: New makes a
// float32 or float64 tensor from any float slice, F64, F32 and Into read a
// tensor's values into a slice (a copy), View gives its data without a copy
// or an allocation, and Convert and Round convert slices.
package dense

import (
	"unsafe"

	"gorgonia.org/tensor"
)

// Float is an element type of a layer.
type Float interface{ float32 | float64 }

// New makes a tensor of dtype dt (tensor.Float32 or tensor.Float64) and
// the given shape holding vals converted to dt (always a copy).
func New[F Float](dt tensor.Dtype, vals []F, shape ...int) *tensor.Dense {
	if dt == tensor.Float32 {
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(Convert[float32](vals)))
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(Convert[float64](vals)))
}

// Into writes the values of a float32 or float64 tensor into buf, grown as
// needed, converted to F, and returns it; nil for a nil tensor or another
// dtype. A view (a column slice, a transpose) gives the values it shows.
func Into[F Float](buf []F, t *tensor.Dense) []F {
	if t == nil {
		return nil
	}
	if t.RequiresIterator() { // a strided view: its values, not its backing array
		t = t.Materialize().(*tensor.Dense)
	}
	switch d := t.Data().(type) {
	case []float32:
		return convertInto(buf, d)
	case []float64:
		return convertInto(buf, d)
	}
	return nil
}

// F64 returns a tensor's values as a new []float64 (nil for nil).
func F64(t *tensor.Dense) []float64 { return Into[float64](nil, t) }

// F32 returns a tensor's values as a new []float32 (nil for nil).
func F32(t *tensor.Dense) []float32 { return Into[float32](nil, t) }

// View returns the elements of a float32 or float64 tensor as []F, sharing
// its memory, without the allocation of tensor.Tensor.Data (which boxes the
// slice). F must be the tensor's element type.
func View[F Float](t tensor.Tensor) []F {
	if d, ok := t.(*tensor.Dense); ok {
		var zero F
		if unsafe.Sizeof(zero) == 4 {
			s := d.Float32s()
			return unsafe.Slice((*F)(unsafe.Pointer(unsafe.SliceData(s))), len(s))
		}
		s := d.Float64s()
		return unsafe.Slice((*F)(unsafe.Pointer(unsafe.SliceData(s))), len(s))
	}
	return t.Data().([]F)
}

// Convert returns v converted to To (always a new slice).
func Convert[To, From Float](v []From) []To { return convertInto[To](nil, v) }

// Round returns v as a tensor of dtype dt holds it: each value rounded to
// float32 for tensor.Float32, unchanged otherwise (a new slice).
func Round(dt tensor.Dtype, v []float64) []float64 {
	if dt == tensor.Float32 {
		return Convert[float64](Convert[float32](v))
	}
	return append([]float64(nil), v...)
}

func convertInto[To, From Float](buf []To, v []From) []To {
	if cap(buf) < len(v) {
		buf = make([]To, len(v))
	}
	buf = buf[:len(v)]
	for i, x := range v {
		buf[i] = To(x)
	}
	return buf
}
