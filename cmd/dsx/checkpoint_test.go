package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"dsx/train"
)

// TestMain lets a test run dsx as a child process (DSX_TEST_MAIN=1: the
// test binary is dsx), so that signals reach a real process.
func TestMain(m *testing.M) {
	if os.Getenv("DSX_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// blobsCSV writes rows of 6 features in 4 Gaussian blobs far from the
// origin (training needs the scaler), labels first.
func blobsCSV(t *testing.T, name string, rows int, seed uint64) string {
	r := rand.New(rand.NewPCG(seed, 9))
	lines := make([]string, rows)
	for i := range lines {
		c := r.IntN(4)
		f := []string{fmt.Sprint(c)}
		for j := 0; j < 6; j++ {
			v := 50 + r.NormFloat64()
			if j%4 == c {
				v += 4
			}
			f = append(f, fmt.Sprintf("%.5f", v))
		}
		lines[i] = strings.Join(f, ",")
	}
	return writeCSV(t, name, lines)
}

// child is dsx train running as a process.
type child struct {
	t     *testing.T
	cmd   *exec.Cmd
	lines chan string
	log   bytes.Buffer // stderr so far
}

// start runs dsx with args and DSX_TEST_PAUSE=pause.
func start(t *testing.T, pause string, args ...string) *child {
	t.Helper()
	c := &child{t: t, cmd: exec.Command(os.Args[0], args...), lines: make(chan string, 100)}
	c.cmd.Env = append(os.Environ(), "DSX_TEST_MAIN=1", "DSX_TEST_PAUSE="+pause)
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			c.lines <- s.Text()
		}
		close(c.lines)
	}()
	return c
}

// await reads the child's stderr until a line says it paused at what.
func (c *child) await(what string) {
	c.t.Helper()
	for l := range c.lines {
		fmt.Fprintln(&c.log, l)
		if l == "dsx-test: paused at "+what {
			return
		}
	}
	c.t.Fatalf("dsx ended without pausing at %s:\n%s", what, c.log.String())
}

func (c *child) signal(sig os.Signal) {
	c.t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		c.t.Fatal(err)
	}
}

// wait returns the exit code (-1 when killed) and the rest of stderr.
func (c *child) wait() (int, string) {
	for l := range c.lines {
		fmt.Fprintln(&c.log, l)
	}
	err := c.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), c.log.String()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return 0, c.log.String()
}

// runArgs are dsx train's arguments for a 6-epoch run of 300 rows in
// batches of 32 (10 steps an epoch, the last of 12 rows).
type runArgs struct {
	train, test, out, ckpt string
	dtype, opt             string
}

func (r runArgs) args(extra ...string) []string {
	a := []string{"train", "--train", r.train, "--epochs", "6", "--batch", "32", "--device", "cpu", "--dtype", r.dtype,
		"--optimizer", r.opt, "--lr", "0.01", "--out", r.out}
	if r.test != "" {
		a = append(a, "--test", r.test)
	}
	return append(a, extra...)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// 6 epochs straight against 6 epochs stopped by a signal (mid-epoch, at an
// epoch's end, in the middle of writing a checkpoint) and resumed: the
// same model file, byte for byte, in float32 and float64, with SGD with
// momentum and Adam, with and without a test set.
func TestSignalAndResumeExact(t *testing.T) {
	trainCSV, testCSV := blobsCSV(t, "train.csv", 300, 1), blobsCSV(t, "test.csv", 80, 2)
	for _, dtype := range []string{"float32", "float64"} {
		for _, opt := range []string{"sgd", "adam"} {
			for _, withTest := range []bool{true, false} {
				name := fmt.Sprintf("%s/%s/test=%v", dtype, opt, withTest)
				t.Run(name, func(t *testing.T) {
					dir := t.TempDir()
					r := runArgs{train: trainCSV, out: filepath.Join(dir, "straight.safetensors"), dtype: dtype, opt: opt}
					if withTest {
						r.test = testCSV
					}
					if code, _, stderr := dsx(t, r.args()...); code != 0 {
						t.Fatalf("straight run: exit %d: %s", code, stderr)
					}
					want := readFile(t, r.out)
					for _, c := range []struct {
						where, pause string
						sig          syscall.Signal
						code         int
						every        string
						saved        string // the position the line names
					}{
						{"mid-epoch", "step 15", syscall.SIGTERM, 143, "10m", "in epoch 2 of 6, after batch 5 of 10 (step 15)"},
						{"at an epoch's end", "step 20", syscall.SIGINT, 130, "10m", "after 2 of 6 epochs (step 20)"},
						{"while a checkpoint is written", "write 2", syscall.SIGTERM, 143, "7", "in epoch 2 of 6, after batch 4 of 10 (step 14)"},
					} {
						r := r
						r.out, r.ckpt = filepath.Join(dir, "resumed.safetensors"), filepath.Join(dir, strings.ReplaceAll(c.where, " ", "-")+".ckpt")
						ch := start(t, strings.ReplaceAll(c.pause, " ", ":"), r.args("--checkpoint", r.ckpt, "--checkpoint-every", c.every)...)
						ch.await(c.pause)
						ch.signal(c.sig)
						code, stderr := ch.wait()
						line := "dsx train: stopped by " + map[syscall.Signal]string{syscall.SIGTERM: "SIGTERM", syscall.SIGINT: "SIGINT"}[c.sig] + " " + c.saved +
							"; checkpoint saved to " + r.ckpt + "; resume with: dsx train "
						if code != c.code || !strings.Contains(stderr, line) || !strings.Contains(stderr, "--resume "+shellQuote(r.ckpt)) {
							t.Fatalf("%s: exit %d, want %d and the line %q:\n%s", c.where, code, c.code, line, stderr)
						}
						if _, err := os.Stat(r.out); err == nil {
							t.Fatalf("%s: a stopped run wrote the model %s", c.where, r.out)
						}
						code, _, stderr = dsx(t, r.args("--resume", r.ckpt)...)
						if code != 0 {
							t.Fatalf("%s: resume: exit %d: %s", c.where, code, stderr)
						}
						// It goes on from there: the first epochs are not run again.
						if !strings.Contains(stderr, "dsx: resuming "+c.saved+" from "+r.ckpt) || strings.Contains(stderr, "epoch 1/6 ") {
							t.Fatalf("%s: the resumed run does not say it goes on %s, or runs epoch 1 again:\n%s", c.where, c.saved, stderr)
						}
						if !bytes.Equal(readFile(t, r.out), want) {
							t.Fatalf("stopped %s and resumed: the model differs from the uninterrupted run's", c.where)
						}
						os.Remove(r.out)
					}
				})
			}
		}
	}
}

// SIGKILL in the middle of writing a checkpoint leaves the previous one
// intact (and no temporary file): it resumes to the uninterrupted model.
// A second signal while the last checkpoint is written exits at once,
// leaving the previous one as well.
func TestKillDuringCheckpoint(t *testing.T) {
	dir := t.TempDir()
	r := runArgs{train: blobsCSV(t, "train.csv", 300, 1), out: filepath.Join(dir, "straight.safetensors"), dtype: "float32", opt: "adam"}
	if code, _, stderr := dsx(t, r.args()...); code != 0 {
		t.Fatalf("straight run: exit %d: %s", code, stderr)
	}
	want := readFile(t, r.out)
	r.out = filepath.Join(dir, "resumed.safetensors")
	for _, c := range []struct {
		name    string
		pauses  []string // where the child pauses, one signal each
		signals []syscall.Signal
		code    int
		step    int // of the checkpoint left
	}{
		{"SIGKILL while the second is written", []string{"write 2"}, []syscall.Signal{syscall.SIGKILL}, -1, 7},
		{"a second SIGTERM while the last is written", []string{"step 15", "write 3"}, []syscall.Signal{syscall.SIGTERM, syscall.SIGTERM}, 143, 14},
	} {
		t.Run(c.name, func(t *testing.T) {
			ckdir := t.TempDir()
			ckpt := filepath.Join(ckdir, "run.ckpt")
			pause := strings.ReplaceAll(strings.Join(c.pauses, ","), " ", ":")
			ch := start(t, pause, r.args("--checkpoint", ckpt, "--checkpoint-every", "7")...)
			for i, p := range c.pauses {
				ch.await(p)
				ch.signal(c.signals[i])
			}
			code, stderr := ch.wait()
			if code != c.code || strings.Contains(stderr, "checkpoint saved") {
				t.Fatalf("exit %d, want %d, and no line saying a checkpoint was saved:\n%s", code, c.code, stderr)
			}
			st, err := train.LoadState(ckpt)
			if err != nil {
				t.Fatalf("the previous checkpoint: %v", err)
			}
			if st.Position.Step != c.step {
				t.Fatalf("the checkpoint left is at step %d, want %d", st.Position.Step, c.step)
			}
			if es, _ := os.ReadDir(ckdir); len(es) != 1 {
				t.Errorf("%d files in the checkpoint's folder, want only it", len(es))
			}
			code, _, stderr = dsx(t, r.args("--resume", ckpt)...)
			if code != 0 {
				t.Fatalf("resume: exit %d: %s", code, stderr)
			}
			if from := fmt.Sprintf("(step %d) from %s", c.step, ckpt); !strings.Contains(stderr, from) {
				t.Fatalf("the resumed run does not say it goes on from step %d:\n%s", c.step, stderr)
			}
			if !bytes.Equal(readFile(t, r.out), want) {
				t.Fatal("resumed from the previous checkpoint: the model differs from the uninterrupted run's")
			}
			os.Remove(r.out)
		})
	}
}

// Without --checkpoint, a signal stops the run, and the line says that
// nothing was saved and how to ask for it.
func TestSignalWithoutCheckpoint(t *testing.T) {
	dir := t.TempDir()
	r := runArgs{train: blobsCSV(t, "train.csv", 300, 1), out: filepath.Join(dir, "m.safetensors"), dtype: "float32", opt: "adam"}
	ch := start(t, "step:5", r.args()...)
	ch.await("step 5")
	ch.signal(syscall.SIGINT)
	code, stderr := ch.wait()
	want := "dsx train: stopped by SIGINT in epoch 1 of 6, after batch 5 of 10 (step 5); nothing was saved (train with --checkpoint FILE to save a checkpoint to resume from)"
	if code != 130 || !strings.Contains(stderr, want) {
		t.Fatalf("exit %d, want 130 and %q:\n%s", code, want, stderr)
	}
	if es, _ := os.ReadDir(dir); len(es) != 0 {
		t.Errorf("%d files written", len(es))
	}
}

// A checkpoint of other data or another learning rate, or a damaged one,
// is refused with an error naming the problem, and nothing is written:
// the checkpoint and --out stay as they were.
func TestResumeRefuses(t *testing.T) {
	dir := t.TempDir()
	trainCSV, otherCSV := blobsCSV(t, "train.csv", 300, 1), blobsCSV(t, "other.csv", 300, 3)
	r := runArgs{train: trainCSV, out: filepath.Join(dir, "m.safetensors"), dtype: "float32", opt: "sgd"}
	ckpt := filepath.Join(dir, "run.ckpt")
	if code, _, stderr := dsx(t, r.args("--checkpoint", ckpt, "--epochs", "2")...); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	os.Remove(r.out)
	good := readFile(t, ckpt)
	hlen := int(good[0]) | int(good[1])<<8 | int(good[2])<<16
	cut, flipped := filepath.Join(dir, "cut.ckpt"), filepath.Join(dir, "flipped.ckpt")
	os.WriteFile(cut, good[:len(good)-10], 0o644)
	bad := bytes.Clone(good)
	bad[8+hlen+5] ^= 1 // a byte of W
	os.WriteFile(flipped, bad, 0o644)
	asModel := filepath.Join(dir, "model.safetensors")
	if code, _, stderr := dsx(t, r.args("--epochs", "1")...); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	os.Rename(r.out, asModel)
	other := r
	other.train = otherCSV
	lr := r.args("--resume", ckpt)
	for i, a := range lr {
		if a == "--lr" {
			lr[i+1] = "0.02"
		}
	}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"other data", other.args("--resume", ckpt), "--resume " + ckpt + ": the checkpoint is of another run (train data: 300 rows × 6 features, 4 classes, crc32c "},
		{"another learning rate", lr, "the checkpoint is of another run (lr: 0.01 in the checkpoint, now 0.02)"},
		{"truncated", r.args("--resume", cut), "--resume: " + cut + ": truncated"},
		{"corrupted", r.args("--resume", flipped), `--resume: ` + flipped + `: tensor "W": checksum `},
		{"a model", r.args("--resume", asModel), "--resume: " + asModel + ": a model, not a checkpoint"},
	} {
		code, _, stderr := dsx(t, c.args...)
		if code != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, want 1 and %q:\n%s", c.name, code, c.want, stderr)
		}
		if !bytes.Equal(readFile(t, ckpt), good) {
			t.Errorf("%s: the checkpoint changed", c.name)
		}
		if _, err := os.Stat(r.out); err == nil {
			t.Errorf("%s: %s was written", c.name, r.out)
		}
	}
}

// The checkpoint serves as a model: dsx eval and predict read it and give
// what they give for the model saved at the same point.
func TestCheckpointIsAModel(t *testing.T) {
	dir := t.TempDir()
	trainCSV, testCSV := blobsCSV(t, "train.csv", 300, 1), blobsCSV(t, "test.csv", 80, 2)
	r := runArgs{train: trainCSV, test: testCSV, out: filepath.Join(dir, "m.safetensors"), dtype: "float64", opt: "adam"}
	ckpt := filepath.Join(dir, "run.ckpt")
	if code, _, stderr := dsx(t, r.args("--checkpoint", ckpt, "--epochs", "2")...); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, cmd := range [][]string{{"eval", "--test", testCSV}, {"predict", "--test", testCSV, "--proba"}} {
		var outs []string
		for _, m := range []string{r.out, ckpt} {
			code, stdout, stderr := dsx(t, append(cmd, "--model", m, "--device", "cpu")...)
			if code != 0 {
				t.Fatalf("%s --model %s: exit %d: %s", cmd[0], m, code, stderr)
			}
			outs = append(outs, strings.ReplaceAll(stdout, m, "MODEL"))
		}
		if outs[0] != outs[1] || outs[0] == "" {
			t.Errorf("%s: the checkpoint gives\n%s\nthe model\n%s", cmd[0], outs[1], outs[0])
		}
	}
}

// --init starts from a model's W and b: its first epoch's loss is the
// model's, far below a fresh run's; with --resume it is a usage error.
func TestInitFromModel(t *testing.T) {
	dir := t.TempDir()
	r := runArgs{train: blobsCSV(t, "train.csv", 300, 1), out: filepath.Join(dir, "m.safetensors"), dtype: "float32", opt: "adam"}
	code, _, stderr := dsx(t, r.args()...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	first := func(stderr string) string {
		for _, l := range strings.Split(stderr, "\n") {
			if strings.HasPrefix(l, "epoch 1/") {
				return l
			}
		}
		return ""
	}
	fresh := first(stderr)
	next := r
	next.out = filepath.Join(dir, "m2.safetensors")
	code, _, stderr = dsx(t, next.args("--init", r.out)...)
	if code != 0 {
		t.Fatalf("--init: exit %d: %s", code, stderr)
	}
	var lf, li float64
	fmt.Sscanf(strings.TrimPrefix(fresh, "epoch 1/6  train loss "), "%g", &lf)
	fmt.Sscanf(strings.TrimPrefix(first(stderr), "epoch 1/6  train loss "), "%g", &li)
	if !(li > 0 && li < lf/2) {
		t.Errorf("first epoch's loss from the model %v, fresh %v: not started from the model (%q, %q)", li, lf, first(stderr), fresh)
	}
	if code, _, stderr := dsx(t, next.args("--init", r.out, "--resume", r.out)...); code != 2 || !strings.Contains(stderr, "give one") {
		t.Errorf("--init with --resume: exit %d: %s", code, stderr)
	}
}
