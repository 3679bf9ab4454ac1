package clienttoken

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/kv"
	"github.com/basiq-bff/bff/server/internal/kv/kvtest/each"
)

// TestConsentLaunchTokenLife: a Consent UI launch never carries a token with less than
// LaunchMinLife left. A cached token that young enough is reused; an older one is replaced by
// a fresh mint, which then serves /client-token too.
func TestConsentLaunchTokenLife(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(t *testing.T) kv.Store) {
		fx := newFixture(t, newKV(t), "3.0", 1)
		s := fx.service(t)
		ctx := context.Background()
		first := mustToken(t, s, fx.tenant, alice)

		fx.clk.Advance(5 * time.Minute) // 55 minutes left: good enough for a launch
		l, err := s.ConsentLaunch(ctx, fx.tenant, alice, false)
		if err != nil {
			t.Fatal(err)
		}
		if l.Token.AccessToken != first.AccessToken || l.Token.ExpiresIn < int64(LaunchMinLife/time.Second) {
			t.Errorf("launch with 55 min left: same token %v, expires in %ds", l.Token.AccessToken == first.AccessToken, l.Token.ExpiresIn)
		}

		fx.clk.Advance(15 * time.Minute) // 40 minutes left: fine for /client-token, not for a launch
		if tok := mustToken(t, s, fx.tenant, alice); tok.AccessToken != first.AccessToken {
			t.Fatal("/client-token replaced a token with 40 minutes left")
		}
		l, err = s.ConsentLaunch(ctx, fx.tenant, alice, false)
		if err != nil {
			t.Fatal(err)
		}
		if l.Token.AccessToken == first.AccessToken || l.Token.ExpiresIn < int64(LaunchMinLife/time.Second) {
			t.Errorf("launch with 40 min left: reused %v, expires in %ds", l.Token.AccessToken == first.AccessToken, l.Token.ExpiresIn)
		}
		if n := fx.emu.Minted(fx.keys[0], "CLIENT_ACCESS", alice.BasiqUserID); n != 2 {
			t.Errorf("client tokens minted = %d, want 2", n)
		}
		if tok := mustToken(t, s, fx.tenant, alice); tok.AccessToken != l.Token.AccessToken {
			t.Error("/client-token does not serve the fresher launch token")
		}
	})
}

// TestConsentLaunchReadsConsents: with no action chosen, the person's consents decide, read
// once a minute at most.
func TestConsentLaunchReadsConsents(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(t *testing.T) kv.Store) {
		fx := newFixture(t, newKV(t), "3.0", 1)
		s := fx.service(t)
		ctx := context.Background()
		u, err := fx.users.CreateUser(ctx, "acme", "jo@acme.test", "x")
		if err != nil {
			t.Fatal(err)
		}
		id, err := s.BasiqUser(ctx, fx.tenant, u.ID, u.Email)
		if err != nil {
			t.Fatal(err)
		}
		p := Principal{UserID: u.ID, BasiqUserID: id, Email: u.Email}
		if l, err := s.ConsentLaunch(ctx, fx.tenant, p, true); err != nil || l.ActiveConsent {
			t.Fatalf("no consent yet: %+v, %v", l, err)
		}
		fx.emu.AddConsent(id)
		if l, _ := s.ConsentLaunch(ctx, fx.tenant, p, true); l.ActiveConsent {
			t.Error("the consent lookup was not cached")
		}
		fx.clk.Advance(consentTTL + time.Second)
		if l, err := s.ConsentLaunch(ctx, fx.tenant, p, true); err != nil || !l.ActiveConsent {
			t.Errorf("after the cache: %+v, %v", l, err)
		}
	})
}

// TestStaleBasiqUserRecreatedOnce: Basiq forgot the person's user (deleted). The next mint
// is refused, the user re-created exactly once however many requests race, and a second
// loss within the hour is refused instead of re-created again.
func TestStaleBasiqUserRecreatedOnce(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(t *testing.T) kv.Store) {
		fx := newFixture(t, newKV(t), "3.0", 1)
		s1, s2 := fx.service(t), fx.service(t)
		ctx := context.Background()
		u, err := fx.users.CreateUser(ctx, "acme", "jo@acme.test", "x")
		if err != nil {
			t.Fatal(err)
		}
		stale, err := s1.BasiqUser(ctx, fx.tenant, u.ID, u.Email)
		if err != nil {
			t.Fatal(err)
		}
		p := Principal{UserID: u.ID, BasiqUserID: stale, Email: u.Email}
		mustToken(t, s1, fx.tenant, p)
		fx.emu.DeleteUser(fx.emu.ApplicationOf(fx.keys[0]), stale)
		fx.clk.Advance(51 * time.Minute) // the cached token is past min_remaining: the next request mints

		toks := make([]Token, 10)
		errs := make([]error, len(toks))
		done := make(chan int)
		for i := range toks {
			go func() {
				s := s1
				if i%2 == 1 {
					s = s2
				}
				toks[i], errs[i] = s.ClientToken(ctx, fx.tenant, p)
				done <- i
			}()
		}
		for range toks {
			<-done
		}
		stored, _ := fx.users.UserByID(ctx, u.ID)
		for i := range toks {
			if errs[i] != nil {
				t.Fatalf("request %d: %v", i, errs[i])
			}
			if toks[i].BasiqUserID != stored.BasiqUserID || stored.BasiqUserID == stale {
				t.Fatalf("request %d bound to %q; stored %q, stale %q", i, toks[i].BasiqUserID, stored.BasiqUserID, stale)
			}
		}
		if n := fx.emu.UsersCreated(); n != 2 {
			t.Errorf("Basiq users created = %d, want 2 (the first and one replacement)", n)
		}
		if !strings.Contains(fx.log.String(), "basiq user re-created") {
			t.Error("no audit event for the re-creation")
		}

		// Lost again within the hour: no third user.
		fresh := stored.BasiqUserID
		fx.emu.DeleteUser(fx.emu.ApplicationOf(fx.keys[0]), fresh)
		fx.clk.Advance(51 * time.Minute)
		_, err = s1.ClientToken(ctx, fx.tenant, Principal{UserID: u.ID, BasiqUserID: fresh, Email: u.Email})
		if !errors.Is(err, apperr.UpstreamRejected) {
			t.Errorf("second loss within the hour: %v, want upstream_rejected", err)
		}
		if n := fx.emu.UsersCreated(); n != 2 {
			t.Errorf("Basiq users created = %d after a second loss, want still 2", n)
		}
	})
}
