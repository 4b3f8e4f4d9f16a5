package dist

import "testing"

func TestShare(t *testing.T) {
	for _, c := range []struct{ n, size int }{{10, 1}, {10, 3}, {2, 3}, {0, 2}, {7, 7}, {256, 4}, {255, 4}} {
		next := 0
		for r := 0; r < c.size; r++ {
			lo, hi := Share(c.n, r, c.size)
			if lo != next || hi < lo || hi-lo > c.n/c.size+1 || hi-lo < c.n/c.size {
				t.Fatalf("Share(%d, %d, %d) = [%d, %d), want a share starting at %d of %d or %d rows", c.n, r, c.size, lo, hi, next, c.n/c.size, c.n/c.size+1)
			}
			next = hi
		}
		if next != c.n {
			t.Fatalf("Share(%d, ·, %d) covers %d rows", c.n, c.size, next)
		}
	}
}

func TestLocal(t *testing.T) {
	var c Comm = Local{}
	buf := []float32{1, 2}
	if err := c.AllReduceF32(buf); err != nil || buf[0] != 1 || buf[1] != 2 || c.Size() != 1 || c.Rank() != 0 {
		t.Fatalf("Local: %v %v", buf, err)
	}
	if c.Broadcast(nil, 1) == nil {
		t.Fatal("Local: broadcast from rank 1 should fail")
	}
}
