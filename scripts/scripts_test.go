// Package scripts holds the tests of the shell scripts that run on the GPU
// machine (scripts/gpu-check, bench/run-gpu.sh); it has no Go code of its
// own.
package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The stubs: .gpu/run logs each command it runs and marks the environment
// (DSX_IN_GPU_RUN, DSX_PEERS, as the real one sets PYTHONPATH and
// DSX_PEERS); go exists only inside it, where `go build -o X` and `go test
// -c -o X` write a stub binary X; every program that must run through it
// (the binaries, python3, compute-sanitizer, ncu) records a violation when
// run outside it.
const stubRun = `#!/usr/bin/env bash
echo "RUN $*" >>"$STUB_LOG"
export DSX_IN_GPU_RUN=1 DSX_PEERS=/tmp/peers PYTHONPATH=/tmp/peers
if [[ $1 == go ]]; then
  shift
  out=""
  args=("$@")
  for ((i = 0; i < ${#args[@]}; i++)); do [[ ${args[i]} == -o ]] && out=${args[i+1]}; done
  case $1 in
  build) cp "$STUBS/program" "$out" ;;
  test) if [[ -n $out ]]; then cp "$STUBS/program" "$out"; else echo "ok  	dsx/stub	0.01s"; fi ;;
  esac
  exit 0
fi
exec "$@"
`

const stubProgram = `#!/usr/bin/env bash
[[ ${DSX_IN_GPU_RUN:-} == 1 ]] || echo "$(basename "$0") $* outside .gpu/run" >>"$STUB_VIOLATIONS"
echo "PROG $(basename "$0") $*" >>"$STUB_LOG"
[[ " $* " == *" --json "* ]] && echo '[]'
exit 0
`

const stubSanitizer = `#!/usr/bin/env bash
[[ ${DSX_IN_GPU_RUN:-} == 1 ]] || echo "compute-sanitizer $* outside .gpu/run" >>"$STUB_VIOLATIONS"
echo "PROG compute-sanitizer $*" >>"$STUB_LOG"
[[ " $* " == *TestVariants* ]] && exec sleep 30   # killed by the time limit
echo "========= ERROR SUMMARY: 0 errors ($*)"
`

const stubPython = `#!/usr/bin/env bash
[[ ${DSX_IN_GPU_RUN:-} == 1 && -n ${DSX_PEERS:-} ]] || echo "python3 $* outside .gpu/run (no DSX_PEERS)" >>"$STUB_VIOLATIONS"
echo "PROG python3 $*" >>"$STUB_LOG"
exit 0
`

const stubPlain = `#!/usr/bin/env bash
echo "stub $(basename "$0")"
`

// project lays out a project root with the two scripts, the stub .gpu/run
// and a PATH of stubs without go.
func project(t *testing.T) (root string, env []string) {
	t.Helper()
	root = t.TempDir()
	stubs := filepath.Join(root, "stubs")
	for _, d := range []string{"scripts", "bench", ".gpu", "stubs", "out", "bin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(filepath.Join(root, p), []byte(s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"gpu-check"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		write(filepath.Join("scripts", f), string(b))
	}
	b, err := os.ReadFile("../bench/run-gpu.sh")
	if err != nil {
		t.Fatal(err)
	}
	write("bench/run-gpu.sh", string(b))
	write(".gpu/run", stubRun)
	write("stubs/program", stubProgram)
	write("stubs/compute-sanitizer", stubSanitizer)
	write("stubs/python3", stubPython)
	write("stubs/ncu", stubProgram)
	write("stubs/nvidia-smi", stubPlain)
	path := stubs + ":/usr/bin:/bin"
	for _, d := range strings.Split(path, ":") {
		if _, err := os.Stat(filepath.Join(d, "go")); err == nil {
			t.Skipf("skipped: %s/go exists: the test needs a PATH without go", d)
		}
	}
	env = []string{"PATH=" + path, "HOME=" + root, "STUBS=" + stubs, "STUB_LOG=" + filepath.Join(root, "log"),
		"STUB_VIOLATIONS=" + filepath.Join(root, "violations"), "DSXBIN=" + filepath.Join(root, "bin")}
	return root, env
}

func read(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// TestGPUCheckThroughRun runs scripts/gpu-check with a stub .gpu/run and no
// go on PATH: every build and every run goes through .gpu/run, each
// memcheck run has a log of its own, and the run killed by its time limit
// is reported as killed (not with the previous run's summary).
func TestGPUCheckThroughRun(t *testing.T) {
	root, env := project(t)
	cmd := exec.Command("bash", "scripts/gpu-check", "out")
	cmd.Dir = root
	cmd.Env = append(env, "LIMIT_SANITIZER=2")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("gpu-check: %v\n%s", err, out)
	}
	if v := read(t, filepath.Join(root, "violations")); v != "" {
		t.Errorf("run outside .gpu/run:\n%s", v)
	}
	log := read(t, filepath.Join(root, "log"))
	for _, want := range []string{"RUN go build -o", "RUN go build -tags gpu -o", "RUN go test -tags gpu -count=1 -run ^$ ./...",
		"RUN go test -tags gpu -count=1 ./...", "RUN go test -tags gpu -c -o", "PROG compute-sanitizer --tool memcheck"} {
		if !strings.Contains(log, want) {
			t.Errorf("no %q in what .gpu/run ran:\n%s", want, log)
		}
	}
	sum := read(t, filepath.Join(root, "out", "summary.txt"))
	for _, want := range []string{"memcheck variants: KILLED by its time limit (2 s)", "memcheck core: exit 0; ========= ERROR SUMMARY: 0 errors (--tool memcheck --leak-check full",
		"memcheck conformance: exit 0; ========= ERROR SUMMARY: 0 errors"} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}
	if strings.Contains(sum, "FAILED") {
		t.Errorf("summary says FAILED:\n%s", sum)
	}
	for _, n := range []string{"core", "conformance", "variants"} {
		if _, err := os.Stat(filepath.Join(root, "out", "sanitizer-"+n+".log")); err != nil {
			t.Errorf("no log of its own for memcheck %s: %v", n, err)
		}
	}
}

// TestRunGPUThroughRun runs bench/run-gpu.sh (every stage) with a stub
// .gpu/run and no go on PATH: the build, dsx bench, the peers (with
// DSX_PEERS), the merge and Nsight Compute all go through .gpu/run.
func TestRunGPUThroughRun(t *testing.T) {
	root, env := project(t)
	cmd := exec.Command("bash", "bench/run-gpu.sh")
	cmd.Dir = root
	cmd.Env = append(env, "OUT="+filepath.Join(root, "out"), "BIN="+filepath.Join(root, "bin", "dsx-gpu"), "STEPS=1", "WARMUP=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run-gpu.sh: %v\n%s", err, out)
	}
	if v := read(t, filepath.Join(root, "violations")); v != "" {
		t.Errorf("run outside .gpu/run:\n%s", v)
	}
	log := read(t, filepath.Join(root, "log"))
	for _, want := range []string{"RUN go build -tags gpu -o", "PROG dsx-gpu bench --device cuda", "PROG python3 bench/peers/torch_xent.py",
		"PROG dsx-gpu bench --device none", "PROG ncu --clock-control none"} {
		if !strings.Contains(log, want) {
			t.Errorf("no %q in what ran:\n%s", want, log)
		}
	}
	if l := read(t, filepath.Join(root, "out", "log.txt")); strings.Contains(l, "FAILED") || strings.Contains(l, "KILLED") {
		t.Errorf("log.txt:\n%s", l)
	}
}
