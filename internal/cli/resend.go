package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/roomhook/roomhook/admin"
)

const resendUsage = `roomhook resend --endpoint <id|url> --since <when> [--until <when>] [--room R] [--event E] [--dry-run] [flags]

  Queues the events still in the events stream again for one endpoint, in stream order per
  room, with their original ids and bodies, through a running replica, and prints how many.
  The endpoint gets what roomhook sends it as events arrive: a global endpoint every event
  its event filter takes; a per-room endpoint only the events of rooms that registered it.
  --since is required (RFC 3339 time, date, or a time ago such as 90m, 12h, 2d), and must not
  be before the oldest event the stream still holds: the answer says how far back it reaches.
  --dry-run counts without queueing. Running it again resends again; to retry a request that
  failed part way without doubling what it queued, give the same --nonce within 2 minutes.`

// Resend is `roomhook resend`: queue events from the events stream again for one endpoint.
func Resend(ctx context.Context, args []string) error {
	return resendCommand(ctx, args, os.Stdout, os.Stderr)
}

func resendCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, o := newAdminFlags("resend", resendUsage, stderr)
	endpoint := fs.String("endpoint", "", "endpoint id or URL (roomhook endpoints list shows them); required")
	since := fs.String("since", "", "events stored at or after: RFC 3339 time, date, or a time ago (90m, 12h, 2d); required")
	until := fs.String("until", "", "events stored at or before: same forms as --since (default: up to the last event)")
	room := fs.String("room", "", "only this room id")
	event := fs.String("event", "", "only this event name, e.g. participant_joined")
	dryRun := fs.Bool("dry-run", false, "count what would be queued, queue nothing")
	nonce := fs.String("nonce", "", "names this request in the queued messages' ids: the same nonce within 2 minutes queues nothing twice (default: a new one)")
	rest, help, err := parseArgs(fs, args)
	if help || err != nil {
		return err
	}
	if len(rest) > 0 {
		fs.Usage()
		return fmt.Errorf("resend: unexpected %q: %w", rest[0], errUsage)
	}
	if *endpoint == "" {
		return errors.New("resend: --endpoint is required (roomhook endpoints list shows every id and URL)")
	}
	now := time.Now()
	r := admin.ResendRequest{Endpoint: *endpoint, Room: *room, Event: *event, DryRun: *dryRun, Nonce: *nonce}
	if r.Nonce == "" {
		r.Nonce = admin.NewNonce()
	}
	// Without --since the replica refuses, saying how far back the stream reaches.
	if *since != "" {
		if r.Since, err = parseWhen(*since, now); err != nil {
			return fmt.Errorf("resend: --since %w", err)
		}
	}
	if *until != "" {
		if r.Until, err = parseWhen(*until, now); err != nil {
			return fmt.Errorf("resend: --until %w", err)
		}
	}
	err = query(o, stdout, func(c *admin.Client) (admin.ResendResult, error) { return c.Resend(ctx, r) }, printResend)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, admin.ErrTimeout) && !r.DryRun:
		return fmt.Errorf("resend: %w; to go on without doubling what was queued, run it again within 2 minutes with --nonce %s", err, r.Nonce)
	}
	return fmt.Errorf("resend: %w", err)
}

func printResend(w io.Writer, res admin.ResendResult) {
	kind := "global"
	if !res.Global {
		kind = "per-room: only rooms that registered it"
	}
	fmt.Fprintf(w, "endpoint %s %s (%s)\n", res.EndpointID, res.EndpointURL, kind)
	fmt.Fprintf(w, "window %s to %s; the events stream reaches back to %s\n", clock(res.Since), clock(res.Until), clock(res.StreamFirst))
	events := count(uint64(res.Matched), "event")
	rooms := count(uint64(res.Rooms), "room")
	switch {
	case res.DryRun:
		fmt.Fprintf(w, "dry run: %s of %s would be queued; nothing was queued\n", events, rooms)
	default:
		fmt.Fprintf(w, "queued %d of %s matched, of %s, in stream order per room\n", res.Queued, events, rooms)
	}
	if res.Duplicates > 0 {
		fmt.Fprintf(w, "%d already queued by this same request (nonce %s) moments ago\n", res.Duplicates, res.Nonce)
	}
	if res.NotRouted > 0 {
		fmt.Fprintf(w, "%s in the window not for this endpoint (its event filter, or rooms that did not register it)\n", count(uint64(res.NotRouted), "event"))
	}
	if res.Invalid > 0 {
		fmt.Fprintf(w, "%s in the window invalid (dead-lettered, never delivered): not resent\n", count(uint64(res.Invalid), "event"))
	}
	if res.Paused && !res.DryRun && res.Queued > 0 {
		fmt.Fprintln(w, "the endpoint is paused: they go out once it is resumed")
	}
}
