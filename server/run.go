package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `usage: server [command] [flags]

commands:
  serve                                  run the BFF (the default); no config = demo mode
  migrate                                apply the embedded database migrations
  users add --tenant T --email E         create a user; password read from stdin
  users disable --tenant T --email E     disable a user and end all their sessions
  users passwd --tenant T --email E      set a new password (stdin) and end all sessions
  config check                           validate the configuration, print every problem
  emulator [--listen ADDR]               run the Basiq emulator alone

every command takes --config FILE (or BFF_CONFIG)
`

// errUsage marks a command-line mistake; the usage text has been printed.
var errUsage = errors.New("invalid command line")

// run is the whole program. It owns signal handling: the first SIGINT or SIGTERM stops it
// gracefully (serve drains first), a second one stops it at once.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	force := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	returned := make(chan struct{})
	defer close(returned)
	go func() {
		select {
		case <-sigs:
			stop()
		case <-returned:
			return
		}
		select {
		case <-sigs:
			close(force)
		case <-returned:
		}
	}()

	cmd, rest := "serve", args[1:]
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		cmd, rest = rest[0], rest[1:]
	}
	if cmd == "users" || cmd == "config" {
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			fmt.Fprint(stderr, usage)
			return errUsage
		}
		cmd, rest = cmd+" "+rest[0], rest[1:]
	}

	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	configPath := fs.String("config", "", "configuration file (default $BFF_CONFIG; none = demo mode)")
	var tenantID, email, listen string
	switch cmd {
	case "users add", "users disable", "users passwd":
		fs.StringVar(&tenantID, "tenant", "", "tenant id")
		fs.StringVar(&email, "email", "", "email address")
	case "emulator":
		fs.StringVar(&listen, "listen", "127.0.0.1:9191", "address to listen on")
	case "serve", "migrate", "config check":
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", cmd, usage)
		return errUsage
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %s\n\n%s", strings.Join(fs.Args(), " "), usage)
		return errUsage
	}

	env := cliEnv{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr, configFlag: *configPath, force: force}
	switch cmd {
	case "serve":
		return serve(ctx, env)
	case "migrate":
		return migrate(ctx, env)
	case "users add":
		return usersAdd(ctx, env, tenantID, email)
	case "users disable":
		return usersDisable(ctx, env, tenantID, email)
	case "users passwd":
		return usersPasswd(ctx, env, tenantID, email)
	case "config check":
		return configCheck(env)
	case "emulator":
		return runEmulator(ctx, env, listen)
	}
	return errUsage
}

// cliEnv is the operating system as run received it.
type cliEnv struct {
	getenv         func(string) string
	stdin          io.Reader
	stdout, stderr io.Writer
	configFlag     string
	// force is closed by a second stop signal: end now, without draining.
	force <-chan struct{}
}
