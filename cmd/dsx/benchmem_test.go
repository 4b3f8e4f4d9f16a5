package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"dsx/backend/kit"
)

// TestBenchChild is the process TestBenchUnderAddressLimit starts under
// ulimit -v: it runs the bench command line in $DSX_BENCH_CHILD and
// prints its exit code and stderr.
func TestBenchChild(t *testing.T) {
	args := os.Getenv("DSX_BENCH_CHILD")
	if args == "" {
		t.Skip("the child of TestBenchUnderAddressLimit")
	}
	code, _, stderr := dsx(t, strings.Fields(args)...)
	os.Stdout.WriteString("exit " + string(rune('0'+code)) + "\n" + stderr)
}

// TestBenchUnderAddressLimit: under RLIMIT_AS (ulimit -v 4 GB) a shape
// whose inputs and layer need more (1×1×268435456: a 1 GiB W, its
// gradient and the logits) is refused before anything is drawn, naming the
// limit, rather than the runtime dying of "out of memory" (which
// MemAvailable alone let happen), and the check counts the layer as well
// as the inputs.
func TestBenchUnderAddressLimit(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	if avail, ok := kit.HostAvailable(); !ok || avail < 6<<30 {
		t.Skipf("needs a host with 6 GiB available (%d): the limit must be what refuses", avail)
	}
	cmd := exec.Command("sh", "-c", `ulimit -v 4000000 && exec "$0" -test.run='^TestBenchChild$' -test.count=1`, os.Args[0])
	cmd.Env = append(os.Environ(), "DSX_BENCH_CHILD=bench --device cpu --shapes 1x1x268435456 --steps 1 --warmup 0")
	out, err := cmd.CombinedOutput()
	if err != nil && !strings.Contains(string(out), "exit ") {
		t.Fatalf("child: %v\n%.2000s", err, out)
	}
	if !strings.Contains(string(out), "exit 1") || !strings.Contains(string(out), "out of memory") || !strings.Contains(string(out), "RLIMIT_AS") ||
		!strings.Contains(string(out), "inputs and layer") {
		t.Errorf("bench under ulimit -v 4000000: %.2000s", out)
	}
}
