package hostkern

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"dsx/backend"
	k "dsx/cudakernels"
)

// Mode is how the host kernels are built, from DSX_HOSTKERNELS: "" (the
// default: optimised), "tsan" (ThreadSanitizer: a race between the threads
// of a block, such as a missing __syncthreads, stops the harness with its
// report) or "off" (not built: the emulator runs its Go transliterations).
func Mode() string { return os.Getenv("DSX_HOSTKERNELS") }

// Required reports whether DSX_REQUIRE_HOSTKERNELS=1 (make test): then a
// test that needs the host kernels fails where it would skip.
func Required() bool { return os.Getenv("DSX_REQUIRE_HOSTKERNELS") == "1" }

var build struct {
	once sync.Once
	path string
	err  error
}

// Available returns nil when the host kernels are built (or can be: the
// first call builds them, once per process, which takes a while the first
// time on a machine; later processes find them in the user's cache), else
// an error wrapping backend.ErrUnavailable that says why: DSX_HOSTKERNELS=off,
// or no g++.
func Available() error {
	_, err := Build()
	return err
}

// Build compiles the harness with every kernel of cudakernels (once per
// process) and returns its path.
func Build() (string, error) {
	build.once.Do(func() { build.path, build.err = compile() })
	return build.path, build.err
}

func compile() (string, error) {
	mode := Mode()
	switch mode {
	case "", "tsan":
	case "off":
		return "", fmt.Errorf("host kernels: %w: DSX_HOSTKERNELS=off", backend.ErrUnavailable)
	default:
		return "", fmt.Errorf("host kernels: DSX_HOSTKERNELS=%q: want tsan, off or nothing", mode)
	}
	cxx := os.Getenv("CXX")
	if cxx == "" {
		cxx = "g++"
	}
	gxx, err := exec.LookPath(cxx)
	if err != nil {
		return "", fmt.Errorf("host kernels: %w: no %s to compile cudakernels/*.cu for the host (Debian: apt-get install g++)", backend.ErrUnavailable, cxx)
	}
	files, err := Files()
	if err != nil {
		return "", err
	}
	flags := []string{"-std=c++17", "-O2", "-g", "-Wall", "-Wno-unknown-pragmas", "-Wno-unused-variable", "-Wno-unused-function"}
	if mode == "tsan" {
		flags = []string{"-std=c++17", "-O1", "-g", "-fsanitize=thread", "-Wno-unknown-pragmas"}
	}
	ver, _ := exec.Command(gxx, "--version").Output()
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%q\n", gxx, ver, flags)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(h, "%s %d\n%s", n, len(files[n]), files[n])
	}
	key := hex.EncodeToString(h.Sum(nil))[:24]
	root, err := os.UserCacheDir()
	if err != nil {
		root = os.TempDir()
	}
	dir := filepath.Join(root, "dsx", "hostkernels")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		// A home without a writable cache: the temporary directory.
		dir = filepath.Join(os.TempDir(), fmt.Sprintf("dsx-hostkernels-%d", os.Getuid()))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("host kernels: %w", err)
		}
	}
	exe := filepath.Join(dir, key, "harness")
	if _, err := os.Stat(exe); err == nil {
		now := time.Now()
		os.Chtimes(exe, now, now) // in use: not pruned
		return exe, nil
	}
	// One build at a time on this machine (go test runs packages in
	// parallel, and each wants the same build).
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("host kernels: %w", err)
	}
	defer lock.Close()
	if err := lockFile(lock); err != nil {
		return "", fmt.Errorf("host kernels: lock: %w", err)
	}
	defer unlockFile(lock)
	if _, err := os.Stat(exe); err == nil {
		return exe, nil
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", fmt.Errorf("host kernels: %w", err)
	}
	defer os.RemoveAll(tmp)
	for n, b := range files {
		p := filepath.Join(tmp, filepath.FromSlash(n))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return "", fmt.Errorf("host kernels: %w", err)
		}
	}
	// The two translation units compile side by side, then link.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, src := range []string{"kernels.cc", "harness.cc"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := append(append([]string{}, flags...), "-c", "-o", strings.TrimSuffix(src, ".cc")+".o", src)
			cmd := exec.Command(gxx, args...)
			cmd.Dir = tmp
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("host kernels: %s %s: %v\n%s", cxx, src, err, out)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	args := append(append([]string{}, flags...), "-o", "harness", "kernels.o", "harness.o", "-lm", "-pthread")
	cmd := exec.Command(gxx, args...)
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("host kernels: link: %v\n%s", err, out)
	}
	final := filepath.Join(dir, key)
	os.RemoveAll(final)
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("host kernels: %w", err)
	}
	prune(dir, key)
	return exe, nil
}

// Files returns the translation units of the host build by name: the
// kernels' sources and headers as cudakernels embeds them, with their
// __shared__ declarations rewritten (Rewrite), the shim and the harness,
// and kernels.cc, which includes every .cu and registers every kernel of
// cudakernels.Kernels.
func Files() (map[string][]byte, error) {
	src := k.Sources()
	out := map[string][]byte{}
	err := fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(src, p)
		if err != nil {
			return err
		}
		name := path.Base(p)
		if strings.HasSuffix(name, ".cu") || strings.HasSuffix(name, ".cuh") {
			s, err := Rewrite(string(b))
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			b = []byte(s)
		}
		out[name] = b
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("host kernels: %w", err)
	}
	var unit strings.Builder
	unit.WriteString("// Generated by dsx/backend/cuda/hostkern: every kernel module, compiled for the host.\n#include \"cudashim.h\"\n")
	for _, m := range k.Modules {
		fmt.Fprintf(&unit, "#include \"%s.cu\"\n", m)
	}
	for _, kk := range k.Kernels {
		fmt.Fprintf(&unit, "DSX_KERNEL(%s)\n", kk.Name)
	}
	// The shim's own tests (hostkern's TestShim*).
	unit.WriteString("#include \"selftest.cu\"\nDSX_KERNEL(shim_exchange)\nDSX_KERNEL(shim_divergent)\nDSX_KERNEL(shim_exited)\nDSX_KERNEL(shim_uninit)\n")
	out["kernels.cc"] = []byte(unit.String())
	return out, nil
}

var (
	externShared = regexp.MustCompile(`extern\s+__shared__\s+([A-Za-z_][\w ]*?)\s+(\w+)\s*\[\s*\]\s*;`)
	identEnd     = regexp.MustCompile(`(\w+)\s*$`)
	identStart   = regexp.MustCompile(`^\s*(\w+)`)
)

// Rewrite turns the __shared__ declarations of a CUDA source into what
// cudashim.h runs: `extern __shared__ T name[];` (the launch's dynamic
// shared memory) into `T *const name = (T *)DSX_DYNAMIC_SHARED;`, and
// `__shared__ T a[n], b;` into static storage followed by
// DSX_SHARED_REG(a); DSX_SHARED_REG(b); so that the runtime refills it with
// NaN bytes before each block. A __shared__ declaration must fit on one
// line; one in a // comment is left alone.
func Rewrite(src string) (string, error) {
	src = externShared.ReplaceAllString(src, "$1 *const $2 = ($1 *)DSX_DYNAMIC_SHARED;")
	lines := strings.Split(src, "\n")
	for i, line := range lines {
		at := strings.Index(line, "__shared__")
		if at < 0 || (strings.Contains(line[:at], "//")) || strings.Contains(line[:at], "*") {
			continue
		}
		semi := strings.Index(line[at:], ";")
		if semi < 0 {
			return "", fmt.Errorf("line %d: a __shared__ declaration that does not end on its line", i+1)
		}
		decl := line[at+len("__shared__") : at+semi]
		typ, names, err := splitDecl(decl)
		if err != nil {
			return "", fmt.Errorf("line %d: %w", i+1, err)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%sstatic %s %s;", line[:at], strings.TrimSpace(typ), strings.TrimSpace(decl[len(typ):]))
		for _, n := range names {
			fmt.Fprintf(&b, " DSX_SHARED_REG(%s);", n)
		}
		b.WriteString(line[at+semi+1:])
		lines[i] = b.String()
	}
	return strings.Join(lines, "\n"), nil
}

// splitDecl splits `T a[n], b` into the type T and the declared names.
func splitDecl(decl string) (typ string, names []string, err error) {
	angle, square, paren := 0, 0, 0
	cut := len(decl)
scan:
	for i, c := range decl {
		switch {
		case c == '[' && angle == 0 && paren == 0 && square == 0:
			cut = i
			break scan
		case c == ',' && angle == 0 && paren == 0 && square == 0:
			cut = i
			break scan
		case c == '<' && square == 0:
			angle++
		case c == '>' && square == 0:
			angle--
		case c == '(':
			paren++
		case c == ')':
			paren--
		}
	}
	m := identEnd.FindStringSubmatchIndex(decl[:cut])
	if m == nil {
		return "", nil, fmt.Errorf("cannot read the __shared__ declaration %q", decl)
	}
	typ = decl[:m[2]]
	if strings.TrimSpace(typ) == "" {
		return "", nil, fmt.Errorf("no type in the __shared__ declaration %q", decl)
	}
	square = 0
	start := m[2]
	rest := decl[start:]
	part := 0
	for i, c := range rest {
		switch c {
		case '[':
			square++
		case ']':
			square--
		case ',':
			if square == 0 {
				names = append(names, identStart.FindStringSubmatch(rest[part:i])[1])
				part = i + 1
			}
		}
	}
	n := identStart.FindStringSubmatch(rest[part:])
	if n == nil {
		return "", nil, fmt.Errorf("cannot read the __shared__ declaration %q", decl)
	}
	return typ, append(names, n[1]), nil
}

// prune removes the builds of other sources (or flags) not used for a week.
func prune(dir, keep string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !e.IsDir() || e.Name() == keep || strings.HasPrefix(e.Name(), "build-") {
			continue
		}
		if fi, err := os.Stat(filepath.Join(dir, e.Name(), "harness")); err == nil && time.Since(fi.ModTime()) < 7*24*time.Hour {
			continue
		}
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}
