// Package pseudonym gives the form of a user id that may appear in logs, metrics labels and
// security events: keyed, so that someone holding the logs cannot recover ids by hashing small
// integers, and stable, so that one person's lines can be followed. It is a leaf.
package pseudonym

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strconv"
	"sync"
	"sync/atomic"
)

// maxKept bounds the pseudonyms a replica keeps (about 100 bytes each).
const maxKept = 100_000

// Users computes user pseudonyms under one key. It is safe for concurrent use.
type Users struct {
	// hashers pools keyed HMACs: Of runs on every request.
	hashers sync.Pool
	// kept caches results (userKey → string); count counts stores.
	kept  sync.Map
	count atomic.Int64
}

type userKey struct {
	tenant string
	id     int64
}

// NewUsers returns pseudonyms under key.
func NewUsers(key []byte) *Users {
	u := &Users{}
	u.hashers.New = func() any { return hmac.New(sha256.New, key) }
	return u
}

// Of returns the pseudonym of the tenant's user: 16 hex digits.
func (u *Users) Of(tenantID string, userID int64) string {
	k := userKey{tenantID, userID}
	if h, ok := u.kept.Load(k); ok {
		return h.(string)
	}
	h := u.hash(tenantID, userID)
	// The pseudonyms of the people using this replica are kept (a hash per request was a
	// measurable share of a warm request); the set is emptied when it grows past maxKept, so
	// it cannot grow without bound.
	if u.count.Add(1) > maxKept {
		u.kept.Clear()
		u.count.Store(1)
	}
	u.kept.Store(k, h)
	return h
}

func (u *Users) hash(tenantID string, userID int64) string {
	m := u.hashers.Get().(hash.Hash)
	defer u.hashers.Put(m)
	m.Reset()
	var buf [96]byte
	b := append(append(buf[:0], tenantID...), ':')
	m.Write(strconv.AppendInt(b, userID, 10))
	var sum [sha256.Size]byte
	return hex.EncodeToString(m.Sum(sum[:0])[:8])
}
