package session

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// cookieHeaders are Cookie header lines on which cookieValue must agree with net/http.
var cookieHeaders = []struct {
	name  string
	lines []string
	want  string
	found bool
}{
	{name: "none", lines: nil},
	{name: "only", lines: []string{"bff=YWJj-_=="}, want: "YWJj-_==", found: true},
	{name: "among others", lines: []string{"a=1; bff=YWJj; b=2"}, want: "YWJj", found: true},
	{name: "spaces around", lines: []string{"  a=1 ;  bff=YWJj  ; b=2 "}, want: "YWJj", found: true},
	{name: "first of two", lines: []string{"bff=first; bff=second"}, want: "first", found: true},
	{name: "second line", lines: []string{"a=1", "bff=YWJj"}, want: "YWJj", found: true},
	{name: "quoted", lines: []string{`bff="YWJj"`}, want: "YWJj", found: true},
	{name: "invalid first, valid second", lines: []string{"bff=a\\b; bff=YWJj"}, want: "YWJj", found: true},
	{name: "empty value", lines: []string{"bff=; a=1"}, want: "", found: true},
	{name: "no equals", lines: []string{"bff"}, want: "", found: true},
	{name: "other name only", lines: []string{"bffx=YWJj; xbff=YWJj"}},
	{name: "prefixed name", lines: []string{"__Host-bff=YWJj"}},
	{name: "many cookies", lines: []string{strings.Repeat("a=1; ", 100) + "bff=YWJj"}, want: "YWJj", found: true},
	{name: "semicolons only", lines: []string{";;; ;"}},
}

// TestCookieValue checks cookieValue against net/http's own reading of the same header.
func TestCookieValue(t *testing.T) {
	for _, tt := range cookieHeaders {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header["Cookie"] = tt.lines
			got, found := cookieValue(r, "bff")
			if got != tt.want || found != tt.found {
				t.Errorf("cookieValue = %q, %v; want %q, %v", got, found, tt.want, tt.found)
			}
			c, err := r.Cookie("bff")
			if (err == nil) != found || err == nil && c.Value != got {
				t.Errorf("net/http reads %v, %v; cookieValue %q, %v", c, err, got, found)
			}
		})
	}
}

// FuzzCookieValue: on any Cookie header, cookieValue finds what net/http finds.
func FuzzCookieValue(f *testing.F) {
	for _, tt := range cookieHeaders {
		f.Add(strings.Join(tt.lines, "\n"))
	}
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header["Cookie"] = strings.Split(header, "\n")
		got, found := cookieValue(r, "bff")
		c, err := r.Cookie("bff")
		if (err == nil) != found || err == nil && c.Value != got {
			t.Fatalf("net/http reads %v, %v; cookieValue %q, %v", c, err, got, found)
		}
	})
}
