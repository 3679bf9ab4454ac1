package config

import (
	"os"
	"strings"
	"testing"
)

// TestComposeConfigsLoad: the files docker-compose.yml and docker-compose.demo.yml run with
// are valid, their /run/secrets paths pointed at stand-in files.
func TestComposeConfigsLoad(t *testing.T) {
	tests := []struct {
		name, file string
		secrets    map[string]string // path under /run/secrets/ -> content
		env        map[string]string
		tenant     string
	}{
		{"compose", "compose.yaml", map[string]string{"bff-session-key": testSessionKey, "bff-cache-key": testCacheKey, "acme-basiq-key": testAPIKey}, nil, "acme"},
		{"demo compose", "compose-demo.yaml", map[string]string{"demo/session-key": testSessionKey, "demo/cache-key": testCacheKey},
			map[string]string{"BFF_EMULATOR_DEMO_API_KEY": testAPIKey}, "demo"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			for p, v := range tc.secrets {
				writeFile(t, dir, p, v+"\n")
			}
			c, err := loadYAML(t, strings.ReplaceAll(string(b), "/run/secrets/", dir+"/"), tc.env)
			if err != nil {
				t.Fatalf("%s: %v", tc.file, err)
			}
			// In a container the admin listener must bind every interface to be reachable by
			// probes; the warning about it is expected, and any other is not.
			var warnings []string
			for _, w := range c.Warnings {
				if !strings.HasPrefix(w, "admin_listen:") {
					warnings = append(warnings, w)
				}
			}
			if len(c.Tenants) != 1 || c.Tenants[0].ID != tc.tenant || c.RedisURL == "" || len(warnings) != 0 {
				t.Errorf("%s: tenants %v, redis %q, warnings %q", tc.file, c.Tenants, c.RedisURL, c.Warnings)
			}
		})
	}
}
