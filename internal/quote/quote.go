// Package quote quotes user values in error messages: in full when short,
// otherwise a short prefix, an ellipsis and the value's length, so that a
// corrupt or hostile 10 MB field gives a one-line error, not a 10 MB one.
// Quoting escapes newlines, NULs and other control or invalid bytes, so a
// value never splits an error line. [Shape] bounds a list of dimensions,
// and [Error] the message of an error from elsewhere (encoding/json's
// quote a whole field name or number).
package quote

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Max is the most bytes of a value quoted (the README promises 32): a
// value of at most Max bytes is quoted in full, a longer one as its first
// Max bytes (cut at a character boundary), an ellipsis and its length.
const Max = 32

// prefix is how many bytes of a longer value are quoted.
const prefix = Max

// Value quotes s as strconv.Quote does when it is at most Max bytes long;
// a longer s is quoted as its first bytes (cut at a character boundary),
// an ellipsis and its length: "123456789…"… (10485760 bytes).
func Value[T ~string | ~[]byte](s T) string {
	if len(s) <= Max {
		return strconv.Quote(string(s))
	}
	return strconv.Quote(string(s[:cutAt(s)])) + "… (" + strconv.Itoa(len(s)) + " bytes)"
}

// Prefix quotes the start of a value whose full length is not known (it
// is still being read): its first bytes, cut at a character boundary, and
// an ellipsis when it is longer than Max.
func Prefix[T ~string | ~[]byte](s T) string {
	if len(s) <= Max {
		return strconv.Quote(string(s))
	}
	return strconv.Quote(string(s[:cutAt(s)])) + "…"
}

// cutAt is where a long value's quoted prefix ends: prefix bytes, backed
// off to the start of a character.
func cutAt[T ~string | ~[]byte](s T) int {
	cut := prefix
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return cut
}

// maxDims is the most dimensions [Shape] writes out.
const maxDims = 8

// Shape formats a shape's dimensions separated by sep ("1, 2, 3" with
// sep ", "), for the caller to bracket: at most maxDims of them, and for
// a longer shape its first maxDims-2, an ellipsis and the count ("1, 1,
// 1, 1, 1, 1, … (5000 dimensions)"), so that a hostile header's shape
// gives a short error. Each dimension is at most 20 digits.
func Shape[T ~int | ~int32 | ~int64 | ~uint32 | ~uint64](dims []T, sep string) string {
	show := dims
	if len(dims) > maxDims {
		show = dims[:maxDims-2]
	}
	parts := make([]string, 0, len(show)+1)
	for _, d := range show {
		parts = append(parts, fmt.Sprint(d))
	}
	if len(show) < len(dims) {
		parts = append(parts, fmt.Sprintf("… (%d dimensions)", len(dims)))
	}
	return strings.Join(parts, sep)
}

// MaxError bounds the message of an error passed through [Error].
const MaxError = 160

// Error returns err with a message of at most MaxError bytes on one line:
// control and invalid bytes escaped, and a longer message cut in the
// middle (its start says what failed, its end where), with the number of
// bytes cut. errors.Is and errors.As see err through it. A nil err
// stays nil; a short, printable message is err itself.
func Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if len(msg) <= MaxError && printable(msg) {
		return err
	}
	return &shortError{msg: Text(msg, MaxError), err: err}
}

// Text is s on one line of at most max bytes (max ≥ 40): control and
// invalid bytes escaped as strconv.Quote escapes them, and a longer s cut
// in the middle with the number of bytes cut.
func Text(s string, max int) string {
	if !printable(s) {
		q := strconv.Quote(s)
		s = q[1 : len(q)-1]
	}
	if len(s) <= max {
		return s
	}
	mark := fmt.Sprintf("…[%d bytes in all]…", len(s))
	keep := max - len(mark)
	head, tail := keep/2, keep-keep/2
	for head > 0 && !utf8.RuneStart(s[head]) {
		head--
	}
	t := len(s) - tail
	for t < len(s) && !utf8.RuneStart(s[t]) {
		t++
	}
	return s[:head] + mark + s[t:]
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

type shortError struct {
	msg string
	err error
}

func (e *shortError) Error() string { return e.msg }
func (e *shortError) Unwrap() error { return e.err }
