package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dsx/model"
	"dsx/version"
)

// TestVersion: dsx --version and dsx version print this build's version
// and the model format it writes; --json gives the same as fields.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}, {"-version"}} {
		code, stdout, stderr := dsx(t, args...)
		if code != 0 || stderr != "" || stdout != version.Get().String()+"\nmodel format "+model.Format+"\n" {
			t.Errorf("dsx %v: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
	code, stdout, _ := dsx(t, "version", "--json")
	var v struct {
		Version, Short string
		Format         int `json:"model_format"`
	}
	if err := json.Unmarshal([]byte(stdout), &v); code != 0 || err != nil || v.Version != version.Version || v.Short != version.Short() || v.Format != model.FormatVersion {
		t.Errorf("dsx version --json: exit %d, %v: %s", code, err, stdout)
	}
}

// TestDidYouMean: a mistyped command or flag is a usage error that names
// the nearest one, and nothing when none is near; the device is never
// chosen.
func TestDidYouMean(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string // "": no suggestion
	}{
		{[]string{"trian"}, `unknown command "trian" (did you mean train?)`},
		{[]string{"predcit"}, "(did you mean predict?)"},
		{[]string{"devcies", "--json"}, "(did you mean devices?)"},
		{[]string{"frobnicate"}, ""},
		{[]string{"train", "--epoch", "3"}, "flag provided but not defined: --epoch (did you mean --epochs?)"},
		{[]string{"train", "--Epochs", "3"}, "(did you mean --epochs?)"},
		{[]string{"train", "--lerning-rate", "1"}, ""},
		{[]string{"predict", "--modle", "m"}, "(did you mean --model?)"},
		{[]string{"predict", "--probas"}, "(did you mean --proba?)"},
		{[]string{"bench", "--shape", "8x8x8"}, "(did you mean --shapes?)"},
		{[]string{"eval", "--test-label", "y.npy"}, "(did you mean --test-labels?)"},
	} {
		code, stdout, stderr := dsx(t, c.args...)
		if code != 2 || deviceLine(stderr) || stdout != "" {
			t.Errorf("dsx %v: exit %d, stdout %q, stderr %q; want a usage error", c.args, code, stdout, stderr)
		}
		if (c.want == "" && strings.Contains(stderr, "did you mean")) || !strings.Contains(stderr, c.want) {
			t.Errorf("dsx %v: stderr %q; want %q", c.args, stderr, c.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"", "abc", 3}, {"epochs", "epochs", 0}, {"epoch", "epochs", 1}, {"epcohs", "epochs", 1},
		{"trian", "train", 1}, {"kitten", "sitting", 3}, {"ca", "abc", 3}, {"lr", "lt", 1}} {
		if d := editDistance(c.a, c.b); d != c.d || editDistance(c.b, c.a) != c.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, d, c.d)
		}
	}
	if got := nearest("clases", []string{"classes", "class-names", "class-weights"}); strings.Join(got, ",") != "classes" {
		t.Errorf("nearest clases: %v", got)
	}
	if got := nearest("tb", []string{"lr", "top"}); len(got) != 0 {
		t.Errorf("nearest tb: %v; two letters are too short to guess from one edit of three", got)
	}
}

// TestModelOrigin: eval and predict say which format and dsx version wrote
// the model, in text (stderr) and in eval's JSON; a model from before the
// version was recorded still runs and says so; a model of a newer format is
// a clear error before any device is chosen.
func TestModelOrigin(t *testing.T) {
	dir := t.TempDir()
	data := writeCSV(t, "d.csv", []string{"0,1,2", "1,3,4", "0,1,3", "1,4,4"})
	m := &model.Model{W: []float32{1, -1, 0.5, 0.5}, B: []float32{0, 0}, N: 2, T: 2}
	mp := filepath.Join(dir, "m.safetensors")
	if err := model.Save(mp, m); err != nil {
		t.Fatal(err)
	}
	line := "dsx: model " + mp + ": 2 features, 2 classes, format dsx-softmax-v1, saved by dsx " + version.Short() + "\n"
	for _, cmd := range []string{"eval", "predict"} {
		code, _, stderr := dsx(t, cmd, "--model", mp, "--test", data, "--device", "cpu")
		if code != 0 || !strings.Contains(stderr, line) {
			t.Errorf("%s: exit %d, stderr %q; want the line %q", cmd, code, stderr, line)
		}
	}
	evalJSON := func(path string) modelInfo {
		t.Helper()
		code, stdout, stderr := dsx(t, "eval", "--model", path, "--test", data, "--device", "cpu", "--json")
		var r struct {
			Info modelInfo `json:"model_info"`
		}
		if err := json.Unmarshal([]byte(stdout), &r); code != 0 || err != nil {
			t.Fatalf("eval --json: exit %d, %v: %s", code, err, stderr)
		}
		return r.Info
	}
	if in := evalJSON(mp); in.Format != model.Format || in.DsxVersion == nil || *in.DsxVersion != version.Short() || in.Features != 2 || in.Classes != 2 {
		t.Errorf("eval --json model_info %+v", in)
	}

	// The same file as an older dsx wrote it: no dsx_version key.
	raw, _ := os.ReadFile(mp)
	old := filepath.Join(dir, "old.safetensors")
	key := `"dsx_version":"` + version.Short() + `",`
	if !strings.Contains(string(raw), key) {
		t.Fatalf("no %s in the model's header", key)
	}
	os.WriteFile(old, []byte(strings.Replace(string(raw), key, strings.Repeat(" ", len(key)), 1)), 0o644)
	if in := evalJSON(old); in.Format != model.Format || in.DsxVersion != nil {
		t.Errorf("older model: model_info %+v, want format %s, dsx_version null", in, model.Format)
	}
	code, _, stderr := dsx(t, "predict", "--model", old, "--test", data, "--device", "cpu")
	if code != 0 || !strings.Contains(stderr, "format dsx-softmax-v1, saved by a dsx from before models recorded its version") {
		t.Errorf("predict with an older model: exit %d, %s", code, stderr)
	}

	// A newer format (same length, so the header stays valid).
	newer := filepath.Join(dir, "newer.safetensors")
	os.WriteFile(newer, []byte(strings.Replace(string(raw), `"dsx-softmax-v1"`, `"dsx-softmax-v9"`, 1)), 0o644)
	if _, err := model.Load(newer); !errors.Is(err, model.ErrNewerFormat) {
		t.Fatalf("Load of format 9: %v", err)
	}
	for _, cmd := range []string{"eval", "predict"} {
		code, stdout, stderr := dsx(t, cmd, "--model", newer, "--test", data)
		if code != 1 || stdout != "" || deviceLine(stderr) || !strings.Contains(stderr, "upgrade dsx") || !strings.Contains(stderr, newer) {
			t.Errorf("%s with a newer format: exit %d, stderr %q; want exit 1 naming the file, saying to upgrade, before any device line", cmd, code, stderr)
		}
	}
}

// deviceLine reports whether stderr holds a line of chooseDevice's.
func deviceLine(stderr string) bool {
	return strings.Contains(stderr, "dsx: device ") || strings.Contains(stderr, "dsx: cpu products") || strings.Contains(stderr, "dsx: auto")
}
