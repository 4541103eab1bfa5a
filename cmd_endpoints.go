package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/roomhook/roomhook/admin"
)

const endpointsUsage = `roomhook endpoints list|pause|resume [<id|url>] [flags]

  list            every endpoint, global and per room, with its state and breaker
  pause <id|url>  stop deliveries to an endpoint; its backlog waits in JetStream
  resume <id|url> deliver again, backlog first (also re-enables an endpoint disabled by 410 Gone)`

// runEndpoints is `roomhook endpoints`.
func runEndpoints(ctx context.Context, args []string) error {
	return endpointsCommand(ctx, args, os.Stdout, os.Stderr)
}

func endpointsCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, o := newAdminFlags("endpoints", endpointsUsage, stderr)
	rest, err := parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	op := ""
	if len(rest) > 0 {
		op = rest[0]
	}
	switch {
	case op == "list" && len(rest) == 1:
		return runAdmin(o, func(c *admin.Client) error {
			eps, err := c.ListEndpoints(ctx)
			if err != nil {
				return err
			}
			if o.json {
				return printJSON(stdout, admin.EndpointList{Endpoints: eps})
			}
			printEndpoints(stdout, eps)
			return nil
		})
	case (op == "pause" || op == "resume") && len(rest) == 2:
		return runAdmin(o, func(c *admin.Client) error {
			change := c.PauseEndpoint
			if op == "resume" {
				change = c.ResumeEndpoint
			}
			ep, err := change(ctx, rest[1])
			if err != nil {
				return err
			}
			if o.json {
				return printJSON(stdout, ep)
			}
			if op == "pause" {
				fmt.Fprintf(stdout, "paused %s %s: no deliveries until `roomhook endpoints resume %s`; its backlog waits in JetStream\n", ep.ID, ep.URL, ep.ID)
			} else {
				fmt.Fprintf(stdout, "resumed %s %s: deliveries start again, backlog first\n", ep.ID, ep.URL)
			}
			return nil
		})
	}
	fs.Usage()
	return fmt.Errorf("endpoints: %w", errUsage)
}

func printEndpoints(w io.Writer, eps []admin.Endpoint) {
	if len(eps) == 0 {
		fmt.Fprintln(w, "no endpoints: set ROOMHOOK_WEBHOOK_URLS or ROOMHOOK_ENDPOINTS_FILE, or register URLs with room_created")
		return
	}
	t := newTable(w)
	row(t, "ID", "URL", "KIND", "STATE", "BREAKER", "NOTE")
	for _, ep := range eps {
		kind := "per-room"
		if ep.Global {
			kind = "global"
		}
		note := ep.DisabledReason
		if note == "" {
			note = ep.BreakerReason
		}
		row(t, ep.ID, ep.URL, kind, ep.State(), ep.Breaker, orDash(note))
	}
	t.Flush()
}
