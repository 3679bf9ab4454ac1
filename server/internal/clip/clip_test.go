package clip

import (
	"testing"
	"unicode/utf8"
)

func TestTo(t *testing.T) {
	tests := []struct {
		name string
		s    string
		n    int
		want string
	}{
		{"short enough", "abc", 3, "abc"},
		{"cut", "abcdef", 3, "abc…"},
		{"empty", "", 0, ""},
		{"not inside a rune", "aé", 2, "a…"},
		{"at a rune boundary", "éé", 2, "é…"},
		{"zero", "abc", 0, "…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := To(tc.s, tc.n)
			if got != tc.want || !utf8.ValidString(got) {
				t.Errorf("To(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
			}
		})
	}
}
