package backend

import (
	"strings"
	"testing"
)

// TestEnumNames: every value of every configuration enum has a name of its
// own (a value added without one, or two sharing one, fails here), Parse
// reads each name back, "" parses to the zero value, and a value beyond the
// last prints as Type(n) and parses as nothing.
func TestEnumNames(t *testing.T) {
	type enum struct {
		typ   string
		n     int
		str   func(int) string
		parse func(string) (int, error)
	}
	for _, e := range []enum{
		{"MatMode", int(matModeEnd), func(i int) string { return MatMode(i).String() },
			func(s string) (int, error) { v, err := ParseMatMode(s); return int(v), err }},
		{"XentImpl", int(xentEnd), func(i int) string { return XentImpl(i).String() },
			func(s string) (int, error) { v, err := ParseXentImpl(s); return int(v), err }},
		{"Storage", int(storageEnd), func(i int) string { return Storage(i).String() },
			func(s string) (int, error) { v, err := ParseStorage(s); return int(v), err }},
		{"OptimizerKind", int(optimizerEnd), func(i int) string { return OptimizerKind(i).String() },
			func(s string) (int, error) { v, err := ParseOptimizerKind(s); return int(v), err }},
	} {
		seen := map[string]int{}
		for i := 0; i < e.n; i++ {
			name := e.str(i)
			if name == "" || strings.Contains(name, "(") {
				t.Errorf("%s(%d) has no name: %q", e.typ, i, name)
			}
			if j, ok := seen[name]; ok {
				t.Errorf("%s(%d) and %s(%d) are both %q", e.typ, j, e.typ, i, name)
			}
			seen[name] = i
			if v, err := e.parse(strings.ToUpper(name)); err != nil || v != i {
				t.Errorf("Parse%s(%q) = %d, %v; want %d", e.typ, name, v, err, i)
			}
		}
		if v, err := e.parse(""); err != nil || v != 0 {
			t.Errorf("Parse%s(\"\") = %d, %v; want the zero value", e.typ, v, err)
		}
		if got, want := e.str(e.n), e.typ+"("; !strings.HasPrefix(got, want) {
			t.Errorf("%s(%d) prints %q, want the fallback %s%d)", e.typ, e.n, got, want, e.n)
		}
		if _, err := e.parse("bogus"); err == nil || !strings.Contains(err.Error(), e.str(0)) {
			t.Errorf("Parse%s(\"bogus\"): %v, want an error listing the names", e.typ, err)
		}
	}
}
