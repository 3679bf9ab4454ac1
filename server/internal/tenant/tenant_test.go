package tenant

import (
	"reflect"
	"slices"
	"testing"

	"github.com/basiq-bff/bff/config"
)

var fpKey = []byte("fingerprint key")

func key(id, material string, revoked bool) config.APIKey {
	return config.APIKey{ID: id, Revoked: revoked, Secret: config.NewSecret(material)}
}

func cfgTenant(id, version string, keys ...config.APIKey) config.Tenant {
	return config.Tenant{ID: id, Name: id, Basiq: config.Basiq{BaseURL: "https://au-api.basiq.io", Version: version,
		ConsentURL: "https://consent.basiq.io/home", APIKeys: keys}}
}

func TestFingerprint(t *testing.T) {
	base := Fingerprint(fpKey, "https://au-api.basiq.io", "3.0", "key-a")
	for name, other := range map[string]string{
		"another key":      Fingerprint(fpKey, "https://au-api.basiq.io", "3.0", "key-b"),
		"another version":  Fingerprint(fpKey, "https://au-api.basiq.io", "2.0", "key-a"),
		"another base URL": Fingerprint(fpKey, "https://example.test", "3.0", "key-a"),
		"another fp key":   Fingerprint([]byte("other"), "https://au-api.basiq.io", "3.0", "key-a"),
		// The separators keep ("a","bc") and ("ab","c") apart.
		"shifted fields": Fingerprint(fpKey, "https://au-api.basiq.io3", ".0", "key-a"),
	} {
		if other == base {
			t.Errorf("%s: same fingerprint", name)
		}
	}
	if again := Fingerprint(fpKey, "https://au-api.basiq.io", "3.0", "key-a"); again != base || len(base) != 16 {
		t.Errorf("fingerprint %q is not stable 16 hex chars", base)
	}
}

func TestSnapshotKeys(t *testing.T) {
	s := NewSnapshot([]config.Tenant{cfgTenant("acme", "3.0", key("old", "a", true), key("k1", "b", false), key("k2", "c", false))}, fpKey)
	a, ok := s.Get("acme")
	if !ok {
		t.Fatal("acme missing")
	}
	p, _ := a.Primary()
	if p.ID != "k1" || len(a.Keys) != 2 || len(a.Revoked) != 1 || a.Revoked[0].ID != "old" {
		t.Errorf("primary %s, keys %d, revoked %v", p.ID, len(a.Keys), a.Revoked)
	}
	if !a.BindsUser() {
		t.Error("a 3.0 tenant must bind users")
	}
	if _, ok := s.Get("nobody"); ok {
		t.Error("unknown tenant found")
	}
}

func ids(refs []KeyRef) []string {
	var out []string
	for _, r := range refs {
		out = append(out, r.Tenant+"/"+r.KeyID)
	}
	slices.Sort(out)
	return out
}

func TestDiff(t *testing.T) {
	old := NewSnapshot([]config.Tenant{
		cfgTenant("acme", "3.0", key("a", "A", false)),
		cfgTenant("beta", "2.0", key("b1", "B1", false), key("b2", "B2", false)),
		cfgTenant("gone", "2.0", key("g", "G", false)),
	}, fpKey)
	cur := NewSnapshot([]config.Tenant{
		cfgTenant("acme", "3.0", key("new", "N", false), key("a", "A", false)), // promoted
		cfgTenant("beta", "2.0", key("b1", "B1-rotated", false), key("b2", "B2", true)),
		cfgTenant("fresh", "3.0", key("f", "F", false)),
	}, fpKey)
	c := Diff(old, cur)
	check := func(name string, got, want []string) {
		t.Helper()
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("tenants added", c.TenantsAdded, []string{"fresh"})
	check("tenants removed", c.TenantsRemoved, []string{"gone"})
	check("tenants changed", c.TenantsChanged, []string{"acme", "beta"})
	check("keys added", ids(c.KeysAdded), []string{"acme/new", "beta/b1", "fresh/f"})
	// b1's material changed: its old fingerprint is gone. gone/g left with its tenant.
	check("keys removed", ids(c.KeysRemoved), []string{"beta/b1", "gone/g"})
	check("keys revoked", ids(c.KeysRevoked), []string{"beta/b2"})
	check("promoted", ids(c.Promoted), []string{"acme/new", "beta/b1"})
	if d := Diff(cur, cur); !reflect.DeepEqual(d, Changes{}) {
		t.Errorf("a snapshot differs from itself: %+v", d)
	}
}

func TestRegistrySwap(t *testing.T) {
	s1 := NewSnapshot([]config.Tenant{cfgTenant("acme", "3.0", key("a", "A", false))}, fpKey)
	r := NewRegistry(s1)
	held := r.Load()
	s2 := FromTenants(nil)
	if prev := r.Swap(s2); prev != s1 || r.Load() != s2 {
		t.Error("Swap did not install the new snapshot")
	}
	if _, ok := held.Get("acme"); !ok {
		t.Error("a snapshot held by a request in flight changed under it")
	}
}
