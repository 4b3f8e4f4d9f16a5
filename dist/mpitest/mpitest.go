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
	out := t.TempDir()
	args := l.args(np, extra)
	args = append(args, os.Args[0], "-test.run=^"+test+"$", "-test.count=1", "-test.v")
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, l.Path, args...)
	cmd.Env = append(os.Environ(), envRank+"="+test, envOut+"="+out)
	cmd.Env = append(cmd.Env, env...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	j := Job{Out: out, Output: buf.Bytes(), Err: err, Ended: time.Now()}
	if ctx.Err() != nil {
		t.Fatalf("%s -np %d %s: still running after %v; output:\n%s", l.Family, np, test, limit, tail(j.Output))
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
