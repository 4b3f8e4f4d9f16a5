package graph

// minWork is the number of logits below which splitting rows across
// goroutines costs more than it saves.
const minWork = 1 << 14

// rowGrain is the number of rows per chunk that holds at least minWork logits.
func rowGrain(T int) int {
	g := minWork / T
	if g < 1 {
		g = 1
	}
	return g
}
