package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/basiq-bff/bff/server/internal/basiq"
	"github.com/basiq-bff/bff/server/internal/basiq/emulator"
)

// runCLI runs one command with the given environment and stdin.
func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = run(ctx, append([]string{"server"}, args...), func(k string) string { return env[k] },
		strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	demoDB := map[string]string{"BFF_DEMO_DATA_DIR": filepath.Join(dir, "demo")}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(good, []byte(`public_origin: https://app.example.com
database_url: sqlite:`+filepath.Join(dir, "bff.db")+`
session: {keys: [{value: "`+strings.Repeat("ab", 32)+`"}]}
cache: {encryption_key: {value: "`+strings.Repeat("cd", 32)+`"}}
tenants:
  - {id: acme, name: Acme, basiq: {version: "3.0", api_keys: [{id: k1, env: ACME_KEY}]}}
`), 0o600))
	must(os.WriteFile(bad, []byte(`listen: nowhere
public_origin: https://app.example.com/path
cors: {allowed_origins: ["*"]}
tenants:
  - {id: "Bad Id", name: "", basiq: {version: "9.9", api_keys: []}}
`), 0o600))

	tests := []struct {
		name    string
		env     map[string]string
		stdin   string
		args    []string
		wantErr bool
		want    []string // substrings of stdout+stderr
	}{
		{"config check accepts a good file", map[string]string{"ACME_KEY": "k"}, "", []string{"config", "check", "--config", good}, false,
			[]string{"OK (1 tenants)", "inline secret value"}},
		{"config check lists every problem", nil, "", []string{"config", "check", "--config", bad}, true,
			[]string{"listen", "public_origin", "cors.allowed_origins[0]", "tenants[0].id", "tenants[0].name", "tenants[0].basiq.version", "session.keys", "cache.encryption_key"}},
		{"config check through BFF_CONFIG", map[string]string{"BFF_CONFIG": good, "ACME_KEY": "k"}, "", []string{"config", "check"}, false, []string{"OK"}},
		{"config check needs a file", nil, "", []string{"config", "check"}, true, []string{"needs --config"}},
		{"unknown command", nil, "", []string{"frobnicate"}, true, []string{`unknown command "frobnicate"`, "usage"}},
		{"users without a subcommand", nil, "", []string{"users"}, true, []string{"usage"}},
		{"users add needs flags", demoDB, "", []string{"users", "add"}, true, []string{"--tenant and --email are required"}},
		{"migrate", map[string]string{"ACME_KEY": "k"}, "", []string{"migrate", "--config", good}, false, []string{"migrations applied"}},
		{"users add", map[string]string{"ACME_KEY": "k"}, "a long enough password\n", []string{"users", "add", "--config", good, "--tenant", "acme", "--email", "Ann@Example.com"}, false,
			[]string{"created user", "ann@example.com"}},
		{"users add twice", map[string]string{"ACME_KEY": "k"}, "a long enough password\n", []string{"users", "add", "--config", good, "--tenant", "acme", "--email", "ann@example.com"}, true,
			[]string{"already exists"}},
		{"users add with a short password", map[string]string{"ACME_KEY": "k"}, "short\n", []string{"users", "add", "--config", good, "--tenant", "acme", "--email", "bo@example.com"}, true,
			[]string{"at least 12 characters"}},
		{"users add to an unknown tenant", map[string]string{"ACME_KEY": "k"}, "a long enough password\n", []string{"users", "add", "--config", good, "--tenant", "zenith", "--email", "bo@example.com"}, true,
			[]string{`unknown tenant "zenith"`}},
		{"users passwd", map[string]string{"ACME_KEY": "k"}, "another long password\n", []string{"users", "passwd", "--config", good, "--tenant", "acme", "--email", "ann@example.com"}, false,
			[]string{"password changed", "ended 0 sessions"}},
		{"users disable", map[string]string{"ACME_KEY": "k"}, "", []string{"users", "disable", "--config", good, "--tenant", "acme", "--email", "ann@example.com"}, false,
			[]string{"disabled user"}},
		{"users disable of nobody", map[string]string{"ACME_KEY": "k"}, "", []string{"users", "disable", "--config", good, "--tenant", "acme", "--email", "nobody@example.com"}, true,
			[]string{"not_found"}},
		{"users add on the demo database", demoDB, "a long enough password\n", []string{"users", "add", "--tenant", "demo", "--email", "dev@example.com"}, false,
			[]string{"created user"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := runCLI(t, tc.env, tc.stdin, tc.args...)
			all := out + errOut
			if err != nil {
				all += err.Error()
			}
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v\n%s", err, tc.wantErr, all)
			}
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("output lacks %q:\n%s", w, all)
				}
			}
			if strings.Contains(all, "a long enough password") || strings.Contains(all, strings.Repeat("ab", 32)) {
				t.Error("a password or key was printed")
			}
		})
	}
}

// TestEmulatorCommand: `server emulator --listen ADDR` serves a working /token until stopped.
func TestEmulatorCommand(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"server", "emulator", "--listen", addr}, func(string) string { return "" },
			strings.NewReader(""), io.Discard, io.Discard)
	}()
	c := basiq.New(nil, 5*time.Second)
	var tok basiq.Token
	deadline := time.Now().Add(10 * time.Second)
	for {
		tok, err = c.Token(context.Background(), basiq.TokenRequest{BaseURL: "http://" + addr, APIKey: emulator.DemoAPIKey,
			Version: "2.0", Scope: basiq.ScopeClient})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil || tok.ExpiresIn != 3600 {
		t.Fatalf("token from the emulator command: %+v, %v", tok, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("emulator stopped with %v", err)
	}
	if _, err := http.Get("http://" + addr + "/token"); err == nil || errors.Is(err, context.Canceled) {
		t.Error("the emulator still answers after stopping")
	}
}
