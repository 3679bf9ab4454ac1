package main

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/basiq-bff/bff/server/internal/basiq/emulator"
	"github.com/basiq-bff/bff/server/internal/kv/kvtest"
)

// keyFile writes an API key to a secret file in the stack's directory and returns the YAML
// reference for the beta tenant's key list.
func (s *stack) keyFile(id, key string, revoked bool) string {
	s.t.Helper()
	p := filepath.Join(s.dir, id+".key")
	if err := os.WriteFile(p, []byte(key+"\n"), 0o600); err != nil {
		s.t.Fatal(err)
	}
	ref := "{id: " + id + ", file: " + p
	if revoked {
		ref += ", revoked: true"
	}
	return ref + "}"
}

// waitReload waits until every replica has counted n reloads with the given result.
func waitReload(t *testing.T, rs []*replica, result string, n float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		done := true
		for _, r := range rs {
			done = done && counter(t, r, "bff_config_reloads_total", `result="`+result+`"`) >= n
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas did not report %v %q reloads", n, result)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rotationStack is a stack whose beta tenant uses file-held keys A (and B, C on demand).
func rotationStack(t *testing.T, extra string) (*stack, map[string]string) {
	t.Helper()
	s := newStack(t, stackOptions{extra: extra})
	keys := map[string]string{"a": emulator.GenerateKey(), "b": emulator.GenerateKey(), "unknown": emulator.GenerateKey()}
	s.emu.AddKey(keys["a"], emulator.KeyOptions{})
	s.emu.AddKey(keys["b"], emulator.KeyOptions{})
	s.betaKeys = []string{s.keyFile("key-a", keys["a"], false)}
	s.writeConfig(s.extra)
	return s, keys
}

// TestRotationUnderLoad: 50 clients load two replicas while the config file is rewritten to
// promote key B. No request fails, and every token minted after the switch comes from B.
func TestRotationUnderLoad(t *testing.T) {
	s, keys := rotationStack(t, "client_token:\n  deadline: 10s\n")
	rs := []*replica{s.start(), s.start()}
	users := loginMany(t, s, rs, "beta", 5)
	var clients []*client // 50: each user five times on each replica
	for _, u := range users {
		for range 5 {
			clients = append(clients, sameSession(t, u, rs[0]), sameSession(t, u, rs[1]))
		}
	}

	var failures, requests atomic.Int64
	var mu sync.Mutex
	var lastTokens []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				tok, resp := c.token()
				requests.Add(1)
				if resp.status != 200 {
					failures.Add(1)
					t.Errorf("%d %s", resp.status, resp.body)
					continue
				}
				mu.Lock()
				lastTokens = append(lastTokens, tok.AccessToken)
				mu.Unlock()
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	s.betaKeys = []string{s.keyFile("key-b", keys["b"], false), s.keyFile("key-a", keys["a"], false)}
	s.writeConfig(s.extra)
	waitReload(t, rs, "applied", 1)
	mintedWithA := s.emu.MintedByKey(keys["a"])
	mu.Lock()
	lastTokens = nil
	mu.Unlock()
	time.Sleep(700 * time.Millisecond)
	close(stop)
	wg.Wait()

	if n := failures.Load(); n != 0 {
		t.Errorf("%d of %d requests failed during the rotation", n, requests.Load())
	}
	if got := s.emu.MintedByKey(keys["a"]); got != mintedWithA {
		t.Errorf("%d tokens were minted with key A after the switch", got-mintedWithA)
	}
	if n := s.emu.Minted(keys["b"], "CLIENT_ACCESS", ""); n != 1 {
		t.Errorf("client tokens minted with B = %d, want exactly 1 for the fleet", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lastTokens) == 0 {
		t.Fatal("no requests after the switch")
	}
	last := lastTokens[len(lastTokens)-1]
	if info, _ := s.emu.Inspect(last); info.Key != keys["b"] {
		t.Error("after the switch the fleet still serves a token minted with A")
	}
	t.Logf("%d requests, 0 failed; rotation applied on both replicas", requests.Load())
}

// TestReloadRejectsBadChanges: a new primary key Basiq refuses, or a file that does not
// validate, changes nothing.
func TestReloadRejectsBadChanges(t *testing.T) {
	s, keys := rotationStack(t, "")
	rs := s.replicas(2)
	users := loginMany(t, s, rs, "beta", 1)
	before := users[0].mustToken()
	mintedWithA := s.emu.MintedByKey(keys["a"])

	s.betaKeys = []string{s.keyFile("key-x", keys["unknown"], false), s.keyFile("key-a", keys["a"], false)}
	s.writeConfig(s.extra)
	waitReload(t, rs, "rejected", 1)
	for _, r := range rs {
		if got := sameSession(t, users[0], r).mustToken(); got.AccessToken != before.AccessToken {
			t.Error("a rejected key changed the token served")
		}
	}
	for _, r := range rs {
		if !strings.Contains(r.logs.String(), "did not accept the new primary key") {
			t.Error("the rejection was not logged")
		}
	}

	if err := os.WriteFile(s.cfgPath, []byte("tenants: [\n  this is not yaml"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitReload(t, rs, "invalid", 1)
	for _, r := range rs {
		if got := sameSession(t, users[0], r).mustToken(); got.AccessToken != before.AccessToken {
			t.Error("an invalid file changed the token served")
		}
	}
	if n := s.emu.MintedByKey(keys["a"]); n != mintedWithA {
		t.Errorf("%d more mints with A after the rejected reloads", n-mintedWithA)
	}
}

// TestRemovedKeyIsPurgedEverywhere: removing key A deletes its tokens from Redis and from both
// replicas' in-process caches within a second; a key marked revoked is purged while listed.
func TestRemovedKeyIsPurgedEverywhere(t *testing.T) {
	s, keys := rotationStack(t, "client_token:\n  l1_ttl: 1m\n")
	rs := []*replica{s.start(), s.start()}
	users := loginMany(t, s, rs, "beta", 1)
	for _, r := range rs {
		sameSession(t, users[0], r).mustToken() // both L1s hold A's token
	}
	aTokens := func() []string { return kvtest.Keys(t, s.redisURL, s.prefix+"tok:beta:key-a:*") }
	if len(aTokens()) == 0 {
		t.Fatal("no token of key A in Redis")
	}

	s.betaKeys = []string{s.keyFile("key-b", keys["b"], false)}
	start := time.Now()
	s.writeConfig(s.extra)
	waitReload(t, rs, "applied", 1)
	for _, r := range rs {
		tok := sameSession(t, users[0], r).mustToken()
		if info, _ := s.emu.Inspect(tok.AccessToken); info.Key != keys["b"] {
			t.Error("a replica served a token of the removed key")
		}
	}
	if left := aTokens(); len(left) != 0 {
		t.Errorf("tokens of the removed key left in Redis: %v", left)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("the purge took %v, want within 1s", took)
	}

	// Emergency path: B is listed but revoked; A comes back as primary.
	s.betaKeys = []string{s.keyFile("key-a", keys["a"], false), s.keyFile("key-b", keys["b"], true)}
	s.writeConfig(s.extra)
	waitReload(t, rs, "applied", 2)
	if left := kvtest.Keys(t, s.redisURL, s.prefix+"tok:beta:key-b:*"); len(left) != 0 {
		t.Errorf("tokens of the revoked key left in Redis: %v", left)
	}
	for _, r := range rs {
		tok := sameSession(t, users[0], r).mustToken()
		if info, _ := s.emu.Inspect(tok.AccessToken); info.Key != keys["a"] {
			t.Error("a replica served a token of the revoked key")
		}
	}
}

// TestReloadBySIGHUP: a SIGHUP reloads at once, before the file watch's debounce, and a
// tenant removed from the config loses its sessions.
func TestReloadBySIGHUP(t *testing.T) {
	s, keys := rotationStack(t, "")
	r := s.start()
	s.addUser("acme", "mo@acme.test", testPassword)
	mo := newClient(t, r.url)
	mo.mustLogin("acme", "mo@acme.test", testPassword)
	mo.mustToken()

	s.withoutAcme = true
	s.betaKeys = []string{s.keyFile("key-b", keys["b"], false)}
	s.writeConfig(s.extra)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitReload(t, []*replica{r}, "applied", 1)
	logs := r.logs.String()
	first := logs[strings.Index(logs, "config reloaded"):]
	if !strings.Contains(first[:strings.Index(first, "\n")], `"trigger":"sighup"`) {
		t.Errorf("the first reload was not the SIGHUP one: %s", first[:strings.Index(first, "\n")])
	}
	if _, resp := mo.token(); resp.status != 401 {
		t.Errorf("a session of a removed tenant got %d, want 401", resp.status)
	}
	if !strings.Contains(logs, `"tenants_removed":["acme"]`) {
		t.Errorf("the audit event does not name the removed tenant:\n%s", logs)
	}
	for _, k := range keys {
		if strings.Contains(logs, k) {
			t.Error("key material in the logs")
		}
	}
}

// TestSecretFileChangeReloads: replacing only the key file's content (same key id, as a
// secret manager does) is seen by the file watch, proven, and applied; tokens of the old
// material are purged.
func TestSecretFileChangeReloads(t *testing.T) {
	s, keys := rotationStack(t, "")
	r := s.start()
	users := loginMany(t, s, []*replica{r}, "beta", 1)
	old := users[0].mustToken()

	tmp := filepath.Join(s.dir, "key-a.key.new")
	if err := os.WriteFile(tmp, []byte(keys["b"]), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, "key-a.key")); err != nil {
		t.Fatal(err)
	}
	waitReload(t, []*replica{r}, "applied", 1)
	tok := users[0].mustToken()
	if info, _ := s.emu.Inspect(tok.AccessToken); tok.AccessToken == old.AccessToken || info.Key != keys["b"] {
		t.Error("the new key material is not in use")
	}
	if !strings.Contains(r.logs.String(), `"trigger":"file"`) {
		t.Error("the reload was not triggered by the file watch")
	}
}
