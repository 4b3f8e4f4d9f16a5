package backend_test

import (
	"testing"

	"dsx/backend"
	"dsx/graph"
)

// TestChunkAuto: Config.Chunk picks whole batches under the budget and
// multiples of 256 rows over it.
func TestChunkAuto(t *testing.T) {
	c := backend.Config{Spec: graph.Spec{B: 8192, N: 4096, T: 128256}}
	if got := c.Chunk(4); got != 2048 {
		t.Errorf("auto chunk %d, want 2048", got)
	}
	c.ChunkRows = -1
	if got := c.Chunk(4); got != 8192 {
		t.Errorf("never: %d", got)
	}
	c.ChunkRows = 100
	if got := c.Chunk(4); got != 100 {
		t.Errorf("ChunkRows 100: %d", got)
	}
}
