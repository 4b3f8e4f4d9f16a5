package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeUsage runs every command of the README's Usage block that runs
// without a GPU, in every combination of its optional parts ([--json],
// [--data DIR | --test F [--test-labels F]], pred.csv|pred.npy|...), so
// that the block stays true. The placeholders become small generated data
// of 784 features (as Fashion-MNIST's): DIR a folder of IDX files, F and
// the named files (train.csv, x.npy, emb.safetensors, names.txt, ...)
// files of those names, K 2, and "..." the --train flags of the line
// before. Three changes keep make test short, each said where it is made:
// the line that trains on the installed Fashion-MNIST runs one epoch, and
// bench's shapes are small. The dsx-gpu lines are skipped: they need a
// GPU (scripts/gpu-check runs them there).
func TestReadmeUsage(t *testing.T) {
	lines := usageLines(t)
	dir := t.TempDir()
	t.Chdir(dir)
	usageData(t, dir)
	fashion := ""
	for _, d := range []string{"/usr/share/datasets/fashion-mnist"} {
		if _, err := os.Stat(filepath.Join(d, "t10k-labels-idx1-ubyte.gz")); err == nil {
			fashion = d
		}
	}
	ran := 0
	for _, line := range lines {
		t.Run(strings.Join(strings.Fields(line), " "), func(t *testing.T) {
			if strings.HasPrefix(line, "bin/dsx-gpu ") {
				t.Skip("needs a GPU: dsx-gpu, the CUDA build (scripts/gpu-check runs the GPU's checks)")
			}
			words, ok := strings.CutPrefix(line, "bin/dsx ")
			if !ok {
				t.Fatalf("a Usage line that runs neither bin/dsx nor bin/dsx-gpu: %q", line)
			}
			cmds := expandUsage(t, words)
			t.Logf("%d commands", len(cmds))
			for _, args := range cmds {
				args = substitute(args)
				defaultData := args[0] != "bench" && args[0] != "plan" && args[0] != "devices" && args[0] != "version" && !hasAny(args, "--data", "--train", "--test")
				if defaultData && fashion == "" {
					t.Logf("skipped %v: it reads the installed Fashion-MNIST, absent here (make test installs it)", args)
					continue
				}
				if defaultData && args[0] == "train" && !hasAny(args, "--epochs") {
					args = append(args, "--epochs", "1") // make test's time: one epoch of the 60000 rows
				}
				code, stdout, stderr := dsx(t, args...)
				ran++
				if hasAny(args, "--top") && hasAny(args, "--proba") && hasAny(args, "pred.npy") {
					// As the README says: one array cannot hold both.
					if code != 2 || !strings.Contains(stderr, ".npz") {
						t.Errorf("dsx %s: exit %d, %s; want the usage error that points to .npz", strings.Join(args, " "), code, stderr)
					}
					continue
				}
				if code != 0 {
					t.Errorf("dsx %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
					continue
				}
				if hasAny(args, "--json") && !json.Valid([]byte(stdout)) {
					t.Errorf("dsx %s: stdout is not JSON: %.200s", strings.Join(args, " "), stdout)
				}
			}
		})
	}
	if ran < 40 {
		t.Errorf("ran %d commands of the Usage block; it holds more than 40 without a GPU", ran)
	}
}

// usageLines returns the README's Usage block, one command a line
// (continuations joined, comments dropped).
func usageLines(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "## Usage\n")
	if i < 0 {
		t.Fatal("README.md has no Usage section")
	}
	s = s[i:]
	start := strings.Index(s, "```sh\n")
	end := strings.Index(s[start+6:], "```")
	var lines []string
	cont := ""
	for _, l := range strings.Split(s[start+6:start+6+end], "\n") {
		if c := strings.Index(l, " #"); c >= 0 {
			l = l[:c]
		}
		l = strings.TrimSpace(l)
		if more, ok := strings.CutSuffix(l, "\\"); ok {
			cont += more + " "
			continue
		}
		if l = strings.TrimSpace(cont + l); l != "" {
			lines = append(lines, l)
		}
		cont = ""
	}
	if len(lines) < 10 {
		t.Fatalf("the Usage block has %d commands: %q", len(lines), lines)
	}
	return lines
}

// expandUsage turns a usage line into every command it describes: [X] is X
// or nothing, [A | B] A, B or nothing, a|b in a word a or b.
func expandUsage(t *testing.T, line string) [][]string {
	t.Helper()
	r := strings.NewReplacer("[", " [ ", "]", " ] ", " | ", " || ")
	toks := strings.Fields(r.Replace(line))
	pos := 0
	var seq func() [][]string
	// seq parses words up to "]" or "||" and returns their expansions.
	seq = func() [][]string {
		out := [][]string{nil}
		for pos < len(toks) && toks[pos] != "]" && toks[pos] != "||" {
			var alts [][]string
			if toks[pos] == "[" {
				pos++
				alts = [][]string{nil}
				for {
					alts = append(alts, seq()...)
					if pos >= len(toks) {
						t.Fatalf("unclosed [ in %q", line)
					}
					if toks[pos] == "]" {
						pos++
						break
					}
					pos++ // "||"
				}
			} else {
				for _, w := range strings.Split(toks[pos], "|") {
					alts = append(alts, []string{w})
				}
				pos++
			}
			var next [][]string
			for _, o := range out {
				for _, a := range alts {
					next = append(next, append(append([]string(nil), o...), a...))
				}
			}
			out = next
		}
		return out
	}
	out := seq()
	if pos != len(toks) {
		t.Fatalf("unbalanced ] or | in %q", line)
	}
	return out
}

// substitute puts the test's data in the placeholders' places.
func substitute(args []string) []string {
	var out []string
	for i, a := range args {
		prev := ""
		if i > 0 {
			prev = args[i-1]
		}
		switch {
		case a == "...":
			out = append(out, "--train", "x.npy", "--train-labels", "y.npy")
			continue
		case a == "DIR":
			a = "fmnist"
		case a == "K":
			a = "2"
		case a == "F" && prev == "--test-labels":
			a = "yt.npy"
		case a == "F" && prev == "--test" && hasAny(args, "--test-labels"):
			a = "xt.npy"
		case a == "F" && prev == "--test":
			a = "test.csv" // labels in the file: eval needs them
		case prev == "--shapes":
			a = "64x784x10,32x64x100" // make test's time: small shapes of the same kinds
		}
		out = append(out, a)
	}
	return out
}

func hasAny(args []string, words ...string) bool {
	for _, a := range args {
		for _, w := range words {
			if a == w {
				return true
			}
		}
	}
	return false
}

// usageData writes the files the Usage block names, 784 features each (so
// that a model trained on any of them evaluates on the others), 10
// classes, and names.txt with 1000 names.
func usageData(t *testing.T, dir string) {
	t.Helper()
	const N = 784
	writeIDXDir(t, filepath.Join(dir, "fmnist"), 60, 28)
	x, y := blobs(120, N, 10, 5)
	xt, yt := blobs(40, N, 10, 6)
	writeNPY(t, "x.npy", []int{120, N}, x)
	writeNPY(t, "y.npy", []int{120}, y)
	writeNPY(t, "xt.npy", []int{40, N}, xt)
	writeNPY(t, "yt.npy", []int{40}, yt)
	writeST(t, "emb.safetensors", "features", "labels", x, y, N)
	writeST(t, "t.safetensors", "features", "labels", xt, yt, N)
	for _, f := range []struct {
		name string
		x    []float32
		y    []int64
	}{{"train.csv", x, y}, {"test.csv", xt, yt}} {
		var b strings.Builder
		for r, label := range f.y {
			fmt.Fprint(&b, label)
			for _, v := range f.x[r*N : (r+1)*N] {
				fmt.Fprintf(&b, ",%g", v)
			}
			b.WriteByte('\n')
		}
		if err := os.WriteFile(f.name, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var names strings.Builder
	for c := range 1000 {
		fmt.Fprintf(&names, "class %d\n", c)
	}
	if err := os.WriteFile("names.txt", []byte(names.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReadmeGoVersion: the README asks for the Go that go.mod's go line
// does.
func TestReadmeGoVersion(t *testing.T) {
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var goLine string
	for _, l := range strings.Split(string(mod), "\n") {
		if v, ok := strings.CutPrefix(l, "go "); ok {
			goLine = strings.TrimSpace(v)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if goLine == "" || !strings.Contains(string(readme), "with Go ≥ "+goLine+" ") {
		t.Errorf("go.mod asks for go %s; the README does not say \"with Go ≥ %s\"", goLine, goLine)
	}
}
