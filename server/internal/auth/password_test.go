package auth

import (
	"strings"
	"testing"
)

func TestPasswordHashRoundTrip(t *testing.T) {
	h, err := HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q is not PHC argon2id with our parameters", h)
	}
	other, _ := HashPassword("correct horse battery staple")
	if other == h {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	tests := []struct {
		name string
		pw   string
		want bool
	}{
		{"right password", "correct horse battery staple", true},
		{"wrong password", "correct horse battery stapler", false},
		{"empty", "", false},
		{"case differs", "Correct horse battery staple", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := VerifyPassword(h, tc.pw)
			if err != nil || ok != tc.want {
				t.Errorf("VerifyPassword = %v, %v; want %v", ok, err, tc.want)
			}
		})
	}
}

// TestVerifyRejectsMalformedHashes: a damaged or hostile stored hash is an error, never a
// match, and cannot make verification allocate unbounded memory.
func TestVerifyRejectsMalformedHashes(t *testing.T) {
	good, _ := HashPassword("correct horse battery staple")
	parts := strings.Split(good, "$")
	tests := map[string]string{
		"empty":            "",
		"bcrypt":           "$2a$10$abcdefghijklmnopqrstuu5s4GqzGsKcdK1lVbYIVEZNa5sQwBVaS",
		"argon2i":          strings.Replace(good, "argon2id", "argon2i", 1),
		"wrong version":    strings.Replace(good, "v=19", "v=16", 1),
		"huge memory":      strings.Join([]string{"", parts[1], parts[2], "m=99999999,t=2,p=1", parts[4], parts[5]}, "$"),
		"zero passes":      strings.Join([]string{"", parts[1], parts[2], "m=19456,t=0,p=1", parts[4], parts[5]}, "$"),
		"bad salt":         strings.Join([]string{"", parts[1], parts[2], parts[3], "!!!", parts[5]}, "$"),
		"short key":        strings.Join([]string{"", parts[1], parts[2], parts[3], parts[4], "AAAA"}, "$"),
		"missing sections": "$argon2id$v=19$m=19456,t=2,p=1",
	}
	for name, h := range tests {
		t.Run(name, func(t *testing.T) {
			ok, err := VerifyPassword(h, "correct horse battery staple")
			if ok || err == nil {
				t.Errorf("VerifyPassword(%q) = %v, %v; want an error", h, ok, err)
			}
		})
	}
}

func TestCheckPassword(t *testing.T) {
	tests := []struct {
		name string
		pw   string
		ok   bool
	}{
		{"long enough", "twelve chars", true},
		{"unicode counts runes", "ééééééééééé€", true},
		{"too short", "eleven char", false},
		{"too long", strings.Repeat("x", MaxPasswordLen+1), false},
		{"invalid utf-8", "abcdefghijk\xff", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := CheckPassword(tc.pw); (err == nil) != tc.ok {
				t.Errorf("CheckPassword = %v, want ok %v", err, tc.ok)
			}
		})
	}
}
