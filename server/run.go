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

	"github.com/basiq-bff/bff/server/internal/buildinfo"
)

const usage = `usage: server [command] [flags]

commands:
  serve                                  run the BFF (the default); no config = demo mode
  migrate                                apply the embedded database migrations
  healthcheck                            probe a running server's /healthz (for a container HEALTHCHECK)
  users add --tenant T --email E         create a user; password prompted for or read from stdin
  users list [--tenant T]                list users with their state
  users enable --tenant T --email E      let a disabled user log in again
  users disable --tenant T --email E     disable a user and end all their sessions
  users passwd --tenant T --email E      set a new password and end all their sessions
  users show --tenant T --email E        show how a user signs in (password, identity provider) and their state
  config check                           validate the configuration, print every problem
  emulator [--listen ADDR]               run the Basiq emulator alone
  version                                print the version (also --version)

every command takes --config FILE (or BFF_CONFIG); "server COMMAND --help" shows its flags
`

// errUsage marks a command-line mistake; the usage text has been printed. main exits 2.
var errUsage = errors.New("invalid command line")

// command is one CLI command: its synopsis, what it does, and its own flags.
type command struct {
	synopsis, does string
	flags          func(fs *flag.FlagSet, o *cmdOptions)
}

// cmdOptions are the flags any command may take.
type cmdOptions struct {
	config, tenant, email, listen, url string
	passwordFile, consentRedirect      string
}

func userFlags(fs *flag.FlagSet, o *cmdOptions) {
	fs.StringVar(&o.tenant, "tenant", "", "tenant id (required)")
	fs.StringVar(&o.email, "email", "", "the user's email address (required)")
}

func passwordFlags(fs *flag.FlagSet, o *cmdOptions) {
	userFlags(fs, o)
	fs.StringVar(&o.passwordFile, "password-file", "", "read the password from this file (its first line) instead of a prompt or stdin")
}

// commandTable lists every command by name ("users add" for a subcommand).
func commandTable() map[string]command {
	return map[string]command{
		"serve":   {"serve", "Runs the BFF until SIGTERM. Without a configuration it runs in demo mode.", nil},
		"migrate": {"migrate", "Applies the embedded database migrations and exits.", nil},
		"healthcheck": {"healthcheck [--url URL]", "Asks a running server's admin listener for /healthz; exits 0 when it answers 200.",
			func(fs *flag.FlagSet, o *cmdOptions) {
				fs.StringVar(&o.url, "url", "", "the /healthz URL (default: http://<admin_listen>/healthz from the configuration, or http://127.0.0.1:9090/healthz)")
			}},
		"users add": {"users add --tenant T --email E", "Creates a user. The password (at least 12 characters) is prompted for without echo on a terminal, else read as one line from stdin or --password-file.", passwordFlags},
		"users list": {"users list [--tenant T]", "Lists users: id, tenant, email, state, Basiq binding and creation time.",
			func(fs *flag.FlagSet, o *cmdOptions) {
				fs.StringVar(&o.tenant, "tenant", "", "list only this tenant's users")
			}},
		"users enable":  {"users enable --tenant T --email E", "Lets a disabled user log in again.", userFlags},
		"users disable": {"users disable --tenant T --email E", "Disables a user and ends all their sessions.", userFlags},
		"users show":    {"users show --tenant T --email E", "Shows how a user signs in (password, identity provider) and their state.", userFlags},
		"users passwd":  {"users passwd --tenant T --email E", "Sets a new password (prompted for, or one line of stdin or --password-file) and ends all the user's sessions.", passwordFlags},
		"config check":  {"config check", "Validates the configuration, prints every problem and exits non-zero if there is any.", nil},
		"emulator": {"emulator [--listen ADDR]", "Runs the Basiq emulator alone, for frontend work. It accepts the demo API key, which it prints.",
			func(fs *flag.FlagSet, o *cmdOptions) {
				fs.StringVar(&o.listen, "listen", "127.0.0.1:9191", "address to listen on")
			}},
		"version": {"version", "Prints the version, the VCS revision and the Go version.", nil},
	}
}

// run is the whole program. It owns signal handling: the first SIGINT or SIGTERM stops it
// gracefully (serve drains first), a second one stops it at once.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	force, release := watchSignals(stop)
	defer release()

	if len(args) > 1 {
		switch args[1] {
		case "--version", "-version":
			fmt.Fprintln(stdout, buildinfo.Read())
			return nil
		case "--help", "-help", "-h", "help":
			fmt.Fprint(stdout, usage)
			return nil
		}
	}
	name, rest, err := commandName(args[1:], stderr)
	if err != nil {
		return err
	}
	cmd, ok := commandTable()[name]
	if !ok {
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", name, usage)
		return errUsage
	}

	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var o cmdOptions
	fs.StringVar(&o.config, "config", "", "configuration file (default $BFF_CONFIG; none: demo mode)")
	if cmd.flags != nil {
		cmd.flags(fs, &o)
	}
	fs.SetOutput(stderr)
	fs.Usage = func() { commandHelp(fs.Output(), cmd, fs) }
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			commandHelp(stdout, cmd, fs)
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %s\n\n", strings.Join(fs.Args(), " "))
		commandHelp(stderr, cmd, fs)
		return errUsage
	}

	env := cliEnv{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr, configFlag: o.config, force: force}
	return dispatch(ctx, name, env, o)
}

// watchSignals calls stop on the first SIGINT or SIGTERM and closes force on the second,
// until release is called.
func watchSignals(stop func()) (force chan struct{}, release func()) {
	force = make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	returned := make(chan struct{})
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
	return force, func() {
		signal.Stop(sigs)
		close(returned)
	}
}

// commandName reads the command's name (serve when there is none; "users" and "config" take a
// subcommand) and returns it with the arguments left.
func commandName(args []string, stderr io.Writer) (string, []string, error) {
	name, rest := "serve", args
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		name, rest = rest[0], rest[1:]
	}
	if name == "users" || name == "config" {
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			fmt.Fprintf(stderr, "%q needs a subcommand\n\n%s", name, usage)
			return "", nil, errUsage
		}
		name, rest = name+" "+rest[0], rest[1:]
	}
	return name, rest, nil
}

// dispatch runs the named command.
func dispatch(ctx context.Context, name string, env cliEnv, o cmdOptions) error {
	switch name {
	case "serve":
		return serve(ctx, env)
	case "migrate":
		return migrate(ctx, env)
	case "healthcheck":
		return healthcheck(ctx, env, o.url)
	case "users add":
		return usersAdd(ctx, env, o.tenant, o.email, o.passwordFile)
	case "users list":
		return usersList(ctx, env, o.tenant)
	case "users enable":
		return usersEnable(ctx, env, o.tenant, o.email)
	case "users disable":
		return usersDisable(ctx, env, o.tenant, o.email)
	case "users passwd":
		return usersPasswd(ctx, env, o.tenant, o.email, o.passwordFile)
	case "users show":
		return usersShow(ctx, env, o.tenant, o.email)
	case "config check":
		return configCheck(env)
	case "emulator":
		return runEmulator(ctx, env, o.listen, o.consentRedirect)
	case "version":
		fmt.Fprintln(env.stdout, buildinfo.Read())
		return nil
	}
	return errUsage
}

// commandHelp prints one command's usage: synopsis, what it does, its flags with defaults.
func commandHelp(w io.Writer, cmd command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: server %s [--config FILE]\n\n%s\n\nflags:\n", cmd.synopsis, cmd.does)
	out := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(out)
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
