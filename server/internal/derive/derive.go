// Package derive separates the uses of one configured secret: each use gets its own key,
// HMAC-SHA256 of a label under the secret, so a key leaked or misused in one place says
// nothing about the others. It is a leaf.
package derive

import (
	"crypto/hmac"
	"crypto/sha256"
)

// Key returns the 32-byte key for label under master. Labels name a use and a version
// ("bff token cache v1"); changing one changes the key.
func Key(master []byte, label string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte(label))
	return m.Sum(nil)
}
