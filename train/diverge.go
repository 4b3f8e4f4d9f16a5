package train

import (
	"fmt"
	"math"

	"dsx/backend"
	"dsx/internal/dense"
)

// explodeFactor is how far above its reference a batch's loss may go
// before training is called diverged. The reference is the larger of the
// first batch's loss and log T, the loss of guessing uniformly, which a
// model starting from small weights begins at: a run whose mean batch loss
// is a thousand times that is worse than a thousand uniform guesses per
// row, which no optimizer making progress produces (a healthy run's loss
// falls below its first batch's within the first epoch). It scales with
// the loss's own units: a sum reduction makes the first batch's loss B
// times larger too.
const explodeFactor = 1000

// DivergedError stops a run whose loss or parameters stopped being
// usable: a non-finite loss or parameters, or a loss more than a thousand
// times its start. Nothing is saved.
type DivergedError struct {
	Epoch, Batch, Batches int // where (epoch and batch from 1)
	Why                   string
}

func (e *DivergedError) Error() string {
	return fmt.Sprintf("training diverged in epoch %d, batch %d of %d: %s", e.Epoch, e.Batch, e.Batches, e.Why)
}

// guard watches a training run's batch losses.
type guard struct {
	T     int
	limit float64 // 0 until the first batch
}

// check returns why loss, the next batch's, means the run has diverged,
// or "".
func (g *guard) check(loss float64) string {
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return fmt.Sprintf("the loss is %v", loss)
	}
	if g.limit == 0 {
		g.limit = explodeFactor * math.Max(1, math.Max(loss, math.Log(float64(g.T))))
		return ""
	}
	if loss > g.limit {
		return fmt.Sprintf("the loss exploded to %.4g, more than %d times its start (limit %.4g)", loss, explodeFactor, g.limit)
	}
	return ""
}

// finiteParams checks the layer's parameters: why is "" when they are
// finite.
func finiteParams(l backend.Layer) (why string, err error) {
	W, b, err := l.Params()
	if err != nil {
		return "", err
	}
	for _, p := range []struct {
		name string
		v    []float32
	}{{"W", dense.F32(W)}, {"b", dense.F32(b)}} {
		for i, x := range p.v {
			if f := float64(x); math.IsNaN(f) || math.IsInf(f, 0) {
				return fmt.Sprintf("the parameters are not finite (%s[%d] is %v)", p.name, i, x), nil
			}
		}
	}
	return "", nil
}
