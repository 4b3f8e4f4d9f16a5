// Package version says which dsx this is: the release (Version) and, in a
// program built from a git checkout of dsx itself, the commit it was built
// from, which the Go toolchain stamps into the binary (see
// runtime/debug.ReadBuildInfo and `go help buildvcs`) or, where it cannot
// (a linked git worktree, GOFLAGS=-buildvcs=false), the build sets with
// -ldflags -X (scripts/version-ldflags, which make build and
// scripts/build-gpu use).
//
// `dsx --version` prints Get's String, and every model that model.Save
// writes records Short in its metadata ("dsx_version").
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
)

// Version is the release of this source tree, raised when a release is
// made (semantic versioning).
const Version = "0.1.0"

// Module is dsx's module path: build information is dsx's own only where
// the main module is dsx (a program of another module that imports dsx
// carries that module's commit, not dsx's).
const Module = "dsx"

// Info is the version of this build.
type Info struct {
	Version  string // Version
	Revision string // the commit the binary was built from; "" when unknown (go test, go run, no git, -buildvcs=false, dsx used as a library)
	Time     string // the commit's time, RFC 3339; "" when unknown
	Modified bool   // the working tree differed from the commit
	Go       string // the toolchain that built the binary (runtime.Version)
	Platform string // GOOS/GOARCH
}

// Get returns the version of this build; what does not change while the
// process runs is read once.
func Get() Info { return get() }

// The commit, its time and "true" when the tree was modified, set with
// -ldflags "-X dsx/version.revision=..." (scripts/version-ldflags): used
// when the build information holds no commit.
var revision, revisionTime, modified string

var get = sync.OnceValue(func() Info {
	bi, ok := debug.ReadBuildInfo()
	return fromBuildInfo(bi, ok)
})

// fromBuildInfo is Get's work, given what ReadBuildInfo returned.
func fromBuildInfo(bi *debug.BuildInfo, ok bool) Info {
	in := Info{Version: Version, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if !ok || bi == nil {
		bi = &debug.BuildInfo{Main: debug.Module{Path: Module}}
	}
	if bi.Main.Path != Module {
		return in
	}
	if bi.GoVersion != "" {
		in.Go = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Revision = s.Value
		case "vcs.time":
			in.Time = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		}
	}
	if in.Revision == "" && revision != "" {
		in.Revision, in.Time, in.Modified = revision, revisionTime, modified == "true"
	}
	return in
}

// Short is the version in one word, semantic versioning's build metadata
// naming the commit: "0.1.0", "0.1.0+357753c1a2b3", or
// "0.1.0+357753c1a2b3.dirty" when built from a modified tree.
func (in Info) Short() string {
	s := in.Version
	if in.Revision != "" {
		s += "+" + in.Revision[:min(12, len(in.Revision))]
		if in.Modified {
			s += ".dirty"
		}
	}
	return s
}

// String is the version on one line, as `dsx --version` prints it:
// "dsx 0.1.0 (commit 357753c1a2b3 of 2026-12-07T14:43:00Z, modified; go1.26.8 linux/amd64)".
func (in Info) String() string {
	s := "dsx " + in.Version + " ("
	if in.Revision != "" {
		s += "commit " + in.Revision[:min(12, len(in.Revision))]
		if in.Time != "" {
			s += " of " + in.Time
		}
		if in.Modified {
			s += ", modified"
		}
		s += "; "
	}
	return s + fmt.Sprintf("%s %s)", in.Go, in.Platform)
}

// Short is Get().Short(): what a saved model records.
func Short() string { return Get().Short() }
