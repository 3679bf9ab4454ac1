package derive

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"testing"
)

func TestKey(t *testing.T) {
	master := bytes.Repeat([]byte{7}, 32)
	tests := []struct {
		name   string
		master []byte
		label  string
	}{
		{"token cache", master, "bff token cache v1"},
		{"log pseudonyms", master, "bff log pseudonyms v1"},
		{"other master", bytes.Repeat([]byte{8}, 32), "bff token cache v1"},
	}
	seen := map[string]string{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := Key(tc.master, tc.label)
			m := hmac.New(sha256.New, tc.master)
			m.Write([]byte(tc.label))
			if !bytes.Equal(k, m.Sum(nil)) || len(k) != 32 {
				t.Fatalf("Key is not HMAC-SHA256(master, label): %x", k)
			}
			if other, dup := seen[string(k)]; dup {
				t.Fatalf("%s and %s derive the same key", tc.name, other)
			}
			seen[string(k)] = tc.name
		})
	}
}
