// Package mpitest runs a test of the current test binary as the ranks of
// an MPI job: Launch starts the binary under a launcher (Open MPI's
// mpirun, or MPICH's Hydra) with -test.run set to one test, which finds
// itself a rank (InRank), joins the job (dist.FromEnv) and writes what it
// computed to Out(); the launching test reads those files and compares.
// Without the launcher the test skips, saying so.
package mpitest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	envRank = "DSX_MPITEST"     // set in a rank: the test it runs
	envOut  = "DSX_MPITEST_OUT" // the folder a rank writes into
)

// InRank reports whether this process is a rank that Launch started for
// the test named name.
func InRank(name string) bool { return os.Getenv(envRank) == name }

// Out is the folder a rank writes its results into.
func Out() string { return os.Getenv(envOut) }

// Launcher is one MPI's launcher.
type Launcher struct {
	Family string // "Open MPI", "MPICH"
	Path   string
	args   func(np int, extra []string) []string
}

// OpenMPI finds Open MPI's mpirun (mpirun.openmpi, or an mpirun that says
// it is Open MPI's), or skips the test.
func OpenMPI(t testing.TB) Launcher {
	t.Helper()
	for _, name := range []string{"mpirun.openmpi", "mpirun"} {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		if out, _ := exec.Command(p, "--version").CombinedOutput(); bytes.Contains(out, []byte("Open MPI")) {
			return Launcher{Family: "Open MPI", Path: p, args: func(np int, extra []string) []string {
				// As root (containers, CI) mpirun refuses to start without
				// --allow-run-as-root; --oversubscribe lets ranks outnumber
				// this machine's cores.
				return append([]string{"--allow-run-as-root", "--oversubscribe", "-np", fmt.Sprint(np)}, extra...)
			}}
		}
	}
	t.Skip("no Open MPI mpirun on PATH (make mpi installs Debian's openmpi-bin)")
	return Launcher{}
}

// MPICH finds MPICH's Hydra (mpiexec.hydra or mpiexec.mpich), or skips.
func MPICH(t testing.TB) Launcher {
	t.Helper()
	for _, name := range []string{"mpiexec.hydra", "mpiexec.mpich"} {
		if p, err := exec.LookPath(name); err == nil {
			return Launcher{Family: "MPICH", Path: p, args: func(np int, extra []string) []string {
				return append([]string{"-n", fmt.Sprint(np)}, extra...)
			}}
		}
	}
	t.Skip("no MPICH Hydra (mpiexec.hydra, mpiexec.mpich) on PATH (Debian's mpich)")
	return Launcher{}
}

// Job is one launch's outcome.
type Job struct {
	Out    string // the folder the ranks wrote into
	Output []byte // the launcher's stdout and stderr
	Err    error  // the launcher's exit
	Ended  time.Time
}

// Launch runs test (a test of this binary) as np ranks under l, with the
// launcher's extra arguments and extra environment (KEY=VALUE), and waits
// for it for at most limit. It fails the test when the launcher cannot
// start; the job's own failure is in Job.Err for the caller to judge.
func (l Launcher) Launch(t testing.TB, np int, test string, extra []string, env []string, limit time.Duration) Job {
	t.Helper()
	return l.Start(t, np, test, extra, env, limit).Wait(t)
}

// Running is a job started and not yet waited for.
type Running struct {
	Out    string // the folder the ranks write into
	cmd    *exec.Cmd
	ctx    context.Context
	cancel context.CancelFunc
	buf    *syncBuffer
	what   string
}

// syncBuffer is the job's output, written by the launcher's pipes and read
// while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// Output is what the job has printed so far.
func (r *Running) Output() []byte { return r.buf.Bytes() }

// Start starts a job as Launch does, without waiting for it.
func (l Launcher) Start(t testing.TB, np int, test string, extra []string, env []string, limit time.Duration) *Running {
	t.Helper()
	r := &Running{Out: t.TempDir(), buf: new(syncBuffer), what: fmt.Sprintf("%s -np %d %s (limit %v)", l.Family, np, test, limit)}
	args := l.args(np, extra)
	args = append(args, os.Args[0], "-test.run=^"+test+"$", "-test.count=1", "-test.v")
	r.ctx, r.cancel = context.WithTimeout(context.Background(), limit)
	r.cmd = exec.CommandContext(r.ctx, l.Path, args...)
	r.cmd.Env = append(os.Environ(), envRank+"="+test, envOut+"="+r.Out)
	r.cmd.Env = append(r.cmd.Env, env...)
	r.cmd.Stdout, r.cmd.Stderr = r.buf, r.buf
	if err := r.cmd.Start(); err != nil {
		r.cancel()
		t.Fatalf("%s: %v", r.what, err)
	}
	return r
}

// Wait waits for the job; one still running at its limit fails the test.
func (r *Running) Wait(t testing.TB) Job {
	t.Helper()
	defer r.cancel()
	err := r.cmd.Wait()
	j := Job{Out: r.Out, Output: r.buf.Bytes(), Err: err, Ended: time.Now()}
	if r.ctx.Err() != nil {
		t.Fatalf("%s: still running at its limit; output:\n%s", r.what, tail(j.Output))
	}
	return j
}

// Read is the file name rank wrote into the job's folder.
func (j Job) Read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(j.Out, name))
	if err != nil {
		t.Fatalf("%v; the job's output:\n%s", err, tail(j.Output))
	}
	return b
}

// Tail is the end of the job's output, for messages.
func (j Job) Tail() string { return tail(j.Output) }

func tail(b []byte) string {
	s := string(b)
	if len(s) > 4000 {
		s = "…" + s[len(s)-4000:]
	}
	return strings.TrimSpace(s)
}
