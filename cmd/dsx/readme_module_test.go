package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"dsx/model"
	"dsx/version"
)

// moduleProgram is a program of another module that uses dsx's public API
// only (internal packages cannot be imported from outside): it trains a
// head on four separable rows through package train, saves the model,
// reads it back and predicts, in under 30 lines.
const moduleProgram = `package main

import (
	"context"
	"fmt"
	"log"

	"dsx/backend"
	_ "dsx/cpu"
	"dsx/data"
	"dsx/model"
	"dsx/train"
	"dsx/version"
)

func main() {
	check := func(err error) {
		if err != nil {
			log.Fatal(err)
		}
	}
	set := &data.Set{X: []float32{1, 0, 0.9, 0.1, 0, 1, 0.2, 0.8}, Y: []int32{0, 0, 1, 1}, Rows: 4, N: 2, Classes: 2}
	be, _, err := backend.Choose("cpu")
	check(err)
	tr, err := train.New(be, set, nil, train.Config{Epochs: 50, Batch: 4, Optimizer: backend.Optimizer{Kind: backend.SGD, LR: 0.5}}, train.Options{})
	check(err)
	defer tr.Close()
	_, err = tr.Run(context.Background())
	check(err)
	m, err := tr.Model()
	check(err)
	check(model.Save("m.safetensors", m))
	m, err = model.Load("m.safetensors")
	check(err)
	x := []float32{1, 0, 0.9, 0.1, 0, 1, 0.2, 0.8}
	check(m.ScaleInputs(x, 4))
	labels, _, err := m.Predict(x, 4)
	check(err)
	fmt.Println("predicted", labels, "format", m.FileFormat, "dsx", m.DsxVersion == version.Short())
}
`

// TestModuleRecipe runs the README's recipes for using dsx from another
// module, each block's commands as written, in a new module beside a
// "dsx" that is this checkout: the program must build, train, save and
// read back its model. The replace recipe runs with the network off
// (GOPROXY=off): what it needs comes from the checkout and the module
// cache, as in a fresh CI clone after make test's builds. The workspace
// recipe reads go.mod files a build of dsx does not fetch; it runs with the
// environment's proxy, and where that cannot fetch them (no network, a
// fresh cache) it is skipped, saying so.
func TestModuleRecipe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two programs (-short)")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(root, filepath.Join(dir, "dsx")); err != nil {
		t.Fatal(err)
	}
	for i, block := range recipeBlocks(t) {
		workspace := strings.Contains(strings.Join(block, "\n"), "go work init")
		t.Run(map[bool]string{false: "replace", true: "workspace"}[workspace], func(t *testing.T) {
			app := filepath.Join(dir, fmt.Sprintf("app%d", i))
			if err := os.Mkdir(app, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(app, "main.go"), []byte(moduleProgram), 0o644); err != nil {
				t.Fatal(err)
			}
			env := append(os.Environ(), "GOTOOLCHAIN=local", "GOWORK=", "GOFLAGS=-buildvcs=false",
				"PATH="+filepath.Dir(goBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
			if !workspace {
				env = append(env, "GOPROXY=off")
			}
			var out []byte
			for _, line := range block {
				cmd := exec.Command("/bin/sh", "-c", line)
				cmd.Dir, cmd.Env = app, env
				if out, err = cmd.CombinedOutput(); err != nil {
					if workspace && fetchFailed(string(out)) {
						t.Skipf("the workspace recipe needs modules this machine cannot fetch now: %s: %s", line, firstLine(string(out)))
					}
					t.Fatalf("%s: %v\n%s", line, err, out)
				}
			}
			want := "predicted [0 0 1 1] format dsx-softmax-v1 dsx true"
			if got := strings.TrimSpace(string(out)); !strings.HasSuffix(got, want) {
				t.Errorf("the program printed %q, want %q", got, want)
			}
			if m, err := model.Load(filepath.Join(app, "m.safetensors")); err != nil || m.DsxVersion != version.Short() {
				t.Errorf("the program's model: %v", err)
			}
		})
	}
}

// fetchFailed reports whether go's output says a module could not be
// fetched (no network, or the proxy off).
func fetchFailed(out string) bool {
	for _, s := range []string{"module lookup disabled", "dial tcp", "no such host", "connection refused", "i/o timeout"} {
		if strings.Contains(out, s) {
			return true
		}
	}
	return false
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// recipeBlocks returns the commands of the sh blocks after the README's
// module-recipe marker (comments left to the shell), at least two.
func recipeBlocks(t *testing.T) [][]string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "<!-- module-recipe")
	if i < 0 {
		t.Fatal("README.md has no <!-- module-recipe --> marker")
	}
	s = s[i:]
	var blocks [][]string
	for len(blocks) < 2 {
		start := strings.Index(s, "```sh\n")
		if start < 0 {
			break
		}
		s = s[start+6:]
		end := strings.Index(s, "```")
		var lines []string
		for _, l := range strings.Split(s[:end], "\n") {
			if l = strings.TrimSpace(l); l != "" {
				lines = append(lines, l)
			}
		}
		blocks = append(blocks, lines)
		s = s[end+3:]
	}
	if len(blocks) != 2 || !strings.Contains(strings.Join(blocks[0], "\n"), "-replace=dsx=") || !strings.Contains(strings.Join(blocks[1], "\n"), "go work init") {
		t.Fatalf("the README's module recipes: %q; want a replace block and a workspace block", blocks)
	}
	return blocks
}
