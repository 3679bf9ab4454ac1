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
	"github.com/basiq-bff/bff/server/internal/buildinfo"
	"github.com/basiq-bff/bff/server/internal/testenv"
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
single_replica: true
session: {keys: [{value: "`+strings.Repeat("ab", 32)+`"}]}
cache: {encryption_key: {value: "`+strings.Repeat("cd", 32)+`"}}
tenants:
  - {id: acme, name: Acme, basiq: {version: "3.0", api_keys: [{id: k1, env: ACME_KEY}]}}
`), 0o600))
	pwFile := filepath.Join(dir, "password")
	must(os.WriteFile(pwFile, []byte("a password from a file\n"), 0o600))
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
			[]string{"created user", "ann@example.com", `"security":true`, `"event":"user.created"`, `"reason":"cli"`}},
		{"users add twice", map[string]string{"ACME_KEY": "k"}, "a long enough password\n", []string{"users", "add", "--config", good, "--tenant", "acme", "--email", "ann@example.com"}, true,
			[]string{"a user ann@example.com already exists in tenant acme"}},
		{"users add with a short password", map[string]string{"ACME_KEY": "k"}, "short\n", []string{"users", "add", "--config", good, "--tenant", "acme", "--email", "bo@example.com"}, true,
			[]string{"at least 12 characters"}},
		{"users add to an unknown tenant", map[string]string{"ACME_KEY": "k"}, "a long enough password\n", []string{"users", "add", "--config", good, "--tenant", "zenith", "--email", "bo@example.com"}, true,
			[]string{`unknown tenant "zenith"`}},
		{"users passwd", map[string]string{"ACME_KEY": "k"}, "another long password\n", []string{"users", "passwd", "--config", good, "--tenant", "acme", "--email", "ann@example.com"}, false,
			[]string{"password changed", "ended 0 sessions", `"event":"user.password_changed"`, `"event":"session.revoked"`, `"reason":"password_change"`}},
		{"users disable", map[string]string{"ACME_KEY": "k"}, "", []string{"users", "disable", "--config", good, "--tenant", "acme", "--email", "ann@example.com"}, false,
			[]string{"disabled user", `"event":"user.disabled"`, `"event":"session.revoked"`, `"reason":"user_disabled"`}},
		{"users disable of nobody", map[string]string{"ACME_KEY": "k"}, "", []string{"users", "disable", "--config", good, "--tenant", "acme", "--email", "nobody@example.com"}, true,
			[]string{"no user nobody@example.com in tenant acme"}},
		{"users list shows the disabled user", map[string]string{"ACME_KEY": "k"}, "", []string{"users", "list", "--config", good}, false,
			[]string{"EMAIL", "ann@example.com", "disabled since", "1 user(s)"}},
		{"users enable", map[string]string{"ACME_KEY": "k"}, "", []string{"users", "enable", "--config", good, "--tenant", "acme", "--email", "ann@example.com"}, false,
			[]string{"enabled user", `"event":"user.enabled"`, `"reason":"cli"`}},
		{"users list after enabling", map[string]string{"ACME_KEY": "k"}, "", []string{"users", "list", "--config", good, "--tenant", "acme"}, false,
			[]string{"ann@example.com", "enabled", "1 user(s)"}},
		{"users enable of nobody", map[string]string{"ACME_KEY": "k"}, "", []string{"users", "enable", "--config", good, "--tenant", "acme", "--email", "nobody@example.com"}, true,
			[]string{"no user nobody@example.com in tenant acme"}},
		{"users passwd of nobody asks no password", map[string]string{"ACME_KEY": "k"}, "", []string{"users", "passwd", "--config", good, "--tenant", "acme", "--email", "nobody@example.com"}, true,
			[]string{"no user nobody@example.com in tenant acme"}},
		{"users add with a password file", map[string]string{"ACME_KEY": "k"}, "", []string{"users", "add", "--config", good, "--tenant", "acme", "--email", "fi@example.com", "--password-file", pwFile}, false,
			[]string{"created user", "fi@example.com"}},
		{"users add with a missing password file", map[string]string{"ACME_KEY": "k"}, "", []string{"users", "add", "--config", good, "--tenant", "acme", "--email", "fo@example.com", "--password-file", pwFile + ".none"}, true,
			[]string{"password file"}},
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
			if strings.Contains(all, "a long enough password") || strings.Contains(all, "a password from a file") || strings.Contains(all, strings.Repeat("ab", 32)) {
				t.Error("a password or key was printed")
			}
		})
	}
}

// TestCommandHelp: every command has its own help, with its flags and their defaults, on
// stdout and exit 0; usage mistakes are errUsage (exit 2) and show that command's help.
func TestCommandHelp(t *testing.T) {
	version := buildinfo.Read()
	tests := []struct {
		name      string
		args      []string
		wantUsage bool     // the error is errUsage
		want      []string // substrings of stdout+stderr
	}{
		{"global help", []string{"--help"}, false, []string{"usage: server [command]", "users list", "healthcheck"}},
		{"users add --help", []string{"users", "add", "--help"}, false, []string{"usage: server users add --tenant T --email E", "-tenant", "-email", "-config", "without echo"}},
		{"users list -h", []string{"users", "list", "-h"}, false, []string{"usage: server users list [--tenant T]", "-tenant"}},
		{"emulator --help shows the default", []string{"emulator", "--help"}, false, []string{"-listen", `(default "127.0.0.1:9191")`}},
		{"healthcheck --help", []string{"healthcheck", "--help"}, false, []string{"-url"}},
		{"--version", []string{"--version"}, false, []string{version.String()}},
		{"version", []string{"version"}, false, []string{"basiq-bff " + version.Version, version.Go}},
		{"unknown flag", []string{"users", "add", "--frobnicate"}, true, []string{"flag provided but not defined", "usage: server users add"}},
		{"stray argument", []string{"migrate", "now"}, true, []string{"unexpected arguments: now", "usage: server migrate"}},
		{"users without a subcommand", []string{"users"}, true, []string{`"users" needs a subcommand`}},
		{"unknown subcommand", []string{"users", "frobnicate"}, true, []string{`unknown command "users frobnicate"`}},
		{"missing required flags", []string{"users", "enable"}, true, []string{"--tenant and --email are required", "usage: server users enable"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := runCLI(t, map[string]string{"BFF_DEMO_DATA_DIR": t.TempDir()}, "", tc.args...)
			if tc.wantUsage != errors.Is(err, errUsage) {
				t.Fatalf("err = %v, want usage error %v", err, tc.wantUsage)
			}
			if !tc.wantUsage && err != nil {
				t.Fatalf("err = %v", err)
			}
			if !tc.wantUsage && out == "" {
				t.Error("help went to stderr, not stdout")
			}
			for _, w := range tc.want {
				if !strings.Contains(out+errOut, w) {
					t.Errorf("output lacks %q:\n%s%s", w, out, errOut)
				}
			}
		})
	}
}

// TestHealthcheckCommand: healthcheck passes against a running server's admin listener and
// fails, without a usage error, when nothing answers.
func TestHealthcheckCommand(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"BFF_LISTEN": "127.0.0.1:0", "BFF_ADMIN_LISTEN": "127.0.0.1:0", "BFF_DEMO_DATA_DIR": dir}
	r := startRun(t, func(k string) string { return env[k] })
	admin := strings.TrimPrefix(r.admin, "http://")
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr bool
	}{
		{"explicit url", nil, []string{"healthcheck", "--url", r.admin + "/healthz"}, false},
		{"admin address from BFF_ADMIN_LISTEN", map[string]string{"BFF_ADMIN_LISTEN": admin}, []string{"healthcheck"}, false},
		{"nothing listening", nil, []string{"healthcheck", "--url", "http://127.0.0.1:1/healthz"}, true},
		{"a path that is not 200", nil, []string{"healthcheck", "--url", r.admin + "/nope"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := runCLI(t, tc.env, "", tc.args...)
			if (err != nil) != tc.wantErr || errors.Is(err, errUsage) {
				t.Fatalf("err = %v, want error %v\n%s%s", err, tc.wantErr, out, errOut)
			}
			if !tc.wantErr && !strings.Contains(out, "healthy") {
				t.Errorf("output: %q", out)
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
	out := &testenv.Buffer{}
	go func() {
		done <- run(ctx, []string{"server", "emulator", "--listen", addr}, func(string) string { return "" },
			strings.NewReader(""), out, io.Discard)
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
	if !strings.Contains(out.String(), emulator.DemoAPIKey) {
		t.Errorf("the emulator does not print the demo key: %q", out)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("emulator stopped with %v", err)
	}
	if _, err := http.Get("http://" + addr + "/token"); err == nil || errors.Is(err, context.Canceled) {
		t.Error("the emulator still answers after stopping")
	}
}
