package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/basiq-bff/bff/config"
	"github.com/basiq-bff/bff/server/internal/clienttoken"
	"github.com/basiq-bff/bff/server/internal/httpapi"
	"github.com/basiq-bff/bff/server/internal/metrics"
	"github.com/basiq-bff/bff/server/internal/tenant"
)

// reloader applies configuration changes while the server runs: on SIGHUP and when the config
// file or a secret file it references changes. What it applies: tenants (added, removed,
// changed, keys rotated) and the allowed origins. Everything else (listeners, database,
// Redis, session and cache keys, tuning) takes effect on restart, and a reload that changes
// it says so.
//
// The rules, in order:
//  1. The new file must load and validate whole; otherwise nothing changes.
//  2. Each tenant whose primary key is new is proven with one SERVER_ACCESS mint. A tenant
//     whose new primary Basiq refuses (or cannot be reached to prove) keeps its whole previous
//     configuration, and a new tenant whose key fails is not added; the other tenants'
//     changes apply.
//  3. The new snapshot is swapped in atomically; requests in flight finish on the old one.
//  4. Tokens minted with keys no longer listed, or marked revoked, are purged from kv and from
//     every replica's L1.
type reloader struct {
	path    string
	getenv  func(string) string
	log     *slog.Logger
	m       *metrics.Metrics
	tenants *tenant.Registry
	tokens  *clienttoken.Service
	http    *httpapi.Server
	fpKey   []byte

	mu  sync.Mutex // one reload at a time
	cfg *config.Config
	// purgedSeries are keys removed by the last reload whose purge counters are still shown.
	purgedSeries []tenant.KeyRef
}

// files is the watch set: the config file and the secret files the current config references.
func (r *reloader) files() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cfg.Files()
}

// run reloads on SIGHUP and on file changes until ctx is done.
func (r *reloader) run(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	changed := make(chan struct{}, 1)
	go func() {
		err := config.Watch(ctx, r.files, 300*time.Millisecond, func() {
			select {
			case changed <- struct{}{}:
			default:
			}
		})
		if err != nil {
			r.log.Error("config file watch stopped; SIGHUP still reloads", "err", err)
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			r.reload(ctx, "sighup")
		case <-changed:
			r.reload(ctx, "file")
		}
	}
}

// reload applies the configuration file as it is now.
func (r *reloader) reload(ctx context.Context, trigger string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	next, err := config.Load(r.path, r.getenv, checkRedisURL)
	if err != nil {
		r.m.ConfigReload("invalid")
		r.log.Error("config reload rejected: the new configuration is invalid; the previous one stays in force",
			"trigger", trigger, "err", err)
		return
	}
	for _, what := range restartOnly(r.cfg, next) {
		r.log.Warn("config reload: this change takes effect on restart", "key", what)
	}

	old := r.tenants.Load()
	proposed := tenant.NewSnapshot(next.Tenants, r.fpKey)
	var final []*tenant.Tenant
	var kept []string
	for _, t := range proposed.List() {
		prev, existed := old.Get(t.ID)
		if existed && samePrimary(prev, t) {
			final = append(final, t)
			continue
		}
		if err := r.tokens.ProbeKey(ctx, t); err != nil {
			primary, _ := t.Primary()
			kept = append(kept, t.ID)
			r.log.Error("ALERT config reload: Basiq did not accept the new primary key; the tenant keeps its previous configuration",
				"alert", true, "trigger", trigger, "tenant", t.ID, "key_id", primary.ID, "err", err)
			if existed {
				final = append(final, prev)
			}
			continue
		}
		final = append(final, t)
	}
	snap := tenant.FromTenants(final)
	r.tenants.Swap(snap)
	r.http.ApplyOrigins(next)
	r.cfg = next

	changes := tenant.Diff(old, snap)
	purged := r.purge(ctx, changes.KeysRemoved, snap)
	r.forgetSeries(changes, snap)
	result := "applied"
	if len(kept) > 0 {
		result = "rejected"
	}
	r.m.ConfigReload(result)
	r.log.Info("config reloaded", "audit", true, "trigger", trigger, "result", result,
		"tenants_added", changes.TenantsAdded, "tenants_removed", changes.TenantsRemoved,
		"tenants_changed", changes.TenantsChanged, "tenants_kept_previous", kept,
		"keys_added", keyIDs(changes.KeysAdded), "keys_removed", keyIDs(changes.KeysRemoved),
		"keys_revoked", keyIDs(changes.KeysRevoked), "primary_keys", keyIDs(changes.Promoted),
		"tokens_purged", purged)
}

// forgetSeries deletes the metric series of removed tenants and of key ids no longer listed.
// A removed key's bff_tokens_purged_total series goes one reload later, so the purge just
// made stays visible to the scrapes in between.
func (r *reloader) forgetSeries(changes tenant.Changes, snap *tenant.Snapshot) {
	listed := func(k tenant.KeyRef) bool {
		t, ok := snap.Get(k.Tenant)
		if !ok {
			return false
		}
		return slices.ContainsFunc(t.Keys, func(x tenant.Key) bool { return x.ID == k.KeyID }) ||
			slices.ContainsFunc(t.Revoked, func(x tenant.Key) bool { return x.ID == k.KeyID })
	}
	for _, k := range r.purgedSeries {
		if !listed(k) {
			r.m.ForgetKey(k.Tenant, k.KeyID, true)
		}
	}
	r.purgedSeries = r.purgedSeries[:0]
	for _, k := range changes.KeysRemoved {
		if !listed(k) {
			r.m.ForgetKey(k.Tenant, k.KeyID, false)
			r.purgedSeries = append(r.purgedSeries, k)
		}
	}
	for _, id := range changes.TenantsRemoved {
		r.m.ForgetTenant(id)
		r.tokens.ForgetTenant(id)
	}
}

// purge deletes the tokens of removed keys and of every key marked revoked (idempotent, so
// revoked keys are purged on every reload and at start-up).
func (r *reloader) purge(ctx context.Context, removed []tenant.KeyRef, snap *tenant.Snapshot) int {
	targets := slices.Clone(removed)
	for _, t := range snap.List() {
		for _, k := range t.Revoked {
			targets = append(targets, tenant.KeyRef{Tenant: t.ID, KeyID: k.ID, Fingerprint: k.Fingerprint})
		}
	}
	total := 0
	for _, k := range targets {
		n, err := r.tokens.Purge(ctx, k.Tenant, tenant.Key{ID: k.KeyID, Fingerprint: k.Fingerprint})
		if err != nil {
			r.log.Error("could not purge the tokens of a removed key; they expire by themselves", "tenant", k.Tenant, "key_id", k.KeyID, "err", err)
		}
		total += n
	}
	return total
}

func samePrimary(a, b *tenant.Tenant) bool {
	pa, okA := a.Primary()
	pb, okB := b.Primary()
	return okA == okB && pa.ID == pb.ID && pa.Fingerprint == pb.Fingerprint &&
		a.BaseURL == b.BaseURL && a.Version == b.Version
}

func keyIDs(refs []tenant.KeyRef) []string {
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		out = append(out, r.Tenant+"/"+r.KeyID)
	}
	return out
}

// restartOnly lists the changed keys that a reload does not apply.
func restartOnly(a, b *config.Config) []string {
	var out []string
	check := func(name string, changed bool) {
		if changed {
			out = append(out, name)
		}
	}
	check("listen", a.Listen != b.Listen)
	check("admin_listen", a.AdminListen != b.AdminListen)
	check("database_url", a.DatabaseURL != b.DatabaseURL)
	check("redis_url", a.RedisURL != b.RedisURL)
	check("redis_prefix", a.RedisPrefix != b.RedisPrefix)
	check("log", a.Log != b.Log)
	check("session", !sameSessionConfig(a.Session, b.Session))
	check("cache.encryption_key", a.Cache.EncryptionKey.Reveal() != b.Cache.EncryptionKey.Reveal())
	check("trusted_proxies", !slices.Equal(a.TrustedProxies, b.TrustedProxies))
	check("login", a.Login != b.Login)
	check("client_token", a.ClientToken != b.ClientToken)
	check("shutdown", a.Shutdown != b.Shutdown)
	return out
}

func sameSessionConfig(a, b config.Session) bool {
	if a.IsSecure() != b.IsSecure() || a.IdleTimeout != b.IdleTimeout || a.AbsoluteTimeout != b.AbsoluteTimeout ||
		a.CacheTTL != b.CacheTTL || len(a.Keys) != len(b.Keys) {
		return false
	}
	for i := range a.Keys {
		if a.Keys[i].Reveal() != b.Keys[i].Reveal() {
			return false
		}
	}
	return true
}
