// Command roomhook turns room events published on NATS JetStream by plugNmeet and LiveKit
// media nodes into signed webhooks, delivered in order per room to every subscribed URL.
//
// Usage:
//
//	roomhook                 run the dispatcher (configuration from ROOMHOOK_* variables)
//	roomhook help            list the subcommands
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// subcommand is one `roomhook <name>` entry point; args excludes the name.
type subcommand struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

func subcommands() map[string]subcommand {
	return map[string]subcommand{
		"serve":     {"run the dispatcher (the default)", func(ctx context.Context, _ []string) error { return runServe(ctx) }},
		"publish":   {"publish realistic meeting traffic to NATS", runPublish},
		"receive":   {"receive, verify and count webhooks", runReceive},
		"bench":     {"run the end-to-end benchmark", runBench},
		"endpoints": {"list, pause and resume endpoints (asks a running replica)", runEndpoints},
		"status":    {"backlog, health and dead letters per endpoint (asks a running replica)", runStatus},
		"dlq":       {"list, show, replay and purge dead letters (asks a running replica)", runDLQ},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	name, args := "serve", os.Args[1:]
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		name, args = args[0], args[1:]
	}
	cmds := subcommands()
	cmd, ok := cmds[name]
	if !ok || name == "help" {
		fmt.Fprintln(os.Stderr, "usage: roomhook [subcommand] [flags]")
		names := make([]string, 0, len(cmds))
		for n := range cmds {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(os.Stderr, "  %-10s %s\n", n, cmds[n].summary)
		}
		if !ok && name != "help" {
			os.Exit(2)
		}
		return
	}
	if err := cmd.run(ctx, args); err != nil {
		fmt.Fprintln(os.Stderr, "roomhook:", err)
		os.Exit(1)
	}
}

func runServe(ctx context.Context) error {
	c, err := LoadConfig()
	if err != nil {
		return err
	}
	return serve(ctx, c, newLogger(c, os.Stderr))
}
