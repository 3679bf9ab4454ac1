package httpapi

import "testing"

func TestSafeReturnTo(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"empty", "", "/"},
		{"root", "/", "/"},
		{"path and query", "/accounts?tab=1#top", "/accounts?tab=1#top"},
		{"protocol-relative", "//evil.example/x", "/"},
		{"backslash host", "/\\evil.example", "/"},
		{"backslash later", "/a\\b", "/"},
		{"absolute URL", "https://evil.example/", "/"},
		{"javascript", "javascript:alert(1)", "/"},
		{"relative path", "accounts", "/"},
		{"control character", "/a\nSet-Cookie: x", "/"},
		{"tab", "/\t/evil.example", "/"},
		{"too long", "/" + string(make([]byte, 600)), "/"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := safeReturnTo(tc.in); got != tc.want {
				t.Errorf("safeReturnTo(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
