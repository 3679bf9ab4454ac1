package clienttoken

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/basiq-bff/bff/config"
	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/basiq"
	"github.com/basiq-bff/bff/server/internal/basiq/emulator"
	"github.com/basiq-bff/bff/server/internal/clocktest"
	"github.com/basiq-bff/bff/server/internal/kv"
	"github.com/basiq-bff/bff/server/internal/kv/kvtest/each"
	"github.com/basiq-bff/bff/server/internal/store"
	"github.com/basiq-bff/bff/server/internal/tenant"
	"github.com/basiq-bff/bff/server/internal/testenv"
)

// fixture is a service over a real kv store, the emulator and a SQLite user store. The
// emulator and the service share one settable clock, so a test can cross a token's refresh
// boundary without waiting an hour.
type fixture struct {
	clk    *clocktest.Clock
	emu    *emulator.Emulator
	kv     kv.Store
	users  *store.DB
	log    *testenv.Buffer
	tenant *tenant.Tenant
	keys   []string
	opts   Options
}

var testCacheKey = bytes.Repeat([]byte{7}, 32)

func newFixture(t *testing.T, store kv.Store, version string, nkeys int) *fixture {
	t.Helper()
	fx := &fixture{clk: clocktest.New(time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)), kv: store, log: &testenv.Buffer{}}
	fx.emu = emulator.New(emulator.Options{Now: fx.clk.Now})
	srv := httptest.NewServer(fx.emu)
	t.Cleanup(srv.Close)
	ct := config.Tenant{ID: "acme", Name: "Acme", Basiq: config.Basiq{BaseURL: srv.URL, Version: version}}
	for i := range nkeys {
		k := emulator.GenerateKey()
		fx.emu.AddKey(k, emulator.KeyOptions{})
		fx.keys = append(fx.keys, k)
		ct.Basiq.APIKeys = append(ct.Basiq.APIKeys, config.APIKey{ID: "k" + string(rune('1'+i)), Secret: config.NewSecret(k)})
	}
	fx.tenant, _ = tenant.NewSnapshot([]config.Tenant{ct}, []byte("fp")).Get("acme")
	db, err := storeOpen(t)
	if err != nil {
		t.Fatal(err)
	}
	fx.users = db
	// A generous deadline: these tests assert counts, not speed, and CI machines are busy.
	fx.opts = Options{EncryptionKey: testCacheKey, Now: fx.clk.Now, L1TTL: 5 * time.Second, LockLease: time.Second, Deadline: 15 * time.Second}
	return fx
}

func storeOpen(t *testing.T) (*store.DB, error) {
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "bff.db"))
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { db.Close() })
	return db, db.Migrate(context.Background())
}

func (fx *fixture) service(t *testing.T) *Service {
	t.Helper()
	s, err := New(fx.kv, basiq.New(nil, 5*time.Second), fx.users, slog.New(slog.NewTextHandler(fx.log, nil)), fx.opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func mustToken(t *testing.T, s *Service, tn *tenant.Tenant, p Principal) Token {
	t.Helper()
	tok, err := s.ClientToken(context.Background(), tn, p)
	if err != nil {
		t.Fatalf("ClientToken: %v", err)
	}
	return tok
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var alice = Principal{UserID: 1, BasiqUserID: "basiq-user-alice"}

func TestRefreshAhead(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(t *testing.T) kv.Store) {
		fx := newFixture(t, newKV(t), "3.0", 1)
		s := fx.service(t)
		first := mustToken(t, s, fx.tenant, alice)
		if first.Source != SourceUpstream || first.ExpiresIn != 3600 {
			t.Fatalf("first = %+v, want upstream with 3600s", first)
		}

		fx.clk.Advance(10 * time.Minute)
		tok := mustToken(t, s, fx.tenant, alice)
		if tok.AccessToken != first.AccessToken || tok.ExpiresIn != 3000 {
			t.Errorf("after 10m: same token %v, expires_in %d (want the true remaining 3000)", tok.AccessToken == first.AccessToken, tok.ExpiresIn)
		}

		// Past refresh_after: the old token is served at once, one refresh runs behind it.
		fx.clk.Advance(21 * time.Minute)
		tok = mustToken(t, s, fx.tenant, alice)
		if tok.AccessToken != first.AccessToken {
			t.Error("past refresh_after the request waited for a new token")
		}
		waitFor(t, "the background refresh", func() bool {
			tok = mustToken(t, s, fx.tenant, alice)
			return tok.AccessToken != first.AccessToken
		})
		if tok.AccessToken == first.AccessToken || tok.ExpiresIn != 3600 {
			t.Errorf("after the refresh: new token %v, expires_in %d", tok.AccessToken != first.AccessToken, tok.ExpiresIn)
		}
		for range 20 {
			mustToken(t, s, fx.tenant, alice)
		}
		if n := fx.emu.TokenCalls(); n != 2 {
			t.Errorf("/token calls = %d, want 2", n)
		}
	})
}

func TestMinRemainingRefreshesSynchronously(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(t *testing.T) kv.Store) {
		fx := newFixture(t, newKV(t), "3.0", 1)
		fx.opts.RefreshAfter = 55 * time.Minute // keep the background refresh out of the way
		fx.opts.MinRemaining = 4 * time.Minute
		s := fx.service(t)
		first := mustToken(t, s, fx.tenant, alice)
		fx.clk.Advance(57 * time.Minute) // 3 minutes left: below min_remaining
		tok := mustToken(t, s, fx.tenant, alice)
		if tok.AccessToken == first.AccessToken || tok.Source != SourceUpstream {
			t.Errorf("a token with 3m left was handed out (source %s)", tok.Source)
		}
	})
}

func TestStaleWhileBasiqFails(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(t *testing.T) kv.Store) {
		fx := newFixture(t, newKV(t), "3.0", 1)
		fx.opts.Deadline = 500 * time.Millisecond
		s := fx.service(t)
		first := mustToken(t, s, fx.tenant, alice)
		fx.clk.Advance(55 * time.Minute)
		fx.emu.SetFault(emulator.Fault{Status: 503})
		tok := mustToken(t, s, fx.tenant, alice)
		if tok.Source != SourceStale || tok.AccessToken != first.AccessToken || tok.ExpiresIn != 300 {
			t.Errorf("got %+v, want the stale token with 300s left", tok)
		}
		// A cold key has nothing to fall back on: a fast 503 with Retry-After.
		_, err := s.ClientToken(context.Background(), fx.tenant, Principal{UserID: 2, BasiqUserID: "other"})
		var ae *apperr.Error
		if !errors.As(err, &ae) || ae.Kind != apperr.UpstreamUnavailable || ae.RetryAfter <= 0 {
			t.Errorf("cold key during an outage: %v, want upstream_unavailable with a retry delay", err)
		}
	})
}

func TestCacheKeyHoldsEveryMintParameter(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(t *testing.T) kv.Store) {
		fx := newFixture(t, newKV(t), "3.0", 1)
		s := fx.service(t)
		a := mustToken(t, s, fx.tenant, alice)
		b := mustToken(t, s, fx.tenant, Principal{UserID: 2, BasiqUserID: "basiq-user-bob"})
		if a.AccessToken == b.AccessToken {
			t.Fatal("two bound users share a token")
		}
		ia, _ := fx.emu.Inspect(a.AccessToken)
		ib, _ := fx.emu.Inspect(b.AccessToken)
		if ia.UserID != alice.BasiqUserID || ib.UserID != "basiq-user-bob" {
			t.Errorf("bindings: %q, %q", ia.UserID, ib.UserID)
		}
		// Server tokens live under their own key: a server token is never a client token.
		srv, _, err := s.get(context.Background(), fx.tenant, basiq.ScopeServer, "-")
		if err != nil {
			t.Fatal(err)
		}
		if is, _ := fx.emu.Inspect(srv.Token); is.Scope != "SERVER_ACCESS" || srv.Token == a.AccessToken {
			t.Errorf("server token scope %q", is.Scope)
		}
	})
}

// TestCachedValueIsBoundToItsKey: a ciphertext moved to another cache key (another user,
// scope or tenant) does not open, so it is never served there.
func TestCachedValueIsBoundToItsKey(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(t *testing.T) kv.Store) {
		fx := newFixture(t, newKV(t), "3.0", 1)
		fx.opts.L1TTL = 0
		s := fx.service(t)
		a := mustToken(t, s, fx.tenant, alice)
		bob := Principal{UserID: 2, BasiqUserID: "basiq-user-bob"}
		ka := spec{t: fx.tenant, key: fx.tenant.Keys[0], scope: basiq.ScopeClient, binding: alice.BasiqUserID}.cacheKey()
		kb := spec{t: fx.tenant, key: fx.tenant.Keys[0], scope: basiq.ScopeClient, binding: bob.BasiqUserID}.cacheKey()
		raw, err := fx.kv.Get(context.Background(), ka)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte(a.AccessToken)) {
			t.Fatal("the token is stored in clear")
		}
		if err := fx.kv.Set(context.Background(), kb, raw, time.Hour); err != nil {
			t.Fatal(err)
		}
		b := mustToken(t, s, fx.tenant, bob)
		if b.AccessToken == a.AccessToken {
			t.Fatal("alice's token was served to bob from a copied cache value")
		}
		if b.Source != SourceUpstream {
			t.Errorf("source = %s, want upstream", b.Source)
		}
	})
}

// TestOneMintAcrossReplicas: many concurrent cold requests on several services sharing one
// kv make exactly one /token call.
func TestOneMintAcrossReplicas(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(t *testing.T) kv.Store) {
		fx := newFixture(t, newKV(t), "2.0", 1)
		fx.emu.SetLatency(100 * time.Millisecond)
		var replicas []*Service
		for range 3 {
			f2 := *fx
			f2.kv = newKV(t)
			if _, ok := fx.kv.(*kv.Memory); ok {
				f2.kv = fx.kv // one in-process store stands for the shared Redis
			}
			replicas = append(replicas, f2.service(t))
		}
		var wg sync.WaitGroup
		got := make([]string, 300)
		for i := range got {
			wg.Go(func() {
				tok, err := replicas[i%3].ClientToken(context.Background(), fx.tenant, Principal{UserID: int64(i)})
				if err != nil {
					t.Errorf("request %d: %v", i, err)
					return
				}
				got[i] = tok.AccessToken
			})
		}
		wg.Wait()
		if n := fx.emu.TokenCalls(); n != 1 {
			t.Errorf("/token calls = %d, want 1", n)
		}
		for i := range got {
			if got[i] != got[0] {
				t.Fatalf("request %d got another token", i)
			}
		}
	})
}

// TestDeadLockHolder: a lock left by a replica that died is waited out, then another mints.
func TestDeadLockHolder(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(t *testing.T) kv.Store) {
		fx := newFixture(t, newKV(t), "2.0", 1)
		fx.opts.Deadline = 3 * time.Second
		s := fx.service(t)
		ck := spec{t: fx.tenant, key: fx.tenant.Keys[0], scope: basiq.ScopeClient, binding: "-"}.cacheKey()
		if ok, err := fx.kv.SetNX(context.Background(), "lock:"+ck, []byte("dead replica"), 400*time.Millisecond); err != nil || !ok {
			t.Fatal("could not plant the lock", err)
		}
		start := time.Now()
		tok := mustToken(t, s, fx.tenant, Principal{UserID: 1})
		if waited := time.Since(start); waited < 300*time.Millisecond {
			t.Errorf("minted after %v, while another owner held the lock", waited)
		}
		if tok.Source != SourceUpstream || fx.emu.TokenCalls() != 1 {
			t.Errorf("source %s, calls %d", tok.Source, fx.emu.TokenCalls())
		}
	})
}

// TestKeyFallback: a primary key Basiq no longer knows falls back to the next listed key,
// with an alert, and later requests stop trying the dead key first.
func TestKeyFallback(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(t *testing.T) kv.Store) {
		fx := newFixture(t, newKV(t), "2.0", 2)
		fx.emu.RemoveKey(fx.keys[0])
		s := fx.service(t)
		tok := mustToken(t, s, fx.tenant, Principal{UserID: 1})
		if tok.KeyID != "k2" {
			t.Errorf("minted with %s, want the fallback k2", tok.KeyID)
		}
		if info, _ := fx.emu.Inspect(tok.AccessToken); info.Key != fx.keys[1] {
			t.Error("the token was not minted with the second key")
		}
		if !strings.Contains(fx.log.String(), "ALERT") || !strings.Contains(fx.log.String(), "key_id=k1") {
			t.Errorf("no alert naming the rejected key:\n%s", fx.log)
		}
		calls := fx.emu.TokenCalls()
		again := mustToken(t, s, fx.tenant, Principal{UserID: 2})
		if again.AccessToken != tok.AccessToken || fx.emu.TokenCalls() != calls {
			t.Errorf("the next request did not reuse the fallback key's token")
		}
		for _, k := range fx.keys {
			if strings.Contains(fx.log.String(), k) {
				t.Error("an API key appears in the log")
			}
		}
	})
}

func TestBasiqUserCreatedOnce(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(t *testing.T) kv.Store) {
		fx := newFixture(t, newKV(t), "3.0", 1)
		u, err := fx.users.CreateUser(context.Background(), "acme", "jo@acme.test", "x")
		if err != nil {
			t.Fatal(err)
		}
		fx.emu.SetLatency(30 * time.Millisecond)
		s1, s2 := fx.service(t), fx.service(t)
		var wg sync.WaitGroup
		ids := make([]string, 40)
		for i := range ids {
			wg.Go(func() {
				s := s1
				if i%2 == 1 {
					s = s2
				}
				id, err := s.BasiqUser(context.Background(), fx.tenant, u.ID, u.Email)
				if err != nil {
					t.Errorf("BasiqUser: %v", err)
				}
				ids[i] = id
			})
		}
		wg.Wait()
		if n := fx.emu.UsersCreated(); n != 1 {
			t.Errorf("Basiq users created = %d, want 1", n)
		}
		stored, _ := fx.users.UserByID(context.Background(), u.ID)
		for i := range ids {
			if ids[i] != stored.BasiqUserID {
				t.Fatalf("caller %d got %q, stored %q", i, ids[i], stored.BasiqUserID)
			}
		}
	})
}

// TestExpiredServerTokenIsRefreshedOnce: Basiq calls the cached SERVER_ACCESS token expired
// (403 access-denied) although the BFF still trusts it: the token is dropped, a fresh one
// minted, and the call retried once.
func TestExpiredServerTokenIsRefreshedOnce(t *testing.T) {
	each.Store(t, func(t *testing.T, newKV func(t *testing.T) kv.Store) {
		fx := newFixture(t, newKV(t), "3.0", 1)
		bffClock := clocktest.New(fx.clk.Now()) // the BFF's clock; fx.clk stays Basiq's
		fx.opts.Now = bffClock.Now
		s := fx.service(t)
		ctx := context.Background()
		u1, err := fx.users.CreateUser(ctx, "acme", "one@acme.test", "x")
		if err != nil {
			t.Fatal(err)
		}
		u2, err := fx.users.CreateUser(ctx, "acme", "two@acme.test", "x")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.BasiqUser(ctx, fx.tenant, u1.ID, u1.Email); err != nil {
			t.Fatal(err)
		}
		fx.clk.Advance(2 * time.Hour) // Basiq's clock: the cached server token has expired there
		if _, err := s.BasiqUser(ctx, fx.tenant, u2.ID, u2.Email); err != nil {
			t.Fatalf("with an expired server token: %v", err)
		}
		if n := fx.emu.Minted(fx.keys[0], "SERVER_ACCESS", ""); n != 2 {
			t.Errorf("server tokens minted = %d, want 2 (the first, and one after Basiq refused it)", n)
		}
		if n := fx.emu.UsersCreated(); n != 2 {
			t.Errorf("Basiq users created = %d, want 2", n)
		}
	})
}
