package clienttoken

import (
	"bytes"
	"testing"
)

// TestEntryPlain checks that whether a token needs JSON escaping is decided when the entry is
// read back from kv, so that serving it never has to look at it again.
func TestEntryPlain(t *testing.T) {
	s, err := newSealer(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		token string
		plain bool
	}{
		{name: "JWT", token: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl-_", plain: true},
		{name: "quote", token: `abc"def`},
		{name: "backslash", token: `abc\def`},
		{name: "newline", token: "abc\ndef"},
		{name: "non-ASCII", token: "abcé"},
		{name: "DEL", token: "abc\x7f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := s.seal("tok:k", entry{Token: tt.token, ExpiresAt: 1})
			if err != nil {
				t.Fatal(err)
			}
			e, err := s.open("tok:k", sealed)
			if err != nil {
				t.Fatal(err)
			}
			if e.plain != tt.plain {
				t.Errorf("plain = %v, want %v", e.plain, tt.plain)
			}
			if made := (entry{Token: tt.token}).withPlain(); made.plain != tt.plain {
				t.Errorf("withPlain: plain = %v, want %v", made.plain, tt.plain)
			}
		})
	}
}
