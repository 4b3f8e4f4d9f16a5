//go:build unix

package dist_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"dsx/dist"
	"dsx/dist/mpitest"
)

// rankReport is what each rank of TestMPIRank writes.
type rankReport struct {
	Rank, Size, LocalRank, LocalSize int
	Engine                           string
	F32                              []float32
	F64                              []float64
	Bytes                            string
	Peer                             string // the PeerError of rank 1's failed flag
}

// TestMPIRank is the body of TestMPI's ranks (it skips when not started
// as one): it joins the job and runs each collective once.
func TestMPIRank(t *testing.T) {
	if !mpitest.InRank("TestMPIRank") {
		t.Skip("a rank of TestMPI's jobs")
	}
	c, why, err := dist.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	t.Log(why)
	r := rankReport{Rank: c.Rank(), Size: c.Size(), LocalRank: c.LocalRank(), LocalSize: c.LocalSize(), Engine: c.Engine()}
	r.F32 = []float32{float32(c.Rank() + 1), 0.5, -2}
	r.F64 = []float64{float64(c.Rank()) * 0.25, 1e300}
	if c.Rank() == 0 {
		r.F64[1] = -1e300 // the sum cancels: exact where the order is fixed
	}
	b := []byte(fmt.Sprintf("from rank %d", c.Rank()))
	errs := []error{c.AllReduceF32(r.F32), c.AllReduceF64(r.F64), c.Broadcast(b, c.Size()-1), c.Barrier()}
	r.Bytes = string(b)
	if err := dist.Failed(c, c.Rank() == 1); err != nil {
		r.Peer = err.Error()
	}
	errs = append(errs, c.Close())
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	j, _ := json.Marshal(r)
	if err := os.WriteFile(filepath.Join(mpitest.Out(), fmt.Sprintf("rank-%d.json", r.Rank)), j, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestMPI runs TestMPIRank's collectives under Open MPI's mpirun with 2
// and 3 ranks, over TCP alone (--mca pml ob1 --mca btl tcp,self: the path between
// machines), and under MPICH's Hydra where it is installed (its handles
// are integers, Open MPI's addresses).
func TestMPI(t *testing.T) {
	for _, c := range []struct {
		name     string
		launcher func(testing.TB) mpitest.Launcher
		np       int
		extra    []string
		engine   string
	}{
		{"OpenMPI/np=2", mpitest.OpenMPI, 2, nil, "mpi: Open MPI v"},
		{"OpenMPI/np=3", mpitest.OpenMPI, 3, nil, "mpi: Open MPI v"},
		{"OpenMPI/tcp/np=3", mpitest.OpenMPI, 3, []string{"--mca", "pml", "ob1", "--mca", "btl", "tcp,self"}, "mpi: Open MPI v"},
		{"MPICH/np=3", mpitest.MPICH, 3, nil, "mpi: MPICH "},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := c.launcher(t)
			j := l.Launch(t, c.np, "TestMPIRank", c.extra, nil, 2*time.Minute)
			if j.Err != nil {
				t.Fatalf("%v:\n%s", j.Err, j.Tail())
			}
			for r := range c.np {
				var got rankReport
				if err := json.Unmarshal(j.Read(t, fmt.Sprintf("rank-%d.json", r)), &got); err != nil {
					t.Fatal(err)
				}
				P := float32(c.np)
				switch {
				case got.Rank != r || got.Size != c.np || got.LocalRank != r || got.LocalSize != c.np:
					t.Errorf("rank %d: %+v: want rank %d of %d, all on this host", r, got, r, c.np)
				case !strings.HasPrefix(got.Engine, c.engine):
					t.Errorf("rank %d: engine %q, want %q…", r, got.Engine, c.engine)
				case got.F32[0] != P*(P+1)/2 || got.F32[1] != 0.5*P || got.F32[2] != -2*P:
					t.Errorf("rank %d: float32 all-reduce %v", r, got.F32)
				case got.F64[0] != 0.25*float64(c.np*(c.np-1)/2):
					t.Errorf("rank %d: float64 all-reduce %v", r, got.F64)
				case got.Bytes != fmt.Sprintf("from rank %d", c.np-1):
					t.Errorf("rank %d: broadcast gave %q", r, got.Bytes)
				case got.Peer != fmt.Sprintf("dist: rank 1 of %d failed this step (the error is reported there)", c.np):
					t.Errorf("rank %d: failed flags gave %q", r, got.Peer)
				}
			}
		})
	}
}

// TestMPIKilledRankBody is the body of TestMPIKilledRank's ranks: they
// all-reduce in a loop until rank 1 kills itself with SIGKILL, having
// written when.
func TestMPIKilledRankBody(t *testing.T) {
	if !mpitest.InRank("TestMPIKilledRankBody") {
		t.Skip("a rank of TestMPIKilledRank's job")
	}
	c, _, err := dist.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]float32, 1<<16)
	for i := 0; ; i++ {
		if err := c.AllReduceF32(buf); err != nil {
			t.Fatal(err)
		}
		if i == 20 && c.Rank() == 1 {
			os.WriteFile(filepath.Join(mpitest.Out(), "killed"), nil, 0o644)
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
}

// TestMPIKilledRank: a rank killed with SIGKILL in the middle of the
// collectives ends the whole job within 30 s (the others wait in an
// all-reduce that can never finish), with an error that names the lost
// rank. The 30 s run from the moment the rank is killed (its marker file)
// to mpirun's exit, measured on the clock, not a timeout, so that a loaded
// machine only shows as a longer time.
func TestMPIKilledRank(t *testing.T) {
	l := mpitest.OpenMPI(t)
	j := l.Launch(t, 3, "TestMPIKilledRankBody", nil, nil, 3*time.Minute)
	if j.Err == nil {
		t.Fatalf("the job exited 0 with a rank killed:\n%s", j.Tail())
	}
	fi, err := os.Stat(filepath.Join(j.Out, "killed"))
	if err != nil {
		t.Fatalf("rank 1 did not get to kill itself: %v\n%s", err, j.Tail())
	}
	took := j.Ended.Sub(fi.ModTime())
	if took > 30*time.Second {
		t.Errorf("the job ended %v after rank 1 was killed, want ≤ 30 s", took)
	}
	if !regexp.MustCompile(`rank 1 .*(signal 9|Killed)`).Match(j.Output) {
		t.Errorf("the launcher's output does not name rank 1 as killed:\n%s", j.Tail())
	}
	t.Logf("ended %v after the kill: %s", took.Round(time.Millisecond), regexp.MustCompile(`.*rank 1 .*`).Find(j.Output))
}
