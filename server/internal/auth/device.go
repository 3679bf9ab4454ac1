package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DeviceLifetime is how long a device cookie is honoured after the login that issued it.
const DeviceLifetime = 180 * 24 * time.Hour

// A device cookie (OWASP, "Slow Down Online Guessing Attacks with Device Cookies") says "this
// browser logged in to this account before": v1.<account>.<nonce>.<issued>.<signature>. The
// account is the keyed hash of tenant and email, so the cookie names nobody; the nonce is
// what its own attempt counter is keyed on.

func (s *Service) issueDevice(account string, now time.Time) (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("device cookie nonce: %w", err)
	}
	payload := "v1." + account + "." + hex.EncodeToString(b) + "." + strconv.FormatInt(now.Unix(), 10)
	return payload + "." + deviceSig(s.keys.Device[0], payload), nil
}

// verifyDevice returns the nonce of value when it is a device cookie signed by one of the
// device keys, for account, and not older than DeviceLifetime.
func (s *Service) verifyDevice(value, account string, now time.Time) (string, bool) {
	if value == "" || len(value) > 256 {
		return "", false
	}
	i := strings.LastIndexByte(value, '.')
	if i < 0 {
		return "", false
	}
	payload, sig := value[:i], value[i+1:]
	parts := strings.Split(payload, ".")
	if len(parts) != 4 || parts[0] != "v1" || !hmac.Equal([]byte(parts[1]), []byte(account)) {
		return "", false
	}
	signed := false
	for _, k := range s.keys.Device {
		if hmac.Equal([]byte(sig), []byte(deviceSig(k, payload))) {
			signed = true
			break
		}
	}
	issued, err := strconv.ParseInt(parts[3], 10, 64)
	if !signed || err != nil || now.Sub(time.Unix(issued, 0)) > DeviceLifetime || time.Unix(issued, 0).After(now.Add(time.Minute)) {
		return "", false
	}
	return parts[2], true
}

func deviceSig(key []byte, payload string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("bff device cookie\x00" + payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
