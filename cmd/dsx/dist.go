package main

// Data-parallel runs: `mpirun -np P dsx train ...` (or mpiexec, srun). A
// process reads its place in the job from the launcher's environment at
// once, so that ranks other than 0 stay quiet from the first line, and
// joins the job (MPI) only once the device is chosen: the pure-Go dsx may
// hand over to dsx-gpu first, which then joins.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"dsx/dist"
	"dsx/train"
)

// launched is this process's place in a launched job of more than one
// rank, from the environment (before MPI is joined); ok false for a
// process alone, or one told to train alone (DSX_DIST=off).
func launched() (l dist.Launcher, ok bool) {
	if strings.TrimSpace(os.Getenv(dist.EnvDist)) == "off" {
		return l, false
	}
	l, ok, err := dist.DetectLauncher(os.Getenv)
	return l, ok && err == nil && l.Size > 1
}

// quiet is w on rank 0 of a launched job and for a process alone, and
// io.Discard on the other ranks: rank 0 alone prints progress, results
// and JSON. It also gives the rank its share of the host's cores where the
// launcher says how many ranks share the host (shareCores), before any
// CPU work.
func quiet(w io.Writer) io.Writer {
	l, ok := launched()
	if ok && l.LocalSize > 1 {
		shareCores(l.LocalSize)
	}
	if ok && l.Rank != 0 {
		return io.Discard
	}
	return w
}

// shareCores sets the Go workers that do a rank's CPU work (GOMAXPROCS:
// the CPU backend splits its products and rows over them; each BLAS call
// is single-threaded unless DSX_BLAS_THREADS says otherwise) to the
// rank's share of this host's cores, among local ranks on it, unless
// GOMAXPROCS is set; it returns the workers and where they come from. A
// rank the launcher bound to some cores (mpirun binds each rank to a core
// or a socket by default) has those already: Go counts only the cores a
// process may run on.
func shareCores(local int) (int, string) {
	mine, host := runtime.NumCPU(), hostCores()
	switch {
	case os.Getenv("GOMAXPROCS") != "":
		return runtime.GOMAXPROCS(0), "GOMAXPROCS"
	case mine < host:
		runtime.GOMAXPROCS(mine)
		return mine, fmt.Sprintf("the %d of this host's %d cores the launcher bound it to", mine, host)
	case local < 2:
		return runtime.GOMAXPROCS(0), fmt.Sprintf("this host's %d cores", host)
	}
	n := max(1, host/local)
	runtime.GOMAXPROCS(n)
	return n, fmt.Sprintf("this host's %d cores shared by %d ranks", host, local)
}

// hostCores is the cores online on this host (Linux's
// /sys/devices/system/cpu/online, "0-7,16-23"), or the cores this process
// may use where that cannot be read.
func hostCores() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return runtime.NumCPU()
	}
	n := 0
	for _, r := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, found := strings.Cut(r, "-")
		a, err1 := strconv.Atoi(lo)
		z := a
		var err2 error
		if found {
			z, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || z < a {
			return runtime.NumCPU()
		}
		n += z - a + 1
	}
	return max(n, runtime.NumCPU())
}

// world is the job this process is a rank of (dist.Local alone).
type world struct {
	comm dist.Comm
	why  string
}

// joinWorld joins the job a launcher started (dist.FromEnv: Local for a
// process alone), says so on stderr, and gives each rank its share of the
// host's cores for its CPU work (Go's workers, GOMAXPROCS), unless
// GOMAXPROCS is set.
func joinWorld(stderr io.Writer) (*world, error) {
	c, why, err := dist.FromEnv()
	if err != nil {
		return nil, err
	}
	w := &world{comm: c, why: why}
	if c.Size() == 1 {
		return w, nil
	}
	threads, from := shareCores(c.LocalSize())
	fmt.Fprintf(stderr, "dsx: %d ranks: %s; CPU workers a rank: %d (%s)\n", c.Size(), why, threads, from)
	return w, nil
}

func (w *world) rank0() bool { return w == nil || w.comm.Rank() == 0 }

// end leaves the job after a command that returned err: an error every
// rank agreed on (a *train.RankError, or a divergence all ranks saw) leaves
// as a collective, as does success, once run has printed the error
// (closeWorld); any other error, which the other ranks may not know of,
// aborts the job (MPI_Abort) at once, so that none waits for ever on this
// one.
func (w *world) end(err error) {
	if w == nil || w.comm.Size() == 1 {
		return
	}
	var re *train.RankError
	var de *train.DivergedError
	var ee *exitError // stopped by a signal: every rank stopped at the same step
	if err != nil && !errors.As(err, &re) && !errors.As(err, &de) && !errors.As(err, &ee) {
		fmt.Fprintf(os.Stderr, "dsx: rank %d of %d: %v (aborting the job)\n", w.comm.Rank(), w.comm.Size(), err)
		w.comm.Abort(1)
	}
	leaving = w
}

// leaving is the job a command ended (end) and closeWorld leaves.
var leaving *world

// closeWorld leaves the job after run has printed the command's error or
// stop line: a barrier, so that rank 0 has printed the error every rank
// shares before any rank exits (a rank exiting non-zero makes mpirun abort
// the others, which lost rank 0's message when it came after), then
// MPI_Finalize.
func closeWorld() {
	w := leaving
	if w == nil {
		return
	}
	leaving = nil
	w.comm.Barrier()
	w.comm.Close()
}

// stopSignal is the signal that stopped a run: this process's, or SIGTERM
// in a data-parallel job that stopped because another rank got one (the
// ranks agree on stopping, train.Trainer.Run), as mpirun sends it to all.
func stopSignal(sig os.Signal, stopped bool, w *world) os.Signal {
	if sig == nil && stopped && w.comm.Size() > 1 {
		return syscall.SIGTERM
	}
	return sig
}

// rankError is how a failed command's error is printed in a launched
// job: an error all ranks share (a *train.RankError, which names the rank
// that raised it, or a divergence every rank saw) by rank 0 alone, any
// other with this rank's number in front; "" means not at all.
func rankError(err error) string {
	l, ok := launched()
	if !ok {
		return err.Error()
	}
	var re *train.RankError
	var de *train.DivergedError
	if errors.As(err, &re) || errors.As(err, &de) {
		if l.Rank != 0 {
			return ""
		}
		return err.Error()
	}
	return fmt.Sprintf("rank %d of %d: %v", l.Rank, l.Size, err)
}
