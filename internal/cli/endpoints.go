package cli

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/roomhook/roomhook/admin"
)

const endpointsUsage = `roomhook endpoints list|pause|resume [<id|url>] [flags]

  list            every endpoint, global and per room, with its state and breaker
  pause <id|url>  stop deliveries to an endpoint; its backlog waits in JetStream
  resume <id|url> deliver again, backlog first (also re-enables an endpoint disabled by 410 Gone)`

// Endpoints is `roomhook endpoints`: list, pause and resume endpoints, through a running replica.
func Endpoints(ctx context.Context, args []string) error {
	return endpointsCommand(ctx, args, os.Stdout, os.Stderr)
}

func endpointsCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, o := newAdminFlags("endpoints", endpointsUsage, stderr)
	rest, help, err := parseArgs(fs, args)
	if help || err != nil {
		return err
	}
	op := ""
	if len(rest) > 0 {
		op = rest[0]
	}
	switch {
	case op == "list" && len(rest) == 1:
		return query(o, stdout, func(c *admin.Client) (admin.EndpointList, error) {
			eps, err := c.ListEndpoints(ctx)
			return admin.EndpointList{Endpoints: eps}, err
		}, printEndpoints)
	case (op == "pause" || op == "resume") && len(rest) == 2:
		return query(o, stdout, func(c *admin.Client) (admin.Endpoint, error) {
			if op == "resume" {
				return c.ResumeEndpoint(ctx, rest[1])
			}
			return c.PauseEndpoint(ctx, rest[1])
		}, func(w io.Writer, ep admin.Endpoint) {
			if op == "pause" {
				fmt.Fprintf(w, "paused %s %s: no deliveries until `roomhook endpoints resume %s`; its backlog waits in JetStream\n", ep.ID, ep.URL, ep.ID)
			} else {
				fmt.Fprintf(w, "resumed %s %s: deliveries start again, backlog first\n", ep.ID, ep.URL)
			}
		})
	}
	fs.Usage()
	return fmt.Errorf("endpoints: %w", errUsage)
}

func printEndpoints(w io.Writer, list admin.EndpointList) {
	eps := list.Endpoints
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
