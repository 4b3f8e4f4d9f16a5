package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

// TestFromBuildInfo: the commit is read from dsx's own build information
// only, and each form of the version says what the build knows.
func TestFromBuildInfo(t *testing.T) {
	vcs := []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "357753c1a2b3d4e5f60718293a4b5c6d7e8f9012"},
		{Key: "vcs.time", Value: "2026-12-07T14:43:00Z"}, {Key: "vcs.modified", Value: "true"}}
	for _, c := range []struct {
		name        string
		bi          *debug.BuildInfo
		ok          bool
		short, line string
	}{
		{"no build info", nil, false, Version, "dsx " + Version + " ("},
		{"dsx built from a modified checkout", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "dsx"}, Settings: vcs}, true,
			Version + "+357753c1a2b3.dirty", "dsx " + Version + " (commit 357753c1a2b3 of 2026-12-07T14:43:00Z, modified; go1.26.8 "},
		{"dsx built from a clean checkout", &debug.BuildInfo{Main: debug.Module{Path: "dsx"}, Settings: vcs[:3]}, true,
			Version + "+357753c1a2b3", "dsx " + Version + " (commit 357753c1a2b3 of 2026-12-07T14:43:00Z; go"},
		// A program of another module that imports dsx: its commit is not dsx's.
		{"dsx as a library", &debug.BuildInfo{Main: debug.Module{Path: "example.com/app"}, Settings: vcs}, true, Version, "dsx " + Version + " (go"},
	} {
		in := fromBuildInfo(c.bi, c.ok)
		if got := in.Short(); got != c.short {
			t.Errorf("%s: Short %q, want %q", c.name, got, c.short)
		}
		if got := in.String(); !strings.HasPrefix(got, c.line) || !strings.HasSuffix(got, in.Platform+")") {
			t.Errorf("%s: String %q, want it to start %q and end with the platform", c.name, got, c.line)
		}
	}
	// The commit given with -ldflags -X, where go build stamps none.
	revision, revisionTime, modified = "0123456789abcdef0123", "2026-12-08T09:00:00Z", "false"
	defer func() { revision, revisionTime, modified = "", "", "" }()
	if got := fromBuildInfo(&debug.BuildInfo{Main: debug.Module{Path: "dsx"}}, true).String(); !strings.HasPrefix(got, "dsx "+Version+" (commit 0123456789ab of 2026-12-08T09:00:00Z; go") {
		t.Errorf("with -X flags: %q", got)
	}
	if got := fromBuildInfo(&debug.BuildInfo{Main: debug.Module{Path: "dsx"}, Settings: vcs}, true).Short(); got != Version+"+357753c1a2b3.dirty" {
		t.Errorf("go build's stamp and -X flags: %q, want go build's", got)
	}
	if got := fromBuildInfo(&debug.BuildInfo{Main: debug.Module{Path: "example.com/app"}}, true).Short(); got != Version {
		t.Errorf("dsx as a library with -X flags: %q", got)
	}
	if Short() != Get().Short() || Get().Version != Version {
		t.Errorf("Short %q, Get %+v", Short(), Get())
	}
}
