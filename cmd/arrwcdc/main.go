// Command arrwcdc is the one binary of arrwcdc: the all-in-one server, a
// broker node, the bridge, the reference app, and the operator tools
// (tail, publish, bench). main only wires packages together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/config"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "arrwcdc:", err)
		os.Exit(1)
	}
}

// env is what a command gets from the outside world; tests fill it in.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	log            *zap.Logger // level and format from the settings, to stderr
}

type command func(ctx context.Context, cfg config.Config, e env) error

var commands = map[string]command{
	"serve":       runServe,
	"broker":      runBroker,
	"bridge":      runBridge,
	"demo-app":    runDemoApp,
	"healthcheck": runHealthcheck,
	"tail":        runTail,
	"publish":     runPublish,
	"bench":       runBench,
	"token":       runToken,
	"version":     runVersion,
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	name, rest := args[0], args[1:]
	cmd, ok := commands[name]
	if !ok {
		usage(stderr)
		return fmt.Errorf("unknown command %q", name)
	}
	cfg, err := config.Loader{Getenv: getenv, Output: stdout}.Load(name, rest)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log, err := newLogger(cfg, stderr)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	return cmd(ctx, cfg, env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv, log: log})
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "arrwcdc: change-data-capture events over NATS")
	fmt.Fprintln(w, "\nUsage: arrwcdc <command> [flags]   (arrwcdc <command> --help for its flags)")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range config.Commands {
		if _, ok := commands[c.Name]; ok {
			fmt.Fprintf(w, "  %-10s %s\n", c.Name, c.Summary)
		}
	}
}

func runVersion(_ context.Context, _ config.Config, e env) error {
	_, err := fmt.Fprintln(e.stdout, "arrwcdc", version)
	return err
}
