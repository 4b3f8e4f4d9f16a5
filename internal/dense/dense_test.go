package dense

import (
	"math"
	"testing"

	"gorgonia.org/tensor"
)

func TestConverters(t *testing.T) {
	v := []float64{1, 1.0 / 3, -2.5e-40, math.MaxFloat64}
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		d := New(dt, v, 2, 2)
		if d.Dtype() != dt || !d.Shape().Eq(tensor.Shape{2, 2}) {
			t.Fatalf("%v: dtype %v shape %v", dt, d.Dtype(), d.Shape())
		}
		got, want := F64(d), Round(dt, v)
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%v: F64[%d] = %v, want %v", dt, i, got[i], want[i])
			}
		}
		v[0] = 7 // New copied
		if F64(d)[0] != 1 {
			t.Errorf("%v: New shares the caller's slice", dt)
		}
		v[0] = 1
		if f := F32(d); len(f) != 4 || f[1] != float32(1.0/3) {
			t.Errorf("%v: F32 %v", dt, f)
		}
		buf := make([]float64, 0, 8)
		if into := Into(buf, d); len(into) != 4 || &into[0] != &buf[:1][0] {
			t.Errorf("%v: Into did not reuse buf", dt)
		}
	}
	if Round(tensor.Float32, []float64{0.1})[0] != float64(float32(0.1)) {
		t.Error("Round to float32")
	}
	if F64(nil) != nil {
		t.Error("F64(nil) is not nil")
	}
	d := New(tensor.Float32, []float32{1, 2, 3}, 3)
	view := View[float32](d)
	view[1] = 5
	if d.Data().([]float32)[1] != 5 {
		t.Error("View does not share the tensor's memory")
	}
	if c := Convert[float32]([]float64{1.5, 2}); len(c) != 2 || c[0] != 1.5 {
		t.Errorf("Convert: %v", c)
	}
	if n := testing.AllocsPerRun(10, func() { _ = View[float32](d) }); n != 0 {
		t.Errorf("View allocates %v times", n)
	}
}
