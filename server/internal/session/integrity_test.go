package session

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/kv"
	"github.com/basiq-bff/bff/server/internal/kv/kvtest/each"
)

var bob = Data{UserID: 8, Tenant: "acme", Email: "bob@acme.test"}

// TestMovedOrEditedRecordIsNoSession: someone who can write to Redis cannot become another
// user by copying that user's record under their own session id, nor change what a record
// says; either way the session is gone (401), never someone else's.
func TestMovedOrEditedRecordIsNoSession(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(*testing.T) kv.Store) {
		tests := []struct {
			name   string
			tamper func(t *testing.T, store kv.Store, victim, attacker string)
		}{
			{"victim's record copied under the attacker's id", func(t *testing.T, store kv.Store, victim, attacker string) {
				b := mustGetKV(t, store, sessKey(victim))
				mustNoErr(t, store.Set(context.Background(), sessKey(attacker), b, time.Hour))
			}},
			{"one byte of the attacker's record flipped", func(t *testing.T, store kv.Store, _, attacker string) {
				b := mustGetKV(t, store, sessKey(attacker))
				b[len(b)-5] ^= 1
				mustNoErr(t, store.Set(context.Background(), sessKey(attacker), b, time.Hour))
			}},
			{"a plain JSON record naming the victim", func(t *testing.T, store kv.Store, _, attacker string) {
				b, _ := json.Marshal(record{UserID: alice.UserID, Tenant: alice.Tenant, Email: alice.Email, BasiqUserID: "someone-else",
					Created: newClock().Now().Unix(), Seen: newClock().Now().Unix()})
				mustNoErr(t, store.Set(context.Background(), sessKey(attacker), b, time.Hour))
			}},
			{"a record sealed under a key no longer configured", func(t *testing.T, store kv.Store, _, attacker string) {
				other, err := newSealer([][]byte{keyB})
				if err != nil {
					t.Fatal(err)
				}
				b, _ := json.Marshal(record{UserID: alice.UserID, Tenant: alice.Tenant, Email: alice.Email,
					Created: newClock().Now().Unix(), Seen: newClock().Now().Unix()})
				sealed, err := other.seal(attacker, b)
				mustNoErr(t, err)
				mustNoErr(t, store.Set(context.Background(), sessKey(attacker), sealed, time.Hour))
			}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				store, clk := newKV(t), newClock()
				s := newTestStore(t, store, clk, nil)
				victim, attacker := begin(t, s, alice), begin(t, s, bob)
				tc.tamper(t, store, idOf(t, s, victim), idOf(t, s, attacker))
				wantUnauthenticated(t, s, attacker)
				if d, _ := mustCurrent(t, s, victim); d.Email != alice.Email {
					t.Errorf("the victim's own session reads %+v", d)
				}
			})
		}
	})
}

// TestRecordKeyRotation: records sealed under the old first key still open once a new key is
// prepended, and new records are sealed with the new key.
func TestRecordKeyRotation(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(*testing.T) kv.Store) {
		store, clk := newKV(t), newClock()
		old := newTestStore(t, store, clk, func(o *Options) { o.Keys = [][]byte{keyA} })
		rotating := newTestStore(t, store, clk, func(o *Options) { o.Keys = [][]byte{keyB, keyA} })
		c := begin(t, old, alice)
		clk.Advance(2 * time.Minute)
		_, touch := mustCurrent(t, rotating, c)
		mustNoErr(t, touch()) // rewritten, sealed with keyB now
		b := mustGetKV(t, store, sessKey(idOf(t, old, c)))
		onlyB, err := newSealer([][]byte{keyB})
		mustNoErr(t, err)
		if _, ok := onlyB.open(idOf(t, old, c), b); !ok {
			t.Error("a rewritten record is not sealed with the first key")
		}
	})
}

// TestWriteBackNeverRevives: a request that loaded its session before the session was ended
// (logout, users disable) writes back with Touch or SetBasiqUserID afterwards; the session
// must stay ended, and the request learns it is no longer authenticated.
func TestWriteBackNeverRevives(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(*testing.T) kv.Store) {
		cacheModes(t, func(t *testing.T, cacheTTL time.Duration) {
			tests := []struct {
				name  string
				write func(s *Store, sess sessionHandle) error
			}{
				{"Touch", func(s *Store, h sessionHandle) error { return h.touch() }},
				{"SetBasiqUserID", func(s *Store, h sessionHandle) error {
					return s.SetBasiqUserID(context.Background(), h.sess, "basiq-user-1")
				}},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					store, clk := newKV(t), newClock()
					s := newTestStore(t, store, clk, func(o *Options) { o.CacheTTL = cacheTTL })
					c := begin(t, s, alice)
					h := current(t, s, c) // the in-flight request has its session
					if _, err := s.EndUser(context.Background(), alice.Tenant, alice.UserID); err != nil {
						t.Fatal(err)
					}
					clk.Advance(2 * time.Minute) // so Touch writes
					err := tc.write(s, h)
					if !errors.Is(err, apperr.Unauthenticated) {
						t.Errorf("write-back after the end = %v, want apperr.Unauthenticated", err)
					}
					if _, err := store.Get(context.Background(), sessKey(idOf(t, s, c))); !errors.Is(err, kv.ErrNotFound) {
						t.Errorf("the record is back: %v", err)
					}
					wantUnauthenticated(t, s, c)
				})
			}
		})
	})
}

// TestBeginCheckedEndsTheSessionWhenTheUserWasDisabled: a login whose user is disabled while
// it runs leaves no session behind and sets no cookie.
func TestBeginCheckedEndsTheSessionWhenTheUserWasDisabled(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(*testing.T) kv.Store) {
		store, clk := newKV(t), newClock()
		s := newTestStore(t, store, clk, nil)
		refused := apperr.New(apperr.InvalidCredentials, "")
		rec := httptest.NewRecorder()
		err := s.BeginChecked(rec, request(), alice, func(context.Context) error { return refused })
		if !errors.Is(err, apperr.InvalidCredentials) {
			t.Fatalf("BeginChecked = %v, want the check's error", err)
		}
		if len(rec.Result().Cookies()) != 0 {
			t.Errorf("a cookie was set: %v", rec.Result().Cookies())
		}
		ids, err := store.SMembers(context.Background(), userKey(alice.Tenant, alice.UserID))
		mustNoErr(t, err)
		if len(ids) != 0 {
			t.Errorf("the user's index still lists %v", ids)
		}
	})
}

// TestLoginPrunesTimedOutIDs: the ids of sessions kv has expired leave the user's index at the
// user's next login.
func TestLoginPrunesTimedOutIDs(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(*testing.T) kv.Store) {
		store, clk := newKV(t), newClock()
		s := newTestStore(t, store, clk, nil)
		expired, live := begin(t, s, alice), begin(t, s, alice)
		// kv expiring the record is what a timed-out session looks like to the index.
		mustNoErr(t, store.Delete(context.Background(), sessKey(idOf(t, s, expired))))
		next := begin(t, s, alice)
		ids, err := store.SMembers(context.Background(), userKey(alice.Tenant, alice.UserID))
		mustNoErr(t, err)
		slices.Sort(ids)
		want := []string{idOf(t, s, live), idOf(t, s, next)}
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			t.Errorf("index = %v, want %v", ids, want)
		}
	})
}

type sessionHandle struct {
	sess  *Session
	touch func() error
}

func current(t *testing.T, s *Store, c *http.Cookie) sessionHandle {
	t.Helper()
	sess, err := s.Current(request(c))
	if err != nil {
		t.Fatalf("Current: %v", err)
	}
	return sessionHandle{sess: sess, touch: func() error { return s.Touch(context.Background(), sess) }}
}

func mustGetKV(t *testing.T, store kv.Store, key string) []byte {
	t.Helper()
	b, err := store.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("kv get %s: %v", key, err)
	}
	return b
}

func mustNoErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
