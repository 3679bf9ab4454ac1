package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// sealVersion leads every sealed record, so the format can change without guessing.
const sealVersion = 1

// sealInfo separates the record key from every other use of a session key (HKDF's info).
const sealInfo = "bff session record v1"

// sealer encrypts and authenticates session records with AES-256-GCM. Each session key gives
// one AEAD key through HKDF-SHA256; the first seals and all open, so rotating the session keys
// by prepending keeps existing sessions. The record's session id is the associated data: a
// record copied under another id, or edited, does not open.
type sealer struct {
	aeads []cipher.AEAD
}

func newSealer(keys [][]byte) (*sealer, error) {
	s := &sealer{}
	for i, k := range keys {
		rk, err := hkdf.Key(sha256.New, k, nil, sealInfo, 32)
		if err != nil {
			return nil, fmt.Errorf("session: derive record key %d: %w", i, err)
		}
		block, err := aes.NewCipher(rk)
		if err != nil {
			return nil, fmt.Errorf("session: record key %d: %w", i, err)
		}
		a, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("session: record key %d: %w", i, err)
		}
		s.aeads = append(s.aeads, a)
	}
	if len(s.aeads) == 0 {
		return nil, errors.New("session: at least one key is required")
	}
	return s, nil
}

func sealAD(id string) []byte { return []byte("sess:" + id) }

// seal returns version || nonce || ciphertext of plain, bound to id.
func (s *sealer) seal(id string, plain []byte) ([]byte, error) {
	a := s.aeads[0]
	out := make([]byte, 1+a.NonceSize(), 1+a.NonceSize()+len(plain)+a.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("session: nonce: %w", err)
	}
	return a.Seal(out, out[1:], plain, sealAD(id)), nil
}

// open returns the plain record, or false when b was not sealed for id under any configured
// key.
func (s *sealer) open(id string, b []byte) ([]byte, bool) {
	if len(b) < 1 || b[0] != sealVersion {
		return nil, false
	}
	for _, a := range s.aeads {
		n := a.NonceSize()
		if len(b) < 1+n+a.Overhead() {
			return nil, false
		}
		if plain, err := a.Open(nil, b[1:1+n], b[1+n:], sealAD(id)); err == nil {
			return plain, true
		}
	}
	return nil, false
}
