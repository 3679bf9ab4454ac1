package session

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/clocktest"
	"github.com/basiq-bff/bff/server/internal/kv"
	"github.com/basiq-bff/bff/server/internal/kv/kvtest/each"
)

// newClock is a settable time for the session store. The kv store keeps real time, so a
// session that the store's clock has timed out still exists in kv until the store notices:
// that is the path that must delete it.
func newClock() *clocktest.Clock { return clocktest.New(time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)) }

var (
	keyA = bytes.Repeat([]byte{0xa1}, 32)
	keyB = bytes.Repeat([]byte{0xb2}, 32)
)

const (
	idle     = 30 * time.Minute
	absolute = 2 * time.Hour
)

func newTestStore(t *testing.T, store kv.Store, clk *clocktest.Clock, mutate func(*Options)) *Store {
	t.Helper()
	o := Options{Keys: [][]byte{keyA}, IdleTimeout: idle, AbsoluteTimeout: absolute, Now: clk.Now}
	if mutate != nil {
		mutate(&o)
	}
	s, err := NewStore(store, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var alice = Data{UserID: 7, Tenant: "acme", Email: "alice@acme.test"}

// begin logs d in on a request carrying cookies and returns the new session cookie.
func begin(t *testing.T, s *Store, d Data, cookies ...*http.Cookie) *http.Cookie {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := s.Begin(rec, request(cookies...), d); err != nil {
		t.Fatalf("Begin: %v", err)
	}
	for _, c := range rec.Result().Cookies() {
		if c.Name == s.name && c.Value != "" {
			return c
		}
	}
	t.Fatalf("Begin set no %s cookie: %v", s.name, rec.Result().Header)
	return nil
}

func request(cookies ...*http.Cookie) *http.Request {
	r := httptest.NewRequest("GET", "/client-token", nil)
	for _, c := range cookies {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	return r
}

// idOf decodes the session id a cookie carries.
func idOf(t *testing.T, s *Store, c *http.Cookie) string {
	t.Helper()
	var id []byte
	if err := securecookie.DecodeMulti(c.Name, c.Value, &id, s.codecs...); err != nil {
		t.Fatalf("decode cookie: %v", err)
	}
	return string(id)
}

// storedSeen reads the last-seen time of a session record straight from kv.
func storedSeen(t *testing.T, store kv.Store, id string) (int64, bool) {
	t.Helper()
	b, err := store.Get(context.Background(), sessKey(id))
	if errors.Is(err, kv.ErrNotFound) {
		return 0, false
	}
	if err != nil {
		t.Fatalf("kv get: %v", err)
	}
	sl, err := newSealer([][]byte{keyA, keyB})
	if err != nil {
		t.Fatal(err)
	}
	plain, ok := sl.open(id, b)
	if !ok {
		t.Fatalf("the record of %s does not open", id)
	}
	var rec struct {
		Seen int64 `json:"st"`
	}
	if err := json.Unmarshal(plain, &rec); err != nil {
		t.Fatalf("decode record: %v", err)
	}
	return rec.Seen, true
}

func mustCurrent(t *testing.T, s *Store, c *http.Cookie) (Data, func() error) {
	t.Helper()
	sess, err := s.Current(request(c))
	if err != nil {
		t.Fatalf("Current: %v", err)
	}
	return sess.Data, func() error { return s.Touch(context.Background(), sess) }
}

func wantUnauthenticated(t *testing.T, s *Store, c *http.Cookie) {
	t.Helper()
	_, err := s.Current(request(c))
	if !errors.Is(err, apperr.Unauthenticated) || errors.Is(err, apperr.StoreUnavailable) {
		t.Fatalf("Current = %v, want apperr.Unauthenticated", err)
	}
}

// cacheModes runs f with the in-process record copy off and on: timeouts must hold either way.
func cacheModes(t *testing.T, f func(t *testing.T, cacheTTL time.Duration)) {
	for _, tc := range []struct {
		name string
		ttl  time.Duration
	}{{"no record cache", 0}, {"record cache", time.Hour}} {
		t.Run(tc.name, func(t *testing.T) { f(t, tc.ttl) })
	}
}

func TestIdleTimeoutSlides(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(*testing.T) kv.Store) {
		cacheModes(t, func(t *testing.T, cacheTTL time.Duration) {
			store, clk := newKV(t), newClock()
			s := newTestStore(t, store, clk, func(o *Options) { o.CacheTTL = cacheTTL })
			c := begin(t, s, alice)
			id := idOf(t, s, c)

			// Each visit before the idle timeout slides it, so the session outlives the first
			// idle window by far (87 minutes; the absolute timeout is 2 hours).
			for range 3 {
				clk.Advance(idle - time.Minute)
				_, touch := mustCurrent(t, s, c)
				if err := touch(); err != nil {
					t.Fatalf("Touch: %v", err)
				}
			}
			if seen, ok := storedSeen(t, store, id); !ok || seen != clk.Now().Unix() {
				t.Fatalf("stored seen = %d (exists %v), want %d", seen, ok, clk.Now().Unix())
			}

			clk.Advance(idle)
			wantUnauthenticated(t, s, c)
			if _, ok := storedSeen(t, store, id); ok {
				t.Error("the idle session's record is still in kv")
			}
		})
	})
}

func TestIdleTimeoutBoundary(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(*testing.T) kv.Store) {
		tests := []struct {
			name  string
			after time.Duration
			alive bool
		}{
			{"one second before", idle - time.Second, true},
			{"exactly at the timeout", idle, false},
			{"long after", 10 * idle, false},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				store, clk := newKV(t), newClock()
				s := newTestStore(t, store, clk, nil)
				c := begin(t, s, alice)
				clk.Advance(tc.after)
				_, err := s.Current(request(c))
				if tc.alive && err != nil {
					t.Fatalf("Current = %v, want the session", err)
				}
				if !tc.alive {
					wantUnauthenticated(t, s, c)
					if _, ok := storedSeen(t, store, idOf(t, s, c)); ok {
						t.Error("the timed-out record is still in kv")
					}
				}
			})
		}
	})
}

func TestAbsoluteTimeout(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(*testing.T) kv.Store) {
		cacheModes(t, func(t *testing.T, cacheTTL time.Duration) {
			store, clk := newKV(t), newClock()
			s := newTestStore(t, store, clk, func(o *Options) { o.CacheTTL = cacheTTL })
			c := begin(t, s, alice)
			// Busy all along: touched every 10 minutes, never idle.
			for elapsed := 10 * time.Minute; elapsed < absolute; elapsed += 10 * time.Minute {
				clk.Advance(10 * time.Minute)
				_, touch := mustCurrent(t, s, c)
				if err := touch(); err != nil {
					t.Fatalf("Touch at %v: %v", elapsed, err)
				}
			}
			clk.Advance(10 * time.Minute) // now exactly the absolute timeout after login
			wantUnauthenticated(t, s, c)
			if _, ok := storedSeen(t, store, idOf(t, s, c)); ok {
				t.Error("the expired record is still in kv")
			}
		})
	})
}

func TestTouchWritesAtMostOncePerMinute(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(*testing.T) kv.Store) {
		store, clk := newKV(t), newClock()
		s := newTestStore(t, store, clk, nil)
		c := begin(t, s, alice)
		id := idOf(t, s, c)
		start := clk.Now().Unix()

		tests := []struct {
			name     string
			advance  time.Duration
			wantSeen int64
		}{
			{"at once", 0, start},
			{"after 30s", 30 * time.Second, start},
			{"after 59s", 29 * time.Second, start},
			{"after 60s", time.Second, start + 60},
			{"10s later", 10 * time.Second, start + 60},
			{"59s after the write", 49 * time.Second, start + 60},
			{"60s after the write", time.Second, start + 120},
		}
		for _, tc := range tests {
			clk.Advance(tc.advance)
			for range 3 {
				_, touch := mustCurrent(t, s, c)
				if err := touch(); err != nil {
					t.Fatalf("%s: Touch: %v", tc.name, err)
				}
			}
			if seen, _ := storedSeen(t, store, id); seen != tc.wantSeen {
				t.Errorf("%s: stored seen = %+d s, want %+d s", tc.name, seen-start, tc.wantSeen-start)
			}
		}
	})
}

func TestBeginNeverReusesAnIncomingID(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(*testing.T) kv.Store) {
		store, clk := newKV(t), newClock()
		s := newTestStore(t, store, clk, nil)
		live := begin(t, s, Data{UserID: 99, Tenant: "acme", Email: "mallory@acme.test"})
		plantedID := "planted-session-id-chosen-by-an-attacker"
		signed, err := securecookie.EncodeMulti(s.name, []byte(plantedID), s.codecs...)
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name   string
			cookie *http.Cookie
		}{
			{"no cookie", nil},
			{"garbage", &http.Cookie{Name: s.name, Value: "planted"}},
			{"signed id with no session", &http.Cookie{Name: s.name, Value: signed}},
			{"another person's live session", live},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				var in []*http.Cookie
				var inID string
				if tc.cookie != nil {
					in = append(in, tc.cookie)
					var raw []byte
					if securecookie.DecodeMulti(s.name, tc.cookie.Value, &raw, s.codecs...) == nil {
						inID = string(raw)
					}
				}
				out := begin(t, s, alice, in...)
				outID := idOf(t, s, out)
				if outID == inID || outID == plantedID || len(outID) < 22 {
					t.Fatalf("new session id %q (incoming %q)", outID, inID)
				}
				if d, _ := mustCurrent(t, s, out); d.UserID != alice.UserID || d.Tenant != alice.Tenant {
					t.Errorf("new session holds %+v", d)
				}
				if tc.cookie != nil {
					wantUnauthenticated(t, s, tc.cookie)
				}
				if inID != "" {
					if _, ok := storedSeen(t, store, inID); ok {
						t.Error("the incoming session's record still exists")
					}
				}
			})
		}
	})
}

func TestEndUserEndsEverySessionOfTheUser(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(*testing.T) kv.Store) {
		cacheModes(t, func(t *testing.T, cacheTTL time.Duration) {
			store, clk := newKV(t), newClock()
			s := newTestStore(t, store, clk, func(o *Options) { o.CacheTTL = cacheTTL })
			var hers []*http.Cookie
			for range 3 {
				c := begin(t, s, alice)
				mustCurrent(t, s, c) // warm the record cache when it is on
				hers = append(hers, c)
			}
			bob := begin(t, s, Data{UserID: 8, Tenant: "acme", Email: "bob@acme.test"})
			// The same numeric user id in another tenant is another person.
			twin := begin(t, s, Data{UserID: alice.UserID, Tenant: "beta", Email: "alice@beta.test"})

			n, err := s.EndUser(context.Background(), alice.Tenant, alice.UserID)
			if err != nil {
				t.Fatalf("EndUser: %v", err)
			}
			if n != 3 {
				t.Errorf("EndUser ended %d sessions, want 3", n)
			}
			for i, c := range hers {
				wantUnauthenticated(t, s, c)
				if _, ok := storedSeen(t, store, idOf(t, s, c)); ok {
					t.Errorf("session %d's record still exists", i)
				}
			}
			mustCurrent(t, s, bob)
			mustCurrent(t, s, twin)

			// A user with no sessions is not an error.
			if n, err := s.EndUser(context.Background(), alice.Tenant, alice.UserID); err != nil || n != 0 {
				t.Errorf("second EndUser = %d, %v; want 0, nil", n, err)
			}
		})
	})
}

// loginDuringEnd is a kv.Store on which a login lands between EndUser's read of the user's
// session index and its deletes: the race of a person signing in while an operator or a
// provider's logout ends their sessions.
type loginDuringEnd struct {
	kv.Store
	onRead func()
}

func (l *loginDuringEnd) SMembers(ctx context.Context, key string) ([]string, error) {
	ids, err := l.Store.SMembers(ctx, key)
	if f := l.onRead; f != nil && strings.HasPrefix(key, "usess:") {
		l.onRead = nil
		f()
	}
	return ids, err
}

// TestEndUserKeepsASessionBegunMeanwhile: a session indexed after EndUser read the index is
// not ended by that call (it did not see it), but it stays indexed, so the next EndUser (a
// later disable or password change) ends it.
func TestEndUserKeepsASessionBegunMeanwhile(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(*testing.T) kv.Store) {
		clk := newClock()
		racing := &loginDuringEnd{Store: newKV(t)}
		s := newTestStore(t, racing, clk, nil)
		old := begin(t, s, alice)
		var late *http.Cookie
		racing.onRead = func() { late = begin(t, s, alice) }
		if n, err := s.EndUser(context.Background(), alice.Tenant, alice.UserID); err != nil || n != 1 {
			t.Fatalf("EndUser = %d, %v; want 1, nil", n, err)
		}
		wantUnauthenticated(t, s, old)
		mustCurrent(t, s, late)
		if n, err := s.EndUser(context.Background(), alice.Tenant, alice.UserID); err != nil || n != 1 {
			t.Fatalf("second EndUser = %d, %v; want 1 (the session begun meanwhile), nil", n, err)
		}
		wantUnauthenticated(t, s, late)
	})
}

func TestSigningKeyRotation(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(*testing.T) kv.Store) {
		store, clk := newKV(t), newClock()
		old := newTestStore(t, store, clk, func(o *Options) { o.Keys = [][]byte{keyA} })
		rotating := newTestStore(t, store, clk, func(o *Options) { o.Keys = [][]byte{keyB, keyA} })
		rotated := newTestStore(t, store, clk, func(o *Options) { o.Keys = [][]byte{keyB} })

		signedOld := begin(t, old, alice)
		if d, _ := mustCurrent(t, rotating, signedOld); d.Email != alice.Email {
			t.Errorf("[new, old] read %+v", d)
		}
		wantUnauthenticated(t, rotated, signedOld)

		// New cookies are signed with the first key: the old-only store cannot read them,
		// the new-only store can.
		signedNew := begin(t, rotating, alice)
		mustCurrent(t, rotated, signedNew)
		wantUnauthenticated(t, old, signedNew)
	})
}

func TestCookieFlags(t *testing.T) {
	tests := []struct {
		name   string
		secure bool
		cookie string
	}{
		{"secure", true, "__Host-bff"},
		{"plain http development", false, "bff"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := kv.NewMemory(nil)
			t.Cleanup(func() { store.Close() })
			s := newTestStore(t, store, newClock(), func(o *Options) { o.Secure = tc.secure })
			if s.name != tc.cookie || CookieName(tc.secure) != tc.cookie {
				t.Errorf("cookie name %q, want %q", s.name, tc.cookie)
			}
			rec := httptest.NewRecorder()
			if err := s.Begin(rec, request(), alice); err != nil {
				t.Fatal(err)
			}
			checkCookie(t, rec, tc.cookie, tc.secure, false)
			c := rec.Result().Cookies()[0]
			sess, err := s.Current(request(c))
			if err != nil {
				t.Fatal(err)
			}
			end := httptest.NewRecorder()
			if err := s.End(end, request(c), sess); err != nil {
				t.Fatal(err)
			}
			checkCookie(t, end, tc.cookie, tc.secure, true)
			wantUnauthenticated(t, s, c)
		})
	}
}

// checkCookie checks the one Set-Cookie of rec: the session cookie name and flags, and either a
// live session cookie or one that ends it.
func checkCookie(t *testing.T, rec *httptest.ResponseRecorder, name string, secure, ending bool) {
	t.Helper()
	raw := rec.Result().Header.Values("Set-Cookie")
	if len(raw) != 1 {
		t.Fatalf("Set-Cookie = %q, want one", raw)
	}
	c := rec.Result().Cookies()[0]
	if c.Name != name || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" ||
		c.Secure != secure || c.Domain != "" || strings.Contains(strings.ToLower(raw[0]), "domain=") {
		t.Errorf("cookie flags: %s", raw[0])
	}
	if ending && (c.MaxAge >= 0 || c.Value != "") {
		t.Errorf("ending cookie: %s", raw[0])
	}
	if !ending && (c.MaxAge != int(absolute/time.Second) || c.Value == "") {
		t.Errorf("session cookie: %s", raw[0])
	}
}

func TestUnavailableStoreIsNeverUnauthenticated(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(*testing.T) kv.Store) {
		store, clk := newKV(t), newClock()
		s := newTestStore(t, store, clk, nil)
		c := begin(t, s, alice)
		sess, err := s.Current(request(c))
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Close(); err != nil {
			t.Fatal(err)
		}
		clk.Advance(2 * time.Minute) // so Touch has to write

		unavailable := func(t *testing.T, what string, err error) {
			t.Helper()
			if !errors.Is(err, apperr.StoreUnavailable) || errors.Is(err, apperr.Unauthenticated) {
				t.Errorf("%s = %v, want apperr.StoreUnavailable", what, err)
			}
			if !errors.Is(err, kv.ErrUnavailable) {
				t.Errorf("%s = %v, want the kv.ErrUnavailable cause kept", what, err)
			}
		}
		_, err = s.Current(request(c))
		unavailable(t, "Current", err)
		unavailable(t, "Touch", s.Touch(context.Background(), sess))
		unavailable(t, "Begin", s.Begin(httptest.NewRecorder(), request(), alice))
		unavailable(t, "Begin with a cookie", s.Begin(httptest.NewRecorder(), request(c), alice))
		unavailable(t, "End", s.End(httptest.NewRecorder(), request(c), sess))
		_, err = s.EndUser(context.Background(), alice.Tenant, alice.UserID)
		unavailable(t, "EndUser", err)
		unavailable(t, "SetBasiqUserID", s.SetBasiqUserID(context.Background(), sess, "u-1"))

		// A cookie that is not ours needs no kv at all: it is simply not a session.
		wantUnauthenticated(t, s, &http.Cookie{Name: s.name, Value: "garbage"})
	})
}

func TestForgedCookiesAreUnauthenticated(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(*testing.T) kv.Store) {
		store, clk := newKV(t), newClock()
		s := newTestStore(t, store, clk, nil)
		real := begin(t, s, alice)
		tampered := []byte(real.Value)
		i := len(tampered) / 2
		if tampered[i] == 'A' {
			tampered[i] = 'B'
		} else {
			tampered[i] = 'A'
		}
		other := newTestStore(t, store, clk, func(o *Options) { o.Keys = [][]byte{keyB} })
		foreign := begin(t, other, alice)
		renamed, err := securecookie.EncodeMulti("other", []byte(idOf(t, s, real)), s.codecs...)
		if err != nil {
			t.Fatal(err)
		}
		for name, value := range map[string]string{
			"empty":                       "",
			"garbage":                     "not-a-cookie",
			"one byte changed":            string(tampered),
			"signed with another key":     foreign.Value,
			"signed for another name":     renamed,
			"the raw session id":          idOf(t, s, real),
			"over the length limit":       strings.Repeat("A", 4096),
			"base64 of a pipe-laden body": "fHx8fHx8fHw=",
		} {
			t.Run(name, func(t *testing.T) {
				wantUnauthenticated(t, s, &http.Cookie{Name: s.name, Value: value})
			})
		}
		mustCurrent(t, s, real)
	})
}
