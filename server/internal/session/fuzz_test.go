package session

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/securecookie"

	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/kv"
)

// FuzzSessionCookie feeds arbitrary cookie values to Current: it must never panic, and the
// answer is either the one live session (for its own cookie) or apperr.Unauthenticated.
func FuzzSessionCookie(f *testing.F) {
	store := kv.NewMemory(nil)
	f.Cleanup(func() { store.Close() })
	clk := newClock()
	s, err := NewStore(store, Options{Keys: [][]byte{keyA, keyB}, IdleTimeout: idle, AbsoluteTimeout: absolute, Now: clk.Now})
	if err != nil {
		f.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if err := s.Begin(rec, httptest.NewRequest("GET", "/", nil), alice); err != nil {
		f.Fatal(err)
	}
	live := rec.Result().Cookies()[0].Value
	var liveID []byte
	if err := securecookie.DecodeMulti(s.name, live, &liveID, s.codecs...); err != nil {
		f.Fatal(err)
	}
	signedUnknown, _ := securecookie.EncodeMulti(s.name, []byte("no-such-session"), s.codecs...)
	signedEmpty, _ := securecookie.EncodeMulti(s.name, []byte{}, s.codecs...)

	for _, seed := range []string{
		"", "x", live, live + "=", strings.ToUpper(live), live[:len(live)/2], signedUnknown, signedEmpty,
		string(liveID), "MTIzfGFiY3w=", "fHw=", "||", "%00", "\"quoted\"", strings.Repeat("A", 600),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		r := httptest.NewRequest("GET", "/client-token", nil)
		// The raw header, not AddCookie: AddCookie would clean the value first.
		r.Header.Set("Cookie", s.name+"="+value)
		sess, err := s.Current(r)
		switch {
		case err == nil:
			if sess == nil || sess.ID != string(liveID) || sess.Data.UserID != alice.UserID || sess.Data.Tenant != alice.Tenant {
				t.Fatalf("cookie %q opened session %+v", value, sess)
			}
		case errors.Is(err, apperr.Unauthenticated) && !errors.Is(err, apperr.StoreUnavailable):
			if sess != nil {
				t.Fatalf("unauthenticated with a session: %+v", sess)
			}
		default:
			t.Fatalf("cookie %q: Current = %v, want a session or apperr.Unauthenticated", value, err)
		}
	})
}
