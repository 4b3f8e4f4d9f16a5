package main

import (
	"strings"
	"testing"
)

// TestSoftcapZLossFlags: --softcap and --z-loss reach the loss (the model
// trained, and so its test loss, changes) and bad values are usage errors.
// (The reported test loss is plain cross-entropy of the raw logits.)
func TestSoftcapZLossFlags(t *testing.T) {
	var rows []string
	for i := 0; i < 60; i++ {
		c := i % 3
		rows = append(rows, []string{"0,5,0", "1,0,5", "2,-5,-5"}[c])
	}
	train := writeCSV(t, "train.csv", rows)
	loss := func(extra ...string) string {
		t.Helper()
		args := append([]string{"train", "--train", train, "--test", train, "--epochs", "5", "--batch", "8", "--lr", "0.05",
			"--device", "cpu", "--out", t.TempDir() + "/m.safetensors", "--json"}, extra...)
		code, stdout, stderr := dsx(t, args...)
		if code != 0 {
			t.Fatalf("train %v exited %d: %s", extra, code, stderr)
		}
		i := strings.Index(stdout, `"test_loss":`)
		if i < 0 {
			t.Fatalf("no test_loss in %s", stdout)
		}
		return strings.SplitN(stdout[i+len(`"test_loss":`):], ",", 2)[0]
	}
	plain, capped, zl := loss(), loss("--softcap", "0.5"), loss("--z-loss", "1")
	if capped == plain {
		t.Errorf("--softcap 0.5 did not change the test loss (%s)", capped)
	}
	if zl == plain {
		t.Errorf("--z-loss 1 did not change the test loss (%s)", zl)
	}
	for _, c := range []struct{ flag, val, want string }{
		{"--softcap", "-1", "soft cap"},
		{"--softcap", "NaN", "soft cap"},
		{"--z-loss", "-0.5", "z-loss"},
		{"--z-loss", "+Inf", "z-loss"},
	} {
		code, _, stderr := dsx(t, "train", "--train", train, "--test", train, "--device", "cpu", c.flag, c.val)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s %s: exit %d, %q; want a usage error mentioning %q", c.flag, c.val, code, stderr, c.want)
		}
	}
}
