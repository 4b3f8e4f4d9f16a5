package dense

import (
	"testing"

	"gorgonia.org/tensor"
)

// TestViewsReadAsShown: F64 and F32 of a view (a column slice, a
// transpose) give the values the view shows, not its backing array.
func TestViewsReadAsShown(t *testing.T) {
	big := New(tensor.Float32, []float64{1, 2, 9, 3, 4, 9}, 2, 3)
	v, err := big.Slice(nil, tensor.S(0, 2))
	if err != nil {
		t.Fatal(err)
	}
	if got := F64(v.(*tensor.Dense)); len(got) != 4 || got[0] != 1 || got[1] != 2 || got[2] != 3 || got[3] != 4 {
		t.Errorf("column slice read as %v, want [1 2 3 4]", got)
	}
	tr := New(tensor.Float64, []float64{1, 2, 3, 4, 5, 6}, 2, 3)
	if err := tr.T(); err != nil {
		t.Fatal(err)
	}
	if got := F32(tr); len(got) != 6 || got[1] != 4 || got[2] != 2 {
		t.Errorf("transpose read as %v, want [1 4 2 5 3 6]", got)
	}
}
