// Command roomhook turns room events published on NATS JetStream by plugNmeet and LiveKit
// media nodes into signed webhooks, delivered in order per room to every subscribed URL.
//
// Usage:
//
//	roomhook                 run the dispatcher (configuration from ROOMHOOK_* variables)
//	roomhook help            list the subcommands
//
// This file only lists the subcommands; they live in internal/cli, the dispatcher's wiring in
// internal/server.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/roomhook/roomhook/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := cli.Main(ctx, []cli.Command{
		{Name: "serve", Summary: "run the dispatcher (the default)", Run: cli.Serve(version)},
		{Name: "publish", Summary: "publish realistic meeting traffic to NATS", Run: cli.Publish},
		{Name: "receive", Summary: "receive, verify and count webhooks", Run: cli.Receive},
		{Name: "bench", Summary: "run the end-to-end benchmark", Run: cli.Bench},
		{Name: "endpoints", Summary: "list, pause and resume endpoints (asks a running replica)", Run: cli.Endpoints},
		{Name: "status", Summary: "backlog, health and dead letters per endpoint (asks a running replica)", Run: cli.Status},
		{Name: "dlq", Summary: "list, show, replay and purge dead letters (asks a running replica)", Run: cli.DLQ},
		{Name: "resend", Summary: "queue events from the events stream again for one endpoint (asks a running replica)", Run: cli.Resend},
		{Name: "tail", Summary: "follow events as they are stored, printed as webhook JSON (touches no delivery)", Run: cli.Tail},
	}, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}
