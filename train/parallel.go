package train

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"strings"

	"dsx/backend"
	"dsx/backend/kit"
	"dsx/data"
	"dsx/dist"
	"dsx/internal/dense"
)

// A trainer with a communicator of P > 1 ranks runs every step, evaluation
// and hook as a collective: each ends with every rank knowing whether any
// rank failed, so that all stop at the same point with the same error
// (agree) and none waits for ever on a collective that the others left.

// RankError is an error one rank of a data-parallel job raised, as every
// rank returns it: the rank and its message. On the rank that raised it,
// Unwrap gives the error itself (a *DivergedError, say).
type RankError struct {
	Rank, Size int
	Msg        string
	Err        error // on the rank that raised it; nil on the others
}

func (e *RankError) Error() string { return fmt.Sprintf("rank %d of %d: %s", e.Rank, e.Size, e.Msg) }
func (e *RankError) Unwrap() error { return e.Err }

// maxMsg bounds the message broadcast with a RankError.
const maxMsg = 4096

// agree is the end of a collective point at which err is this rank's
// outcome (nil: none; a *dist.PeerError: another rank's failure seen by a
// collective). Every rank calls it at the same point. It returns nil when
// no rank failed, else on every rank the same *RankError: the lowest
// failing rank's, with its message broadcast. In one process it returns
// err as it is.
func agree(c dist.Comm, err error) error {
	var re *RankError
	if c.Size() == 1 || errors.As(err, &re) { // agreed already, on every rank
		return err
	}
	var pe *dist.PeerError
	own := err != nil && !errors.As(err, &pe)
	flags := make([]float64, c.Size())
	if own {
		flags[c.Rank()] = 1
	}
	if cerr := c.AllReduceF64(flags); cerr != nil {
		return fmt.Errorf("agreeing on an error (%v): %w", err, cerr)
	}
	root := -1
	for r, f := range flags {
		if f > 0 {
			root = r
			break
		}
	}
	if root < 0 {
		return err
	}
	var msg []byte
	if c.Rank() == root {
		msg = []byte(err.Error())
		if len(msg) > maxMsg {
			msg = append(msg[:maxMsg-3], "..."...)
		}
	}
	n := binary.LittleEndian.AppendUint64(nil, uint64(len(msg)))
	if cerr := c.Broadcast(n, root); cerr != nil {
		return fmt.Errorf("broadcasting rank %d's error: %w", root, cerr)
	}
	if c.Rank() != root {
		msg = make([]byte, min(binary.LittleEndian.Uint64(n), maxMsg))
	}
	if cerr := c.Broadcast(msg, root); cerr != nil {
		return fmt.Errorf("broadcasting rank %d's error: %w", root, cerr)
	}
	out := &RankError{Rank: root, Size: c.Size(), Msg: string(msg)}
	if c.Rank() == root {
		out.Err = err
	}
	return out
}

// stopping reports whether ctx has ended, on any rank: a signal reaches
// the ranks of a job at different moments, and a rank that stopped alone
// would leave the others waiting in the next step's collectives. One small
// all-reduce a step in a job of several ranks.
func (t *Trainer) stopping(ctx context.Context) bool {
	stop := ctx.Err() != nil
	if t.comm.Size() == 1 {
		return stop
	}
	flag := []float64{0}
	if stop {
		flag[0] = 1
	}
	if err := t.comm.AllReduceF64(flag); err != nil {
		return true // the job is broken; Run's caller sees the stop
	}
	return flag[0] > 0
}

// skip takes part in a step this rank cannot run (its share of the batch
// could not be read), so that the step fails on every rank rather than
// leave the others waiting in its collectives.
func (t *Trainer) skip(err error) error {
	if p, ok := t.layer.(kit.Parallel); ok && p.Ranks() != nil {
		return p.Ranks().Skip(&t.cfg.Loss, err)
	}
	return err
}

// fingerprint is what must be the same on every rank for the ranks to
// train one model: the data's shapes, each setting, the backend and the
// dsx build, by name.
type fingerprint []struct{ Name, Value string }

func fingerprintOf(be backend.Backend, trainSet, test *data.Set, cfg Config) fingerprint {
	shape := func(s *data.Set) string {
		if s == nil {
			return "none"
		}
		return fmt.Sprintf("%d rows × %d features, labels below %d", s.Rows, s.N, s.Classes)
	}
	js := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	l := cfg.Layer
	build := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		parts := []string{bi.GoVersion, bi.Main.Path + "@" + bi.Main.Version}
		for _, s := range bi.Settings {
			switch s.Key {
			case "-tags", "vcs.revision", "vcs.modified", "CGO_ENABLED", "GOARCH":
				parts = append(parts, s.Key+"="+s.Value)
			}
		}
		build = strings.Join(parts, " ")
	}
	return fingerprint{
		{"training set", shape(trainSet)}, {"test set", shape(test)},
		{"epochs", fmt.Sprint(cfg.Epochs)}, {"batch", fmt.Sprint(cfg.Batch)}, {"dtype", cfg.DType.String()},
		{"loss options", js(cfg.Loss)}, {"optimizer", js(cfg.Optimizer)}, {"seed", fmt.Sprint(cfg.Seed)},
		{"classes", fmt.Sprint(cfg.Classes)}, {"class names", js(cfg.ClassNames)},
		{"matmul mode", l.MatMode.String()}, {"softmax-cross-entropy", l.Xent.String()}, {"storage", l.Storage.String()},
		{"chunk rows", fmt.Sprint(l.ChunkRows)}, {"vocabulary tile", fmt.Sprint(l.VocabTile)}, {"memory budget", fmt.Sprint(l.MemoryBudget)},
		{"backend", be.Name()}, {"dsx build", build},
	}
}

// checkSame broadcasts rank 0's fingerprint and compares this rank's with
// it: an error names what differs.
func checkSame(c dist.Comm, f fingerprint) error {
	mine, _ := json.Marshal(f)
	n := binary.LittleEndian.AppendUint64(nil, uint64(len(mine)))
	if err := c.Broadcast(n, 0); err != nil {
		return err
	}
	theirs := make([]byte, binary.LittleEndian.Uint64(n))
	if c.Rank() == 0 {
		copy(theirs, mine)
	}
	if err := c.Broadcast(theirs, 0); err != nil {
		return err
	}
	var f0 fingerprint
	if err := json.Unmarshal(theirs, &f0); err != nil || len(f0) != len(f) {
		return fmt.Errorf("rank 0's fingerprint (%d bytes) is not this dsx's: %v", len(theirs), err)
	}
	var diff []string
	for i, p := range f {
		if p != f0[i] {
			diff = append(diff, fmt.Sprintf("%s %s here, %s on rank 0", p.Name, p.Value, f0[i].Value))
		}
	}
	if diff != nil {
		return fmt.Errorf("this rank does not train what rank 0 does: %s", strings.Join(diff, "; "))
	}
	return nil
}

// checksum is a cheap sum over the bits of the layer's parameters (W then
// b), the same on two ranks exactly when their parameters are, but for
// collisions.
func checksum(l backend.Layer) (uint64, error) {
	W, b, err := l.Params()
	if err != nil {
		return 0, err
	}
	var a, s uint64 = 1, 0
	for _, t := range [][]float64{dense.F64(W), dense.F64(b)} {
		for _, v := range t {
			a += math.Float64bits(v)
			s += a
		}
	}
	return a ^ s<<1, nil
}

// checkParams compares every rank's parameter checksum with rank 0's: an
// error when they drifted apart (which the reduced gradients and identical
// updates should make impossible: a broken rank, a library that reduces
// differently on different ranks).
func (t *Trainer) checkParams() error {
	c := t.comm
	h, err := checksum(t.layer)
	if err != nil {
		return agree(c, err) // Params fails alike on every rank, or not at all
	}
	buf := binary.LittleEndian.AppendUint64(nil, h)
	if err := c.Broadcast(buf, 0); err != nil {
		return err
	}
	h0 := binary.LittleEndian.Uint64(buf)
	var mine error
	if h != h0 {
		mine = fmt.Errorf("the parameters differ from rank 0's after step %d (checksum %016x, rank 0's %016x): the ranks have drifted apart", t.pos.Step, h, h0)
	}
	if err := dist.Failed(c, mine != nil); err != nil && mine == nil {
		mine = err
	}
	return agree(c, mine)
}
