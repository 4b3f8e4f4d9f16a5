package main

import (
	"sort"
	"strings"
)

// nearest returns the candidates closest to s, for "did you mean": those
// at the least edit distance (insertions, deletions, substitutions and
// swaps of two neighbours, case ignored), at most three, when that distance
// is small enough for a typo of s: 1 up to 4 letters, 2 up to 8, else 3.
// Nothing when no candidate is that close.
func nearest(s string, candidates []string) []string {
	limit := 3
	switch n := len(s); {
	case n <= 4:
		limit = 1
	case n <= 8:
		limit = 2
	}
	best, out := limit+1, []string(nil)
	for _, c := range candidates {
		d := editDistance(strings.ToLower(s), strings.ToLower(c))
		switch {
		case d > limit:
		case d < best:
			best, out = d, []string{c}
		case d == best:
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out[:min(len(out), 3)]
}

// didYouMean is " (did you mean A or B?)" for nearest's candidates, each
// written with prefix ("--" for flags), or "".
func didYouMean(s string, candidates []string, prefix string) string {
	near := nearest(s, candidates)
	if len(near) == 0 {
		return ""
	}
	for i, c := range near {
		near[i] = prefix + c
	}
	return " (did you mean " + strings.Join(near, " or ") + "?)"
}

// editDistance is the optimal string alignment distance between a and b
// (Levenshtein's, with a swap of two neighbouring letters counting as
// one edit), over bytes: flag and command names are ASCII.
func editDistance(a, b string) int {
	// d[i][j] is the distance between a[:i] and b[:j]; three rows suffice.
	prev2, prev, cur := make([]int, len(b)+1), make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
