package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad checks that any file content either loads into a Config that passes Validate or
// is rejected with a *Problems listing one-line problems; it never panics.
func FuzzLoad(f *testing.F) {
	example, err := os.ReadFile("example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(example))
	f.Add(strings.ReplaceAll(string(example), "file: /run/secrets/", "env: "))
	var base strings.Builder
	for _, s := range baseSections() {
		base.WriteString(s.text)
	}
	f.Add(base.String())
	for _, s := range []string{
		"",
		"---\n",
		"listen: [\n",
		"- a\n- b\n",
		"listen: 1\nlisten: 2\n",
		"lisen: 127.0.0.1:1\n",
		"tenants: [{id: a, name: A, basiq: {version: 3.0, api_keys: [{id: k, env: K}, {id: j, file: k}]}}]\n",
		"session: {keys: [{env: A, file: B, value: C}], idle_timeout: 1x}\n",
		"client_token: {deadline: -5s, l1_ttl: 99h, mint_budget: 99999999999999999999}\n",
		"a: &a [*a, *a]\nb: *a\n",
		"cache: {encryption_key: {file: /dev/zero}}\n",
		"x: 1\n---\ny: 2\n",
	} {
		f.Add(s)
	}
	// parse is Load after reading the file; calling it directly keeps each run in memory,
	// which matters when the engine minimizes a multi-kilobyte input.
	path := filepath.Join(f.TempDir(), "bff.yaml")
	// Every environment variable holds a valid 32-byte hex key, so env secrets resolve and
	// fuzzed inputs can reach a fully valid configuration.
	getenv := func(string) string { return testSessionKey }
	f.Fuzz(func(t *testing.T, data string) {
		c, err := parse([]byte(data), path, getenv)
		if err == nil {
			if c == nil {
				t.Fatal("Load returned neither a Config nor an error")
			}
			if problems := c.Validate(); len(problems) != 0 {
				t.Fatalf("Load accepted a config that fails Validate: %q", problems)
			}
			return
		}
		if c != nil {
			t.Fatal("Load returned both a Config and an error")
		}
		var p *Problems
		if !errors.As(err, &p) || len(p.List) == 0 {
			t.Fatalf("Load error %v (%T) is not a non-empty *Problems", err, err)
		}
		for _, problem := range p.List {
			if problem == "" || strings.Contains(problem, "\n") {
				t.Errorf("problem %q is not one non-empty line", problem)
			}
		}
	})
}
