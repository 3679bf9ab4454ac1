package session

import (
	"net/http"
	"net/textproto"
	"strings"
)

// maxQuickCookies bounds the cookies cookieValue reads itself; a request with more is left to
// net/http, whose own limit then applies.
const maxQuickCookies = 64

// cookieValue is r.Cookie(name)'s value without building an *http.Cookie for every cookie the
// request carries: it finds the first cookie called name, as net/http does, and takes its
// value when that is plain (the URL-safe base64 securecookie writes). Anything else (a quoted
// or unusual value, very many cookies) is left to net/http, so the result is always the one
// r.Cookie gives.
func cookieValue(r *http.Request, name string) (string, bool) {
	lines := r.Header["Cookie"]
	n := 0
	for _, line := range lines {
		n += strings.Count(line, ";") + 1
	}
	if n <= maxQuickCookies {
		if v, found := firstCookie(lines, name); !found {
			return "", false
		} else if plainCookieValue(v) {
			return v, true
		}
	}
	c, err := r.Cookie(name)
	if err != nil {
		return "", false
	}
	return c.Value, true
}

// firstCookie returns the raw value of the first cookie called name in lines.
func firstCookie(lines []string, name string) (string, bool) {
	for _, line := range lines {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			k, v, _ := strings.Cut(textproto.TrimString(part), "=")
			if textproto.TrimString(k) == name {
				return v, true
			}
		}
	}
	return "", false
}

// plainCookieValue reports whether v is a non-empty run of URL-safe base64 (padding
// included), which net/http takes as it is.
func plainCookieValue(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '=':
		default:
			return false
		}
	}
	return true
}
