//go:build unix

package main

// `mpirun -np P dsx train`: the test binary runs as dsx in each rank
// (TestMPIDsxRank), under Open MPI's mpirun (package mpitest).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"dsx/dist/mpitest"
	"dsx/internal/tol"
	"dsx/model"

	"gorgonia.org/tensor"
)

const (
	envArgs     = "DSX_TEST_ARGS"      // the dsx command line of every rank (JSON)
	envArgsOne  = "DSX_TEST_ARGS_ONE"  // more arguments for rank 1 alone (JSON)
	envPauseOne = "DSX_TEST_PAUSE_ONE" // DSX_TEST_PAUSE for rank 1 alone
)

// TestMPIDsxRank is dsx itself in the ranks of the jobs below: it runs
// the command line in DSX_TEST_ARGS and exits with dsx's code, having
// written its pid where the job's results go.
func TestMPIDsxRank(t *testing.T) {
	if !mpitest.InRank("TestMPIDsxRank") {
		t.Skip("a rank of the mpirun dsx tests")
	}
	var args, more []string
	json.Unmarshal([]byte(os.Getenv(envArgs)), &args)
	rank := os.Getenv("OMPI_COMM_WORLD_RANK")
	if rank == "1" {
		json.Unmarshal([]byte(os.Getenv(envArgsOne)), &more)
		args = append(args, more...)
		pauseAt = os.Getenv(envPauseOne) // checkpoint.go's test hook, for rank 1 alone
	}
	os.WriteFile(filepath.Join(mpitest.Out(), "rank-"+rank+".pid"), []byte(strconv.Itoa(os.Getpid())), 0o644)
	os.Exit(run(args, os.Stdout, os.Stderr))
}

// mpiDsx runs dsx with args as np ranks (extra: mpirun's own arguments).
func mpiDsx(t *testing.T, np int, extra []string, args []string, env ...string) mpitest.Job {
	t.Helper()
	l := mpitest.OpenMPI(t)
	js, _ := json.Marshal(args)
	return l.Launch(t, np, "TestMPIDsxRank", extra, append(env, envArgs+"="+string(js)), 3*time.Minute)
}

// blobCSV writes rows of a 3-class problem in 4 features: class c's
// feature c is 2 + noise, the others noise in [0, 1).
func blobCSV(t *testing.T, name string, rows int, seed uint64) string {
	r := rand.New(rand.NewPCG(seed, 7))
	var lines []string
	for i := range rows {
		c := i % 3
		l := strconv.Itoa(c)
		for j := range 4 {
			v := r.Float64()
			if j == c {
				v += 2
			}
			l += fmt.Sprintf(",%.4f", v)
		}
		lines = append(lines, l)
	}
	return writeCSV(t, name, lines)
}

func readModel(t *testing.T, path string) []float64 {
	t.Helper()
	m, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var v []float64
	for _, x := range append(append([]float32(nil), m.W...), m.B...) {
		v = append(v, float64(x))
	}
	return v
}

// mpiLossFlags are the loss options of the model tests: every
// denominator of the mean (an ignored class, class weights, z-loss's kept
// rows) and label smoothing.
var mpiLossFlags = []string{"--ignore-index", "1", "--class-weights", "1,2,0.5", "--label-smoothing", "0.1", "--z-loss", "1e-3"}

// TestMPITrain: `mpirun -np P dsx train` for P = 2, 3 and over TCP writes
// (on rank 0 alone) the model `dsx train` writes, within
// tol.DataParallelParams in float64, with SGD and Adam, and with every
// loss option that has a denominator; a second run of 3 ranks writes the
// same bytes, in float64 and float32 (whose bound over 10 steps is too
// loose to test: the layer tests hold float32 to one step).
func TestMPITrain(t *testing.T) {
	mpitest.OpenMPI(t)
	train, test := blobCSV(t, "train.csv", 301, 1), blobCSV(t, "test.csv", 99, 2)
	dir := t.TempDir()
	type job struct {
		name  string
		np    int
		extra []string
	}
	np2, np3, tcp := job{"np=2", 2, nil}, job{"np=3", 3, nil}, job{"tcp/np=3", 3, []string{"--mca", "pml", "ob1", "--mca", "btl", "tcp,self"}}
	for _, c := range []struct {
		name string
		args []string
		jobs []job // a second np=3 run checks that reruns are bitwise identical
	}{
		{"sgd/float64", []string{"--optimizer", "sgd", "--lr", "0.05", "--dtype", "float64"}, []job{np2, np3, tcp}},
		{"adam/float64", []string{"--optimizer", "adam", "--lr", "0.01", "--dtype", "float64"}, []job{np2}},
		{"adam/float32", []string{"--optimizer", "adam", "--lr", "0.01", "--dtype", "float32"}, []job{np3}},
	} {
		t.Run(c.name, func(t *testing.T) {
			// 301 rows in batches of 64: 5 steps an epoch, the last of 45
			// rows; 2 epochs.
			args := func(out string) []string {
				a := []string{"train", "--device", "cpu", "--train", train, "--test", test, "--epochs", "2", "--batch", "64", "--seed", "5", "--out", out}
				return append(append(a, mpiLossFlags...), c.args...)
			}
			one := filepath.Join(dir, strings.ReplaceAll(c.name, "/", "-")+".safetensors")
			if code, _, stderr := dsx(t, args(one)...); code != 0 {
				t.Fatalf("dsx train: %s", stderr)
			}
			want := readModel(t, one)
			for _, j := range c.jobs {
				out := filepath.Join(t.TempDir(), "m.safetensors")
				job := mpiDsx(t, j.np, j.extra, args(out))
				if job.Err != nil {
					t.Fatalf("%s: %v\n%s", j.name, job.Err, job.Tail())
				}
				if n := bytes.Count(job.Output, []byte("model saved to")); n != 1 {
					t.Errorf("%s: %d ranks reported the model saved, want rank 0 alone:\n%s", j.name, n, job.Tail())
				}
				got := readModel(t, out)
				if strings.HasSuffix(c.name, "float64") {
					tol.Expect(t, j.name+" model", got, want, cliBound(t, train, c.args, 10))
				}
				if j.name == "np=3" {
					again := filepath.Join(t.TempDir(), "m.safetensors")
					if job := mpiDsx(t, 3, nil, args(again)); job.Err != nil {
						t.Fatalf("np=3 again: %v\n%s", job.Err, job.Tail())
					}
					a, _ := os.ReadFile(out)
					b, _ := os.ReadFile(again)
					if !bytes.Equal(a, b) {
						t.Errorf("two runs of 3 ranks wrote different model files: reruns must be bitwise identical")
					}
				}
			}
		})
	}
}

// cliBound is tol.DataParallelParams for steps steps of dsx train on the
// standardised blobs: the gradients are at most max|x| (each is a
// weighted mean of x·(p − q) with |p − q| ≤ 1; z-loss's 2λ·lse·p adds 1%
// at λ = 1e-3) and 1 for b; L ≤ ½·max_i(‖x_i‖² + 1)·(1 + 8λ) (the
// softmax's Jacobian is at most ½; a weighted mean of x xᵀ is at most its
// largest row's norm²); SGD's momentum 0.9 passes a gradient difference on
// at most lr·min(steps, 10) times, Adam's at most 2·lr/ε.
func cliBound(t *testing.T, csv string, args []string, steps int) tol.Tol {
	t.Helper()
	b, err := os.ReadFile(csv)
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]float64
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r []float64
		for _, f := range strings.Split(l, ",")[1:] {
			v, _ := strconv.ParseFloat(f, 64)
			r = append(r, v)
		}
		rows = append(rows, r)
	}
	N := len(rows[0])
	mean, std := make([]float64, N), make([]float64, N)
	for _, r := range rows {
		for j, v := range r {
			mean[j] += v / float64(len(rows))
		}
	}
	for _, r := range rows {
		for j, v := range r {
			std[j] += (v - mean[j]) * (v - mean[j]) / float64(len(rows))
		}
	}
	xmax, norm2 := 0.0, 0.0
	for _, r := range rows {
		n := 0.0
		for j, v := range r {
			x := (v - mean[j]) / math.Sqrt(std[j])
			xmax, n = max(xmax, math.Abs(x)), n+x*x
		}
		norm2 = max(norm2, n)
	}
	const lambda = 1e-3
	lr, _ := strconv.ParseFloat(args[3], 64)
	amp := lr * float64(min(steps, 10))
	if args[1] == "adam" {
		amp = 2 * lr / 1e-8
	}
	return tol.DataParallelParams(tensor.Float64, steps, max(1, xmax)*1.01, amp, 1+lr*0.5*(norm2+1)*(1+8*lambda))
}

// TestMPITrainErrors: what one rank finds wrong stops every rank with one
// message, printed once, that names the rank; nothing is written and a
// model already there is kept.
func TestMPITrainErrors(t *testing.T) {
	mpitest.OpenMPI(t)
	train := blobCSV(t, "train.csv", 90, 3)
	out := filepath.Join(t.TempDir(), "m.safetensors")
	if code, _, stderr := dsx(t, "train", "--device", "cpu", "--train", train, "--epochs", "1", "--out", out); code != 0 {
		t.Fatal(stderr)
	}
	old, _ := os.ReadFile(out)
	base := []string{"train", "--device", "cpu", "--train", train, "--epochs", "2", "--batch", "16", "--out", out}
	for _, c := range []struct {
		name  string
		args  []string
		rank1 []string
		want  string
	}{
		{"settings", nil, []string{"--seed", "9"}, "dsx train: rank 1 of 2: this rank does not train what rank 0 does: seed 9 here, 1 on rank 0\n"},
		// noisy (reliability_test.go): no model fits it, so huge weights
		// make a huge loss, which every rank sees.
		{"diverged", []string{"--optimizer", "sgd", "--lr", "1e30", "--train", noisy(t, "noisy.csv")}, nil, "dsx train: training diverged in epoch 1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			js, _ := json.Marshal(c.rank1)
			job := mpiDsx(t, 2, nil, append(slices.Clone(base), c.args...), envArgsOne+"="+string(js))
			if job.Err == nil {
				t.Fatalf("the job exited 0:\n%s", job.Tail())
			}
			if n := strings.Count(string(job.Output), "dsx train: "); n != 1 || !strings.Contains(string(job.Output), c.want) {
				t.Errorf("want the error once, saying %q; output:\n%s", c.want, job.Tail())
			}
			if now, _ := os.ReadFile(out); !bytes.Equal(now, old) {
				t.Error("the model file changed")
			}
		})
	}
	t.Run("no launcher", func(t *testing.T) {
		t.Setenv("DSX_DIST", "mpi")
		code, _, stderr := dsx(t, base...)
		if code != 1 || !strings.Contains(stderr, "DSX_DIST=mpi, but no launcher started this process") {
			t.Errorf("exit %d: %s", code, stderr)
		}
	})
}

// TestMPITrainKilledRank: a rank killed with SIGKILL in the middle of
// training ends the job within 30 s of the kill (measured on the clock,
// from the kill to mpirun's exit), mpirun names the lost rank, and the
// model already there is untouched.
func TestMPITrainKilledRank(t *testing.T) {
	l := mpitest.OpenMPI(t)
	train := blobCSV(t, "train.csv", 300, 4)
	out := filepath.Join(t.TempDir(), "m.safetensors")
	os.WriteFile(out, []byte("the old model"), 0o644)
	args := []string{"train", "--device", "cpu", "--train", train, "--epochs", "100000", "--batch", "8", "--out", out}
	js, _ := json.Marshal(args)
	run := l.Start(t, 3, "TestMPIDsxRank", nil, []string{envArgs + "=" + string(js)}, 3*time.Minute)
	// Rank 1's pid, once it has written it; then a second of training.
	var pid int
	for deadline := time.Now().Add(2 * time.Minute); pid == 0; time.Sleep(100 * time.Millisecond) {
		if b, err := os.ReadFile(filepath.Join(run.Out, "rank-1.pid")); err == nil {
			pid, _ = strconv.Atoi(string(b))
		}
		if time.Now().After(deadline) {
			run.Wait(t)
			t.Fatal("rank 1 never started")
		}
	}
	time.Sleep(time.Second)
	killed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	job := run.Wait(t)
	took := job.Ended.Sub(killed)
	if job.Err == nil {
		t.Fatalf("the job exited 0 with a rank killed:\n%s", job.Tail())
	}
	if took > 30*time.Second {
		t.Errorf("the job ended %v after rank 1 was killed, want ≤ 30 s", took)
	}
	if !regexp.MustCompile(`rank 1 .*(signal 9|Killed)`).Match(job.Output) {
		t.Errorf("the output does not name rank 1 as killed:\n%s", job.Tail())
	}
	if b, _ := os.ReadFile(out); string(b) != "the old model" {
		t.Error("the model file changed")
	}
	t.Logf("ended %v after the kill", took.Round(time.Millisecond))
}

// TestMPITrainStopAndResume: SIGTERM to one rank stops every rank after the
// same step (the ranks agree on stopping each step), rank 0 saves the
// checkpoint and says so, exit 143 and no model; `mpirun ... --resume`
// then finishes with the bytes of the run never stopped, and one process
// resuming the same checkpoint finishes with its model within
// tol.DataParallelParams (another P changes only the order of summation).
func TestMPITrainStopAndResume(t *testing.T) {
	l := mpitest.OpenMPI(t)
	train := blobCSV(t, "train.csv", 90, 6)
	dir := t.TempDir()
	opt := []string{"--optimizer", "sgd", "--lr", "0.05", "--dtype", "float64"} // cliBound's form
	args := func(out string, more ...string) []string {
		a := []string{"train", "--device", "cpu", "--train", train, "--epochs", "3", "--batch", "16", "--out", out}
		return append(append(a, opt...), more...)
	}
	whole := filepath.Join(dir, "whole.safetensors")
	if job := mpiDsx(t, 2, nil, args(whole)); job.Err != nil {
		t.Fatalf("%v\n%s", job.Err, job.Tail())
	}
	out, ck := filepath.Join(dir, "m.safetensors"), filepath.Join(dir, "ck.safetensors")
	js, _ := json.Marshal(args(out, "--checkpoint", ck))
	run := l.Start(t, 2, "TestMPIDsxRank", nil, []string{envArgs + "=" + string(js), envPauseOne + "=step:8"}, 3*time.Minute)
	var pid int
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if bytes.Contains(run.Output(), []byte("dsx-test: paused at step 8")) {
			b, _ := os.ReadFile(filepath.Join(run.Out, "rank-1.pid"))
			pid, _ = strconv.Atoi(string(b))
			break
		}
		if time.Now().After(deadline) {
			run.Wait(t)
			t.Fatal("rank 1 never paused at step 8")
		}
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	job := run.Wait(t)
	o := string(job.Output)
	if job.Err == nil || !strings.Contains(o, "dsx train: stopped by SIGTERM in epoch 2 of 3, after batch 2 of 6 (step 8); checkpoint saved to "+ck) ||
		strings.Count(o, "dsx train: stopped") != 1 {
		t.Fatalf("want one 'stopped after step 8, checkpoint saved' and a failed job; got %v:\n%s", job.Err, job.Tail())
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a stopped run wrote the model")
	}
	ck1 := filepath.Join(dir, "ck-for-one.safetensors") // the resume below rewrites ck
	if b, err := os.ReadFile(ck); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(ck1, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if job := mpiDsx(t, 2, nil, args(out, "--checkpoint", ck, "--resume", ck)); job.Err != nil {
		t.Fatalf("resume: %v\n%s", job.Err, job.Tail())
	}
	a, _ := os.ReadFile(whole)
	b, _ := os.ReadFile(out)
	if !bytes.Equal(a, b) {
		t.Error("the resumed run's model differs from the run never stopped")
	}
	one := filepath.Join(dir, "one.safetensors")
	if code, _, stderr := dsx(t, args(one, "--resume", ck1)...); code != 0 {
		t.Fatalf("one process resuming the 2 ranks' checkpoint: %s", stderr)
	}
	// 90 rows in batches of 16: 6 steps an epoch, 3 epochs.
	tol.Expect(t, "the model of 2 ranks stopped and 1 process resumed", readModel(t, one), readModel(t, whole), cliBound(t, train, opt, 18))
}
