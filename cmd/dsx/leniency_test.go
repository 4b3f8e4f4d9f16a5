package main

import (
	"strings"
	"testing"
)

// TestOptimizerFlagsChecked: --momentum and --weight-decay must be finite
// and ≥ 0 whichever optimizer runs: NaN under Adam (which ignores
// momentum) used to pass unseen.
func TestOptimizerFlagsChecked(t *testing.T) {
	train := separable(t, "train.csv")
	for _, args := range [][]string{
		{"--momentum", "NaN"}, {"--momentum", "NaN", "--optimizer", "sgd"}, {"--momentum", "-0.5"},
		{"--momentum", "Inf", "--optimizer", "adam"},
	} {
		code, _, stderr := dsx(t, append([]string{"train", "--train", train, "--device", "cpu", "--out", t.TempDir() + "/m"}, args...)...)
		if code != 2 || !strings.Contains(stderr, "want a finite value ≥ 0") {
			t.Errorf("%v: exit %d, %q", args, code, stderr)
		}
	}
}
