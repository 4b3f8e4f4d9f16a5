package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"dsx/internal/atomicfile"
	"dsx/internal/checkpoint"
	"dsx/internal/quote"
	"dsx/train"
)

// ckptFlags are dsx train's flags for checkpoints, resuming and starting
// from a model.
type ckptFlags struct {
	path, every, resume, init string
	steps                     int           // --checkpoint-every as steps, or
	period                    time.Duration // as a duration
}

func (c *ckptFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.path, "checkpoint", "", "save a checkpoint to this `file` (atomically) every --checkpoint-every, when stopped by SIGTERM or SIGINT, and at the end; default with --resume: the file resumed from")
	fs.StringVar(&c.every, "checkpoint-every", "10m", "how often to save the checkpoint: a duration (10m, 1h30m) or a number of steps")
	fs.StringVar(&c.resume, "resume", "", "continue the run saved in this checkpoint `file`: same data and settings (it names any that differ); --out, --checkpoint, --checkpoint-every, --json and a larger --epochs may change")
	fs.StringVar(&c.init, "init", "", "start from this model `file`'s W and b (and its feature scaling) with a fresh optimizer")
}

// check validates the flags before any data are read.
func (c *ckptFlags) check() error {
	if c.resume != "" && c.init != "" {
		return usageErr("--resume continues a run from its checkpoint's W and b; --init starts a new run from a model's: give one")
	}
	if c.path == "" {
		c.path = c.resume
	}
	if n, err := strconv.Atoi(c.every); err == nil {
		if n < 1 {
			return usageErr("--checkpoint-every %d: want ≥ 1 steps or a duration", n)
		}
		c.steps = n
	} else if d, err := time.ParseDuration(c.every); err == nil && d > 0 {
		c.period = d
	} else {
		return usageErr("--checkpoint-every %s: want a duration such as 10m or a number of steps", quote.Value(c.every))
	}
	if c.path != "" {
		if err := atomicfile.Check(c.path); err != nil {
			return fmt.Errorf("--checkpoint: %w", err)
		}
	}
	return nil
}

// saver saves the trainer's checkpoint when it is due, and remembers the
// step it last saved.
type saver struct {
	f     *ckptFlags
	meta  map[string]string // added to the model's metadata
	bar   *progress
	last  time.Time
	saved int // the step last saved, -1 before any
}

// save writes the checkpoint of the trainer's position now (rank 0 alone).
func (s *saver) save(tr *train.Trainer) error {
	if tr.Rank() != 0 {
		return nil
	}
	st, err := tr.State()
	if err != nil {
		return err
	}
	for k, v := range s.meta {
		st.Meta[k] = v
	}
	if err := train.SaveState(s.f.path, st); err != nil {
		return err
	}
	s.last, s.saved = time.Now(), tr.Position().Step
	return nil
}

// step is train.Options.Step: it saves when --checkpoint-every says so. A
// periodic save that fails is reported, and training goes on (the
// previous checkpoint is kept).
func (s *saver) step(tr *train.Trainer) error {
	testPause("step", tr.Position().Step)
	step := tr.Position().Step
	due := s.f.steps > 0 && step%s.f.steps == 0 || s.f.period > 0 && time.Since(s.last) >= s.f.period
	if s.f.path == "" || !due {
		return nil
	}
	if err := s.save(tr); err != nil {
		s.bar.line(fmt.Sprintf("dsx train: checkpoint at step %d not saved, training goes on: %v", step, err))
	}
	return nil
}

// stopper turns the first SIGTERM or SIGINT into the cancellation of its
// context (the trainer stops after the step under way) and a second into
// an immediate exit, 128 + the signal's number, which leaves the
// checkpoint file as it was (its writes are atomic).
type stopper struct {
	ctx    context.Context
	cancel context.CancelFunc
	ch     chan os.Signal
	seen   chan struct{} // a value per signal, for testPause
	mu     sync.Mutex
	first  os.Signal
}

func newStopper() *stopper {
	s := &stopper{ch: make(chan os.Signal, 2), seen: make(chan struct{}, 2)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	signal.Notify(s.ch, syscall.SIGTERM, syscall.SIGINT)
	pauseSignals = s.seen
	go func() {
		for sig := range s.ch {
			s.mu.Lock()
			again := s.first != nil
			if !again {
				s.first = sig
			}
			s.mu.Unlock()
			if again {
				os.Exit(exitCode(sig))
			}
			s.cancel()
			select {
			case s.seen <- struct{}{}:
			default:
			}
		}
	}()
	return s
}

// signal is the first signal received, or nil.
func (s *stopper) signal() os.Signal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first
}

func (s *stopper) stop() {
	signal.Stop(s.ch)
	close(s.ch)
	s.cancel()
	pauseSignals = nil
}

// exitCode is a shell's code for a process ended by sig: 128 + its number
// (143 for SIGTERM, 130 for SIGINT).
func exitCode(sig os.Signal) int {
	if n, ok := sig.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return 1
}

// exitError ends dsx with code, after msg (when not empty) is printed.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// stopped is the line printed when a signal stops training: what was
// saved, and the command that resumes.
func stopped(sig os.Signal, tr *train.Trainer, epochs int, f *ckptFlags, args []string, saveErr error) string {
	name := map[os.Signal]string{syscall.SIGTERM: "SIGTERM", syscall.SIGINT: "SIGINT"}[sig]
	head := fmt.Sprintf("dsx train: stopped by %s %s; ", name, where(tr, epochs))
	switch {
	case f.path == "":
		return head + "nothing was saved (train with --checkpoint FILE to save a checkpoint to resume from)"
	case saveErr != nil:
		return head + fmt.Sprintf("the checkpoint was not saved: %v", saveErr)
	}
	return head + fmt.Sprintf("checkpoint saved to %s; resume with: %s", f.path, resumeCommand(args, f.path))
}

// where says where training stands: "in epoch 2 of 6, after batch 5 of
// 10 (step 15)", or "after 2 of 6 epochs (step 20)".
func where(tr *train.Trainer, epochs int) string {
	p := tr.Position()
	if p.Batch > 0 {
		return fmt.Sprintf("in epoch %d of %d, after batch %d of %d (step %d)", p.Epoch+1, epochs, p.Batch, tr.Batches(), p.Step)
	}
	return fmt.Sprintf("after %d of %d epochs (step %d)", p.Epoch, epochs, p.Step)
}

// resumeCommand is the dsx train command line args with --resume path in
// place of any --resume or --init, quoted for a POSIX shell.
func resumeCommand(args []string, path string) string {
	out := []string{"dsx", "train"}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && (name == "resume" || name == "init") {
			if !hasValue {
				i++ // its value
			}
			continue
		}
		out = append(out, shellQuote(a))
	}
	return strings.Join(append(out, "--resume", shellQuote(path)), " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// The test hook DSX_TEST_PAUSE=step:N,write:K (either or both) pauses the
// run after its step N, and in the middle of its K-th checkpoint write:
// it prints "dsx-test: paused at step N" (or "write K") on stderr and
// waits for a SIGTERM or SIGINT (or is killed). Tests signal the process
// when it says it is there, so that where a signal lands depends on the
// run's progress, not on time.
var (
	pauseAt      = os.Getenv("DSX_TEST_PAUSE")
	pauseSignals chan struct{} // the stopper's, while one runs
	pauseWrites  int
)

func init() {
	if pauseAt != "" {
		checkpoint.MidWrite = func() {
			pauseWrites++
			testPause("write", pauseWrites)
		}
	}
}

// testPause pauses at what n of kind (step, write) when DSX_TEST_PAUSE
// names it.
func testPause(kind string, n int) {
	if pauseAt == "" || pauseSignals == nil {
		return
	}
	for _, p := range strings.Split(pauseAt, ",") {
		if p == kind+":"+strconv.Itoa(n) {
			fmt.Fprintf(os.Stderr, "dsx-test: paused at %s %d\n", kind, n)
			<-pauseSignals
			return
		}
	}
}
