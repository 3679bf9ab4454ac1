package clienttoken

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/basiq-bff/bff/server/internal/derive"
)

// entry is one cached Basiq token. Times are Unix milliseconds so the encoding is compact.
type entry struct {
	Token       string `json:"t"`
	IssuedAt    int64  `json:"iat"`
	ExpiresAt   int64  `json:"exp"`
	KeyID       string `json:"kid"`
	Correlation string `json:"cid,omitempty"`
	// plain is set when Token can be written between JSON quotes as it is, decided once
	// when the entry is made or read from kv rather than on every request that serves it.
	plain bool
}

// withPlain returns e with plain decided.
func (e entry) withPlain() entry {
	e.plain = jsonPlain(e.Token)
	return e
}

// jsonPlain reports whether s is printable ASCII without quotes or backslashes (Basiq tokens
// are JWTs: base64url and dots).
func jsonPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			return false
		}
	}
	return true
}

func (e entry) remaining(now time.Time) time.Duration {
	return time.UnixMilli(e.ExpiresAt).Sub(now)
}

func (e entry) age(now time.Time) time.Duration {
	return now.Sub(time.UnixMilli(e.IssuedAt))
}

// sealer encrypts cache entries with AES-256-GCM, binding each ciphertext to its cache key as
// additional data: a value copied to another key (another tenant, scope or user) fails to
// open instead of being served.
type sealer struct{ aead cipher.AEAD }

func newSealer(master []byte) (*sealer, error) {
	if len(master) != 32 {
		return nil, errors.New("clienttoken: the cache encryption key must be 32 bytes")
	}
	block, err := aes.NewCipher(derive.Key(master, "bff token cache v1"))
	if err != nil {
		return nil, fmt.Errorf("clienttoken: cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("clienttoken: gcm: %w", err)
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(cacheKey string, e entry) ([]byte, error) {
	plain, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("clienttoken: encode entry: %w", err)
	}
	out := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("clienttoken: nonce: %w", err)
	}
	return s.aead.Seal(out, out, plain, []byte(cacheKey)), nil
}

var errCorrupt = errors.New("clienttoken: cached value does not open")

func (s *sealer) open(cacheKey string, b []byte) (entry, error) {
	n := s.aead.NonceSize()
	if len(b) < n+s.aead.Overhead() {
		return entry{}, errCorrupt
	}
	plain, err := s.aead.Open(nil, b[:n], b[n:], []byte(cacheKey))
	if err != nil {
		return entry{}, errCorrupt
	}
	var e entry
	if err := json.Unmarshal(plain, &e); err != nil || e.Token == "" {
		return entry{}, errCorrupt
	}
	return e.withPlain(), nil
}
