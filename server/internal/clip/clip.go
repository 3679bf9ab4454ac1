// Package clip bounds text taken from outside (an upstream answer, a request field) before it
// goes into a log line or an error message. It is a leaf.
package clip

import "unicode/utf8"

// To shortens s to at most n bytes, never inside a UTF-8 sequence, and marks the cut with "…".
func To(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
