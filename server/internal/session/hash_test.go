package session

import (
	"testing"

	"github.com/basiq-bff/bff/server/internal/kv"
	"github.com/basiq-bff/bff/server/internal/kv/kvtest/each"
)

// TestCurrentHash checks that a session from Current carries its id's hash, both when the
// cookie is verified and when it comes from the verified-cookie cache.
func TestCurrentHash(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(*testing.T) kv.Store) {
		s := newTestStore(t, newKV(t), newClock(), nil)
		c := begin(t, s, alice)
		for _, name := range []string{"verified", "cached"} {
			t.Run(name, func(t *testing.T) {
				sess, err := s.Current(request(c))
				if err != nil {
					t.Fatal(err)
				}
				if want := HashID(idOf(t, s, c)); sess.Hash != want || sess.Hash == "" {
					t.Errorf("Hash = %q, want %q", sess.Hash, want)
				}
			})
		}
	})
}
