// Package quote quotes user values in error messages: in full when short,
// otherwise a short prefix, an ellipsis and the value's length, so that a
// corrupt or hostile 10 MB field gives a one-line error, not a 10 MB one.
package quote

import (
	"strconv"
	"unicode/utf8"
)

// Max is the longest value, in bytes, quoted in full.
const Max = 48

// prefix is how many bytes of a longer value are quoted.
const prefix = 32

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
