package quote

import (
	"strings"
	"testing"
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
