package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Password length rules. The upper bound keeps a hostile request from making us hash
// megabytes; it is far above any passphrase a person types.
const (
	MinPasswordLen = 12
	MaxPasswordLen = 1024
)

// params are the argon2id costs for new hashes: OWASP's 19 MiB, 2 passes, 1 lane, which
// keeps a login near 30 ms on one core. Stored hashes carry their own parameters, so these
// can be raised later without invalidating old hashes.
var params = argonParams{memory: 19 * 1024, time: 2, threads: 1, keyLen: 32, saltLen: 16}

type argonParams struct {
	memory  uint32
	time    uint32
	threads uint8
	keyLen  uint32
	saltLen int
}

// CheckPassword returns a human reason when pw is not acceptable as a new password.
func CheckPassword(pw string) error {
	n := utf8.RuneCountInString(pw)
	switch {
	case !utf8.ValidString(pw):
		return errors.New("the password must be valid UTF-8")
	case n < MinPasswordLen:
		return fmt.Errorf("the password must have at least %d characters", MinPasswordLen)
	case len(pw) > MaxPasswordLen:
		return fmt.Errorf("the password must have at most %d bytes", MaxPasswordLen)
	}
	return nil
}

// HashPassword returns the argon2id hash of pw in the PHC string format.
func HashPassword(pw string) (string, error) {
	salt := make([]byte, params.saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return encodeHash(params, salt, argon2.IDKey([]byte(pw), salt, params.time, params.memory, params.threads, params.keyLen)), nil
}

func encodeHash(p argonParams, salt, key []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.memory, p.time, p.threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// VerifyPassword reports whether pw matches the PHC-encoded argon2id hash. A malformed hash
// is an error, never a match.
func VerifyPassword(hash, pw string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errors.New("verify password: not an argon2id hash")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errors.New("verify password: unsupported argon2 version")
	}
	var p argonParams
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &p.threads); err != nil {
		return false, errors.New("verify password: bad parameters")
	}
	// Stored hashes come from our database, but a damaged one must not make a login allocate
	// gigabytes: at most 256 MiB and 16 passes.
	if p.memory < 8 || p.memory > 1<<18 || p.time < 1 || p.time > 16 || p.threads < 1 {
		return false, errors.New("verify password: parameters out of range")
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, errors.New("verify password: bad salt")
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) < 16 || len(want) > 64 {
		return false, errors.New("verify password: bad key")
	}
	got := argon2.IDKey([]byte(pw), salt, p.time, p.memory, p.threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
