package pseudonym

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"testing"
)

func TestOf(t *testing.T) {
	key := []byte("a pseudonym key of thirty-two b!")
	u, other := NewUsers(key), NewUsers([]byte("another key, another set of names"))
	tests := []struct {
		name   string
		tenant string
		id     int64
	}{
		{"small id", "acme", 1},
		{"same id, other tenant", "globex", 1},
		{"large id", "acme", 1 << 40},
	}
	seen := map[string]string{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := hmac.New(sha256.New, key)
			m.Write([]byte(tc.tenant + ":" + strconv.FormatInt(tc.id, 10)))
			want := hex.EncodeToString(m.Sum(nil)[:8])
			if got := u.Of(tc.tenant, tc.id); got != want {
				t.Fatalf("Of = %q, want %q", got, want)
			}
			if again := u.Of(tc.tenant, tc.id); again != want {
				t.Fatalf("the kept pseudonym %q differs from the computed %q", again, want)
			}
			if other.Of(tc.tenant, tc.id) == want {
				t.Fatal("two keys give the same pseudonym")
			}
			if prev, dup := seen[want]; dup {
				t.Fatalf("%s and %s share a pseudonym", tc.name, prev)
			}
			seen[want] = tc.name
		})
	}
}

func TestOfStaysBounded(t *testing.T) {
	u := NewUsers([]byte("k"))
	for i := range int64(maxKept + 10) {
		u.Of("acme", i)
	}
	if n := u.count.Load(); n > maxKept {
		t.Fatalf("keeps %d pseudonyms, more than %d", n, maxKept)
	}
}
