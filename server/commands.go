package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/basiq-bff/bff/config"
	"github.com/basiq-bff/bff/server/internal/auth"
	"github.com/basiq-bff/bff/server/internal/basiq/emulator"
	"github.com/basiq-bff/bff/server/internal/store"
)

// cliConfig is the configuration for the one-shot commands: the file, or the demo defaults
// (the demo database) when there is none.
func cliConfig(env cliEnv) (*config.Config, error) {
	if path := config.Path(env.configFlag, env.getenv); path != "" {
		c, err := config.Load(path, env.getenv)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		return c, nil
	}
	return demoConfig("http://127.0.0.1:9191", env.getenv)
}

func migrate(ctx context.Context, env cliEnv) error {
	cfg, err := cliConfig(env)
	if err != nil {
		return err
	}
	db, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	fmt.Fprintln(env.stdout, "migrations applied")
	return nil
}

// userCommand opens what the users commands need and checks the flags.
func userCommand(ctx context.Context, env cliEnv, tenantID, email string) (*app, error) {
	if tenantID == "" || email == "" {
		fmt.Fprint(env.stderr, "--tenant and --email are required\n\n"+usage)
		return nil, errUsage
	}
	cfg, err := cliConfig(env)
	if err != nil {
		return nil, err
	}
	known := false
	for _, t := range cfg.Tenants {
		known = known || t.ID == tenantID
	}
	if !known {
		return nil, fmt.Errorf("unknown tenant %q", tenantID)
	}
	a, err := open(ctx, cfg, slog.New(slog.NewTextHandler(env.stderr, nil)), nil)
	if err != nil {
		return nil, err
	}
	if err := a.db.Migrate(ctx); err != nil {
		a.close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return a, nil
}

// readPassword reads one line from stdin and checks it is acceptable.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, auth.MaxPasswordLen+2)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if err := auth.CheckPassword(pw); err != nil {
		return "", err
	}
	return pw, nil
}

func usersAdd(ctx context.Context, env cliEnv, tenantID, email string) error {
	a, err := userCommand(ctx, env, tenantID, email)
	if err != nil {
		return err
	}
	defer a.close()
	if !strings.Contains(email, "@") || len(email) > 254 {
		return fmt.Errorf("%q is not an email address", email)
	}
	pw, err := readPassword(env.stdin)
	if err != nil {
		return err
	}
	hash, err := auth.HashPassword(pw)
	if err != nil {
		return err
	}
	u, err := a.db.CreateUser(ctx, tenantID, email, hash)
	if err != nil {
		return fmt.Errorf("add user: %w", err)
	}
	fmt.Fprintf(env.stdout, "created user %d (%s) in tenant %s\n", u.ID, u.Email, u.TenantID)
	return nil
}

func usersDisable(ctx context.Context, env cliEnv, tenantID, email string) error {
	a, err := userCommand(ctx, env, tenantID, email)
	if err != nil {
		return err
	}
	defer a.close()
	u, err := a.db.DisableUser(ctx, tenantID, email, time.Now())
	if err != nil {
		return fmt.Errorf("disable user: %w", err)
	}
	n, err := a.sessions.EndUser(ctx, tenantID, u.ID)
	if err != nil {
		return fmt.Errorf("end sessions: %w", err)
	}
	fmt.Fprintf(env.stdout, "disabled user %d (%s); ended %d sessions\n", u.ID, u.Email, n)
	return nil
}

func usersPasswd(ctx context.Context, env cliEnv, tenantID, email string) error {
	a, err := userCommand(ctx, env, tenantID, email)
	if err != nil {
		return err
	}
	defer a.close()
	pw, err := readPassword(env.stdin)
	if err != nil {
		return err
	}
	hash, err := auth.HashPassword(pw)
	if err != nil {
		return err
	}
	u, err := a.db.SetPassword(ctx, tenantID, email, hash)
	if err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	n, err := a.sessions.EndUser(ctx, tenantID, u.ID)
	if err != nil {
		return fmt.Errorf("end sessions: %w", err)
	}
	fmt.Fprintf(env.stdout, "password changed for user %d (%s); ended %d sessions\n", u.ID, u.Email, n)
	return nil
}

func configCheck(env cliEnv) error {
	path := config.Path(env.configFlag, env.getenv)
	if path == "" {
		fmt.Fprint(env.stderr, "config check needs --config FILE or BFF_CONFIG\n")
		return errUsage
	}
	cfg, err := config.Load(path, env.getenv)
	if err != nil {
		var p *config.Problems
		if errors.As(err, &p) {
			fmt.Fprintf(env.stdout, "%s: %d problem(s):\n", path, len(p.List))
			for _, s := range p.List {
				fmt.Fprintf(env.stdout, "  - %s\n", s)
			}
			return fmt.Errorf("%s is not valid", path)
		}
		return err
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(env.stdout, "warning: %s\n", w)
	}
	fmt.Fprintf(env.stdout, "%s: OK (%d tenants)\n", path, len(cfg.Tenants))
	return nil
}

// emulatorServer is the Basiq emulator on a loopback listener.
type emulatorServer struct {
	emu *emulator.Emulator
	srv *http.Server
	url string
}

func startEmulator(ctx context.Context, addr string) (*emulatorServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	url := "http://" + ln.Addr().String()
	emu := emulator.New(emulator.Options{PublicURL: url})
	emu.AddKey(emulator.DemoAPIKey, emulator.KeyOptions{ApplicationID: "demo-application", PartnerID: "demo-partner", Sandbox: true})
	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return &emulatorServer{emu: emu, srv: srv, url: url}, nil
}

func (e *emulatorServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = e.srv.Shutdown(ctx)
}

func runEmulator(ctx context.Context, env cliEnv, listen string) error {
	es, err := startEmulator(ctx, listen)
	if err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	defer es.close()
	fmt.Fprintf(env.stdout, "Basiq emulator listening on %s; it accepts the demo API key (emulator.DemoAPIKey)\n", es.url)
	<-ctx.Done()
	return nil
}
