// Package tenant holds the immutable snapshot of configured tenants and their Basiq keys, and
// swaps it atomically on reload: a request keeps the snapshot it started with. It computes key
// fingerprints (a keyed hash, never the key) that go into token cache keys. It imports config.
package tenant

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"sync/atomic"

	"github.com/basiq-bff/bff/config"
)

// Key is one usable Basiq API key of a tenant.
type Key struct {
	ID string
	// Fingerprint identifies the key material together with the base URL and API version it
	// mints for. It is safe to log and to put in Redis keys.
	Fingerprint string
	Secret      config.Secret
}

// Tenant is one customer organisation, as configured. Values are never mutated after
// NewSnapshot returns them.
type Tenant struct {
	ID         string
	Name       string
	BaseURL    string
	Version    string
	ConsentURL string
	// Keys are the listed, non-revoked keys in config order: Keys[0] is the primary.
	Keys []Key
	// Revoked are the ids and fingerprints of keys listed with revoked: true.
	Revoked []Key
	// PasswordLogin is whether people may sign in with a local password.
	PasswordLogin bool
	// OIDC is the tenant's OpenID Connect provider, nil when it has none.
	OIDC *config.OIDC
}

// BindsUser reports whether CLIENT_ACCESS tokens must carry the person's Basiq user id: API
// 3.0 requires it; 2.x tenants share one unbound token.
func (t *Tenant) BindsUser() bool { return t.Version == "3.0" }

// Snapshot is an immutable set of tenants.
type Snapshot struct {
	byID  map[string]*Tenant
	order []*Tenant
}

// NewSnapshot builds a snapshot from validated configuration. fpKey keys the fingerprint
// hash; every replica must use the same one (it is derived from the cache encryption key).
func NewSnapshot(tenants []config.Tenant, fpKey []byte) *Snapshot {
	s := &Snapshot{byID: make(map[string]*Tenant, len(tenants))}
	for _, ct := range tenants {
		t := &Tenant{
			ID:         ct.ID,
			Name:       ct.Name,
			BaseURL:    ct.Basiq.BaseURL,
			Version:    ct.Basiq.Version,
			ConsentURL: ct.Basiq.ConsentURL,

			PasswordLogin: ct.Login.PasswordAllowed(),
			OIDC:          ct.Login.OIDC,
		}
		for _, k := range ct.Basiq.APIKeys {
			key := Key{ID: k.ID, Secret: k.Secret, Fingerprint: Fingerprint(fpKey, t.BaseURL, t.Version, k.Secret.Reveal())}
			if k.Revoked {
				t.Revoked = append(t.Revoked, key)
			} else {
				t.Keys = append(t.Keys, key)
			}
		}
		s.byID[t.ID] = t
		s.order = append(s.order, t)
	}
	return s
}

// Get returns the tenant with the given id.
func (s *Snapshot) Get(id string) (*Tenant, bool) {
	t, ok := s.byID[id]
	return t, ok
}

// List returns the tenants in config order. The slice must not be modified.
func (s *Snapshot) List() []*Tenant { return s.order }

// Fingerprint is the keyed hash of everything a mint depends on besides tenant, scope and
// user: the key material, the Basiq base URL and the API version. Changing any of them
// changes the token cache key, so a token is never served for parameters it was not minted
// with.
func Fingerprint(fpKey []byte, baseURL, version, apiKey string) string {
	m := hmac.New(sha256.New, fpKey)
	m.Write([]byte(baseURL))
	m.Write([]byte{0})
	m.Write([]byte(version))
	m.Write([]byte{0})
	m.Write([]byte(apiKey))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// Registry holds the current snapshot. Load is a single atomic read, cheap on the hot path.
type Registry struct{ cur atomic.Pointer[Snapshot] }

// NewRegistry returns a registry holding s.
func NewRegistry(s *Snapshot) *Registry {
	r := &Registry{}
	r.cur.Store(s)
	return r
}

// Load returns the current snapshot.
func (r *Registry) Load() *Snapshot { return r.cur.Load() }

// Swap installs s and returns the snapshot it replaced.
func (r *Registry) Swap(s *Snapshot) *Snapshot { return r.cur.Swap(s) }

// FromTenants builds a snapshot from tenants taken from other snapshots (a reload mixes new
// tenants with ones kept from the previous configuration).
func FromTenants(ts []*Tenant) *Snapshot {
	s := &Snapshot{byID: make(map[string]*Tenant, len(ts)), order: ts}
	for _, t := range ts {
		s.byID[t.ID] = t
	}
	return s
}

// Primary returns the key tokens are minted with, if any.
func (t *Tenant) Primary() (Key, bool) {
	if len(t.Keys) == 0 {
		return Key{}, false
	}
	return t.Keys[0], true
}

// KeyRef names a key without its material: safe for logs and audit events.
type KeyRef struct {
	Tenant      string `json:"tenant"`
	KeyID       string `json:"key_id"`
	Fingerprint string `json:"-"`
}

// Changes is what a new snapshot changes, by id only.
type Changes struct {
	TenantsAdded   []string `json:"tenants_added,omitempty"`
	TenantsRemoved []string `json:"tenants_removed,omitempty"`
	TenantsChanged []string `json:"tenants_changed,omitempty"`
	KeysAdded      []KeyRef `json:"keys_added,omitempty"`
	// KeysRemoved are keys no longer listed at all (or whose material changed).
	KeysRemoved []KeyRef `json:"keys_removed,omitempty"`
	KeysRevoked []KeyRef `json:"keys_revoked,omitempty"`
	// Promoted are tenants whose primary key changed, with the new primary.
	Promoted []KeyRef `json:"promoted,omitempty"`
}

// Diff compares two snapshots. A key is identified by its id and fingerprint, so new material
// under an old id counts as one key removed and one added.
func Diff(old, cur *Snapshot) Changes {
	var c Changes
	for _, t := range cur.List() {
		o, existed := old.Get(t.ID)
		if !existed {
			c.TenantsAdded = append(c.TenantsAdded, t.ID)
		} else if !sameTenant(o, t) {
			c.TenantsChanged = append(c.TenantsChanged, t.ID)
		}
		c.diffKeys(o, t, existed)
	}
	for _, o := range old.List() {
		if _, ok := cur.Get(o.ID); !ok {
			c.TenantsRemoved = append(c.TenantsRemoved, o.ID)
			for r := range listedKeys(o) {
				c.KeysRemoved = append(c.KeysRemoved, r)
			}
		}
	}
	return c
}

// diffKeys adds the key changes of one tenant still configured (o is nil when it is new).
func (c *Changes) diffKeys(o, t *Tenant, existed bool) {
	before, after := listedKeys(o), listedKeys(t)
	for _, k := range t.Keys {
		if _, ok := before[keyRef(t, k)]; !ok {
			c.KeysAdded = append(c.KeysAdded, keyRef(t, k))
		}
	}
	for _, k := range t.Revoked {
		if active, ok := before[keyRef(t, k)]; !ok || active {
			c.KeysRevoked = append(c.KeysRevoked, keyRef(t, k))
		}
	}
	if !existed {
		return
	}
	for r := range before {
		if _, ok := after[r]; !ok {
			c.KeysRemoved = append(c.KeysRemoved, r)
		}
	}
	op, oldOK := o.Primary()
	np, newOK := t.Primary()
	if newOK && (!oldOK || op.ID != np.ID || op.Fingerprint != np.Fingerprint) {
		c.Promoted = append(c.Promoted, keyRef(t, np))
	}
}

func keyRef(t *Tenant, k Key) KeyRef {
	return KeyRef{Tenant: t.ID, KeyID: k.ID, Fingerprint: k.Fingerprint}
}

// listedKeys maps each key t lists to whether it is active (false: revoked); empty for nil.
func listedKeys(t *Tenant) map[KeyRef]bool {
	m := map[KeyRef]bool{}
	if t == nil {
		return m
	}
	for _, k := range t.Keys {
		m[keyRef(t, k)] = true
	}
	for _, k := range t.Revoked {
		m[keyRef(t, k)] = false
	}
	return m
}

func sameTenant(a, b *Tenant) bool {
	if a.Name != b.Name || a.BaseURL != b.BaseURL || a.Version != b.Version || a.ConsentURL != b.ConsentURL ||
		len(a.Keys) != len(b.Keys) || len(a.Revoked) != len(b.Revoked) ||
		a.PasswordLogin != b.PasswordLogin || !reflect.DeepEqual(a.OIDC, b.OIDC) {
		return false
	}
	for i := range a.Keys {
		if a.Keys[i].ID != b.Keys[i].ID || a.Keys[i].Fingerprint != b.Keys[i].Fingerprint {
			return false
		}
	}
	for i := range a.Revoked {
		if a.Revoked[i].ID != b.Revoked[i].ID || a.Revoked[i].Fingerprint != b.Revoked[i].Fingerprint {
			return false
		}
	}
	return true
}
