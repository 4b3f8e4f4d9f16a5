package registrytest

import (
	"errors"
	"strings"
	"testing"

	"dsx/backend"
)

// TestNotRegistered: this test binary links no backend, so backend.Get and backend.Choose
// give the errors a program that forgot to link one in gets: which import
// registers the backend asked for, and plainly that none is registered.
// Then, with a backend registered, the error for another names what is.
func TestNotRegistered(t *testing.T) {
	if n := backend.Names(); len(n) != 0 {
		t.Skipf("backends registered in this test binary: %v", n)
	}
	for _, c := range []struct{ name, want string }{
		{"cpu", `backend "cpu": backend unavailable: not in this build (none is registered); to link it in, import _ "dsx/cpu"`},
		{"cuda", `backend "cuda": backend unavailable: not in this build (none is registered); to link it in, build with -tags gpu (the dsx-gpu binary), or import _ "dsx/backend/cuda" in a gpu build`},
		{"cuda-emu", `import _ "dsx/backend/cuda/emu"`},
		{"tpu", `backend "tpu": backend unavailable: no backend of that name (none is registered; this module's are cpu, cuda, cuda-emu)`},
	} {
		_, err := backend.Get(c.name)
		if !errors.Is(err, backend.ErrUnavailable) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Get(%q): %v\nwant %s", c.name, err, c.want)
		}
		if _, _, err := backend.Choose(c.name); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Choose(%q): %v\nwant %s", c.name, err, c.want)
		}
	}
	t.Setenv(backend.EnvDevice, "")
	_, _, err := backend.Choose("auto")
	want := `backend unavailable: no backend is registered in this build: a program links one in by importing its package, e.g. import _ "dsx/cpu" (the CPU)`
	if !errors.Is(err, backend.ErrUnavailable) || !strings.Contains(err.Error(), want) {
		t.Errorf("Choose(auto): %v\nwant %s", err, want)
	}
	t.Setenv(backend.EnvDevice, "cpu")
	if _, _, err := backend.Choose(""); err == nil || !strings.Contains(err.Error(), `DSX_DEVICE=cpu: backend "cpu": backend unavailable: not in this build (none is registered); to link it in, import _ "dsx/cpu"`) {
		t.Errorf("Choose with DSX_DEVICE=cpu: %v", err)
	}

	backend.Register(stub{}, 0)
	_, err = backend.Get("cpu")
	if want := `not in this build (registered: stub); to link it in, import _ "dsx/cpu"`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Get(cpu): %v\nwant %s", err, want)
	}
}

type stub struct{ backend.Backend }

func (stub) Name() string { return "stub" }
