package quote

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValue(t *testing.T) {
	long := strings.Repeat("1", 10<<20)
	for _, c := range []struct{ in, want string }{
		{"", `""`},
		{"abc", `"abc"`},
		{"a\"b\xff", `"a\"b\xff"`},
		{strings.Repeat("x", Max), `"` + strings.Repeat("x", Max) + `"`},
		{long, `"` + strings.Repeat("1", prefix) + `"… (10485760 bytes)`},
		// The cut backs off to the start of a character: é is 2 bytes.
		{strings.Repeat("é", 40), `"` + strings.Repeat("é", prefix/2) + `"… (80 bytes)`},
		{"a" + strings.Repeat("é", 40), `"a` + strings.Repeat("é", prefix/2-1) + `"… (81 bytes)`},
	} {
		if got := Value(c.in); got != c.want {
			t.Errorf("Value(%.60q) = %s, want %s", c.in, got, c.want)
		}
		if got := Value([]byte(c.in)); got != c.want {
			t.Errorf("Value([]byte(%.60q)) = %s, want %s", c.in, got, c.want)
		}
	}
	if got := Value(long); len(got) > 80 {
		t.Errorf("a 10 MB value quoted in %d bytes", len(got))
	}
}

func TestPrefix(t *testing.T) {
	if got, want := Prefix("abc"), `"abc"`; got != want {
		t.Errorf("Prefix(abc) = %s, want %s", got, want)
	}
	if got, want := Prefix([]byte(strings.Repeat("7", 5000))), `"`+strings.Repeat("7", prefix)+`"…`; got != want {
		t.Errorf("Prefix(5000 bytes) = %s, want %s", got, want)
	}
}

func TestShape(t *testing.T) {
	many := make([]int64, 5000)
	for i := range many {
		many[i] = 1
	}
	for _, c := range []struct {
		dims []int64
		want string
	}{
		{nil, ""},
		{[]int64{3}, "3"},
		{[]int64{1, 2, 3, 4, 5, 6, 7, 8}, "1, 2, 3, 4, 5, 6, 7, 8"},
		{[]int64{1, 2, 3, 4, 5, 6, 7, 8, 9}, "1, 2, 3, 4, 5, 6, … (9 dimensions)"},
		{many, "1, 1, 1, 1, 1, 1, … (5000 dimensions)"},
	} {
		if got := Shape(c.dims, ", "); got != c.want {
			t.Errorf("Shape(%d dims) = %q, want %q", len(c.dims), got, c.want)
		}
	}
	big := make([]uint64, 64)
	for i := range big {
		big[i] = 1<<64 - 1
	}
	if got := Shape(big, " "); len(got) > 200 {
		t.Errorf("64 dimensions of 20 digits: %d bytes", len(got))
	}
}

func TestError(t *testing.T) {
	base := errors.New("json: cannot unmarshal number " + strings.Repeat("9", 200000) + " into Go struct field entry.shape of type int64")
	err := Error(base)
	if !errors.Is(err, base) || len(err.Error()) > MaxError {
		t.Fatalf("Error: %d bytes, Is %v", len(err.Error()), errors.Is(err, base))
	}
	if m := err.Error(); !strings.HasPrefix(m, "json: cannot unmarshal number 999") || !strings.HasSuffix(m, "of type int64") || !strings.Contains(m, "bytes in all") {
		t.Errorf("Error = %q", m)
	}
	short := errors.New("short")
	if Error(short) != short || Error(nil) != nil {
		t.Error("a short error was changed")
	}
	if m := Error(errors.New("a\nb\x00c\xff")).Error(); m != `a\nb\x00c\xff` {
		t.Errorf("control bytes: %q", m)
	}
	if m := Text(strings.Repeat("é", 200), 60); len(m) > 60 || !utf8.ValidString(m) {
		t.Errorf("Text cut inside a character: %q", m)
	}
}
