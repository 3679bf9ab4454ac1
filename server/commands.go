package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/basiq-bff/bff/config"
	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/auth"
	"github.com/basiq-bff/bff/server/internal/basiq/emulator"
	"github.com/basiq-bff/bff/server/internal/secevent"
	"github.com/basiq-bff/bff/server/internal/store"
	"github.com/basiq-bff/bff/server/internal/user"
)

// cliConfig is the configuration for the one-shot commands: the file, or the demo defaults
// (the demo database) when there is none.
func cliConfig(env cliEnv) (*config.Config, error) {
	if path := config.Path(env.configFlag, env.getenv); path != "" {
		c, err := config.Load(path, env.getenv, checkRedisURL)
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

// userCommand opens what the users commands need and checks the flags. Its logger writes
// the security events of the change to stderr.
func userCommand(ctx context.Context, env cliEnv, name, tenantID, email string) (*app, *slog.Logger, error) {
	if tenantID == "" || email == "" {
		fmt.Fprintf(env.stderr, "--tenant and --email are required\n\n")
		cmd := commandTable()[name]
		fs := flag.NewFlagSet(name, flag.ContinueOnError)
		fs.String("config", "", "configuration file (default $BFF_CONFIG; none: demo mode)")
		cmd.flags(fs, &cmdOptions{})
		commandHelp(env.stderr, cmd, fs)
		return nil, nil, errUsage
	}
	a, log, err := openForCLI(ctx, env, tenantID)
	if err != nil {
		return nil, nil, err
	}
	return a, log.With("tenant", tenantID), nil
}

// openForCLI opens the configured database and store for an operator command; a non-empty
// tenantID must name a configured tenant.
func openForCLI(ctx context.Context, env cliEnv, tenantID string) (*app, *slog.Logger, error) {
	cfg, err := cliConfig(env)
	if err != nil {
		return nil, nil, err
	}
	if tenantID != "" && !slices.ContainsFunc(cfg.Tenants, func(t config.Tenant) bool { return t.ID == tenantID }) {
		return nil, nil, fmt.Errorf("unknown tenant %q", tenantID)
	}
	log, _, closeLog := newLogger(cfg, env.stderr, nil)
	closeLog() // operator commands log little: lines go straight out (see cliLogger)
	a, err := open(ctx, cfg, log, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	if err := a.db.Migrate(ctx); err != nil {
		a.close()
		return nil, nil, fmt.Errorf("migrate: %w", err)
	}
	return a, log, nil
}

// userError turns the store's errors into sentences for an operator.
func userError(err error, tenantID, email string) error {
	switch {
	case errors.Is(err, apperr.NotFound):
		return fmt.Errorf("no user %s in tenant %s", user.NormalizeEmail(email), tenantID)
	case errors.Is(err, apperr.Conflict):
		return fmt.Errorf("a user %s already exists in tenant %s", user.NormalizeEmail(email), tenantID)
	}
	return err
}

// readPassword reads the first line of file when one is named; else it prompts for the
// password twice without echo when stdin is a terminal, and otherwise reads one line from
// stdin. Then it checks the password is acceptable.
func readPassword(env cliEnv, file string) (string, error) {
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("password file: %w", err)
		}
		defer f.Close()
		return readPasswordLine(f)
	}
	if f, ok := env.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(env.stderr, "Password: ")
		pw, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(env.stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		fmt.Fprint(env.stderr, "Repeat it: ")
		again, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(env.stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if string(pw) != string(again) {
			return "", errors.New("the two passwords differ")
		}
		if err := auth.CheckPassword(string(pw)); err != nil {
			return "", err
		}
		return string(pw), nil
	}
	return readPasswordLine(env.stdin)
}

func readPasswordLine(r io.Reader) (string, error) {
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

// newPasswordHash reads a new password (prompted for, or from passwordFile) and hashes it.
func newPasswordHash(env cliEnv, passwordFile string) (string, error) {
	pw, err := readPassword(env, passwordFile)
	if err != nil {
		return "", err
	}
	return auth.HashPassword(pw)
}

// endUserSessions records event for u, ends every session of u and records their revocation
// for reason; it returns how many sessions ended.
func endUserSessions(ctx context.Context, a *app, log *slog.Logger, u *user.User, event, reason string) (int, error) {
	pseudonym := a.tokens.HashUser(u.TenantID, u.ID)
	secevent.Log(ctx, log, event, secevent.ReasonCLI, "user", pseudonym)
	n, err := a.sessions.EndUser(ctx, u.TenantID, u.ID)
	if err != nil {
		return 0, fmt.Errorf("end sessions: %w", err)
	}
	secevent.Log(ctx, log, secevent.SessionRevoked, reason, "user", pseudonym, "sessions", n)
	return n, nil
}

func usersAdd(ctx context.Context, env cliEnv, tenantID, email, passwordFile string) error {
	a, log, err := userCommand(ctx, env, "users add", tenantID, email)
	if err != nil {
		return err
	}
	defer a.close()
	if !strings.Contains(email, "@") || len(email) > 254 {
		return fmt.Errorf("%q is not an email address", email)
	}
	hash, err := newPasswordHash(env, passwordFile)
	if err != nil {
		return err
	}
	u, err := a.db.CreateUser(ctx, tenantID, email, hash)
	if err != nil {
		return userError(err, tenantID, email)
	}
	secevent.Log(ctx, log, secevent.UserCreated, secevent.ReasonCLI, "user", a.tokens.HashUser(u.TenantID, u.ID))
	fmt.Fprintf(env.stdout, "created user %d (%s) in tenant %s\n", u.ID, u.Email, u.TenantID)
	return nil
}

func usersDisable(ctx context.Context, env cliEnv, tenantID, email string) error {
	a, log, err := userCommand(ctx, env, "users disable", tenantID, email)
	if err != nil {
		return err
	}
	defer a.close()
	u, err := a.db.DisableUser(ctx, tenantID, email, time.Now())
	if err != nil {
		return userError(err, tenantID, email)
	}
	n, err := endUserSessions(ctx, a, log, u, secevent.UserDisabled, secevent.ReasonUserDisabled)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "disabled user %d (%s); ended %d sessions\n", u.ID, u.Email, n)
	return nil
}

func usersPasswd(ctx context.Context, env cliEnv, tenantID, email, passwordFile string) error {
	a, log, err := userCommand(ctx, env, "users passwd", tenantID, email)
	if err != nil {
		return err
	}
	defer a.close()
	if _, err := a.db.UserByEmail(ctx, tenantID, email); err != nil {
		return userError(err, tenantID, email) // before asking for a password in vain
	}
	hash, err := newPasswordHash(env, passwordFile)
	if err != nil {
		return err
	}
	u, err := a.db.SetPassword(ctx, tenantID, email, hash)
	if err != nil {
		return userError(err, tenantID, email)
	}
	n, err := endUserSessions(ctx, a, log, u, secevent.PasswordChanged, secevent.ReasonPasswordChange)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "password changed for user %d (%s); ended %d sessions\n", u.ID, u.Email, n)
	return nil
}

func usersEnable(ctx context.Context, env cliEnv, tenantID, email string) error {
	a, log, err := userCommand(ctx, env, "users enable", tenantID, email)
	if err != nil {
		return err
	}
	defer a.close()
	u, err := a.db.EnableUser(ctx, tenantID, email)
	if err != nil {
		return userError(err, tenantID, email)
	}
	secevent.Log(ctx, log, secevent.UserEnabled, secevent.ReasonCLI, "user", a.tokens.HashUser(u.TenantID, u.ID))
	fmt.Fprintf(env.stdout, "enabled user %d (%s)\n", u.ID, u.Email)
	return nil
}

func usersList(ctx context.Context, env cliEnv, tenantID string) error {
	a, _, err := openForCLI(ctx, env, tenantID)
	if err != nil {
		return err
	}
	defer a.close()
	users, err := a.db.ListUsers(ctx, tenantID)
	if err != nil {
		return fmt.Errorf("list users: %w", err)
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTENANT\tEMAIL\tSTATE\tBASIQ USER\tCREATED")
	for _, u := range users {
		state, basiqUser := "enabled", u.BasiqUserID
		if u.Disabled() {
			state = "disabled since " + u.DisabledAt.Format(time.RFC3339)
		}
		if basiqUser == "" {
			basiqUser = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", u.ID, u.TenantID, u.Email, state, basiqUser, u.CreatedAt.Format(time.RFC3339))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(env.stderr, "%d user(s)\n", len(users))
	return nil
}

// healthcheck asks the admin listener for /healthz: the container image's HEALTHCHECK, since
// a distroless image has no shell or curl.
func healthcheck(ctx context.Context, env cliEnv, url string) error {
	if url == "" {
		addr := "127.0.0.1:9090"
		if path := config.Path(env.configFlag, env.getenv); path != "" {
			cfg, err := config.Load(path, env.getenv, checkRedisURL)
			if err != nil {
				return fmt.Errorf("config: %w", err)
			}
			addr = cfg.AdminListen
		} else if v := env.getenv("BFF_ADMIN_LISTEN"); v != "" {
			addr = v
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("admin_listen %q: %w", addr, err)
		}
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			host = "127.0.0.1" // a wildcard listener answers on loopback
		}
		url = "http://" + net.JoinHostPort(host, port) + "/healthz"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", url, resp.Status)
	}
	fmt.Fprintf(env.stdout, "healthy: %s\n", url)
	return nil
}

func configCheck(env cliEnv) error {
	path := config.Path(env.configFlag, env.getenv)
	if path == "" {
		fmt.Fprint(env.stderr, "config check needs --config FILE or BFF_CONFIG\n")
		return errUsage
	}
	cfg, err := config.Load(path, env.getenv, checkRedisURL)
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
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
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

func runEmulator(ctx context.Context, env cliEnv, listen, consentRedirect string) error {
	es, err := startEmulator(ctx, listen)
	if err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	defer es.close()
	if consentRedirect != "" {
		es.emu.SetConsentRedirect(consentRedirect)
	}
	// The demo key is published on purpose: it works only against this emulator.
	fmt.Fprintf(env.stdout, "Basiq emulator listening on %s\nDemo API key (works only here): %s\n", es.url, emulator.DemoAPIKey)
	<-ctx.Done()
	return nil
}
