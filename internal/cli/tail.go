package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/internal/server"
	"github.com/roomhook/roomhook/internal/tail"
	"github.com/roomhook/roomhook/schema"
)

const tailUsage = `roomhook tail [--room R] [--event E] [--since T] [--json] [flags]

  Follows the events stream as events are stored, printing each as the webhook JSON its
  receivers get. With --since it starts from that time (RFC 3339, a date, or a time ago such as
  10m or 2d) and goes on live. It reads through an ordered consumer, which is ephemeral: it does
  not touch delivery, acks nothing, and leaves nothing behind. Ctrl-C stops it.`

// tailRequestTimeout bounds creating the ordered consumer.
const tailRequestTimeout = 10 * time.Second

// Tail is `roomhook tail`: follow events as they are stored, rendered as webhook bodies.
func Tail(ctx context.Context, args []string) error {
	return tailCommand(ctx, args, os.Stdout, os.Stderr)
}

func tailCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s\n\nFlags:\n", tailUsage)
		fs.PrintDefaults()
	}
	natsURL := fs.String("nats", "", "NATS server URL (default: ROOMHOOK_NATS_URL, else nats://<ROOMHOOK_EMBEDDED_LISTEN>)")
	region := fs.String("region", "", "region (default: ROOMHOOK_REGION, else default)")
	room := fs.String("room", "", "only this room id")
	event := fs.String("event", "", "only this event name, e.g. participant_joined")
	since := fs.String("since", "", "start at this time instead of now: RFC 3339 time, date, or a time ago (10m, 12h, 2d)")
	asJSON := fs.Bool("json", false, "print only the webhook bodies, one per line (NDJSON), for jq")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}

	c, err := server.LoadConfig(server.ScopeClient)
	if err != nil {
		return err
	}
	f := tail.Filter{Region: *region, Room: *room, Event: *event, MaxEventBytes: c.MaxEventBytes}
	if f.Region == "" {
		f.Region = c.Region
	}
	if *since != "" {
		if f.Since, err = parseWhen(*since, time.Now()); err != nil {
			return fmt.Errorf("tail: --since %w", err)
		}
	}
	url := *natsURL
	if url == "" {
		url = c.NATSURL
	}
	if url == "" {
		url = "nats://" + c.EmbeddedListen
	}
	// The CLI is short-lived: it reports a lost connection as an error, it does not log it.
	nc, err := server.ConnectNATS(c, url, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return fmt.Errorf("%w (is NATS at %s? set ROOMHOOK_NATS_URL or --nats)", err, server.RedactNATSURL(url))
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("tail: %w", err)
	}
	startCtx, cancel := context.WithTimeout(ctx, tailRequestTimeout)
	t, err := tail.Start(startCtx, js, f)
	cancel()
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("%w: no events stream %s yet (a dispatcher creates it when it starts)", err, schema.EventsStreamName(f.Region))
		}
		return err
	}
	defer t.Stop()
	subject, _ := f.Subject() // Start checked it
	if !*asJSON {
		from := "now"
		if !f.Since.IsZero() {
			from = f.Since.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(stderr, "following %s from %s (Ctrl-C stops)\n", subject, from)
	}
	return followEvents(ctx, t, stdout, stderr, *asJSON)
}

// followEvents prints events until ctx ends: with asJSON the bodies alone, else one line per
// event with when it was stored, its room, name and stream sequence before the body. Invalid
// events go to stderr with the reason the dispatcher would dead-letter them for.
func followEvents(ctx context.Context, t *tail.Tail, stdout, stderr io.Writer, asJSON bool) error {
	for {
		ev, err := t.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil // Ctrl-C: the normal way out
			}
			return err
		}
		if ev.Err != nil {
			fmt.Fprintf(stderr, "seq %d on %s: %v\n", ev.Seq, ev.Subject, ev.Err)
			continue
		}
		if asJSON {
			fmt.Fprintf(stdout, "%s\n", ev.Body)
			continue
		}
		fmt.Fprintf(stdout, "%s  %s  %s  #%d  %s\n", ev.Stored.UTC().Format(time.RFC3339), ev.Room, ev.Name, ev.Seq, ev.Body)
	}
}
