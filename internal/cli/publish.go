package cli

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/internal/server"
	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/traffic"
)

// repeatedFlag collects a flag given several times, like --room-webhook a --room-webhook b.
type repeatedFlag []string

// String is the values, comma-separated (flag.Value).
func (r *repeatedFlag) String() string { return strings.Join(*r, ",") }

// Set adds one value (flag.Value).
func (r *repeatedFlag) Set(v string) error {
	*r = append(*r, v)
	return nil
}

// Publish is `roomhook publish`: realistic meeting traffic onto the events stream.
func Publish(ctx context.Context, args []string) error {
	// The NATS credentials and TLS settings, and the default region, are the dispatcher's own
	// ROOMHOOK_* variables.
	c, err := server.LoadConfig(server.ScopeClient)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: roomhook publish [flags]\n\nPublishes realistic meeting traffic (protobuf roomhook.v1.Event, Nats-Msg-Id = event id rh-<run>-<room>-<seq>).\n\nFlags:")
		fs.PrintDefaults()
	}
	natsURL := fs.String("nats", "nats://127.0.0.1:4222", "NATS server URL (credentials and TLS from ROOMHOOK_NATS_* variables)")
	region := fs.String("region", c.Region, "region of the subjects roomhook.events.<region>.<room>.<event>")
	rooms := fs.Int("rooms", 3, "meetings running at the same time")
	participants := fs.Int("participants", 4, "participants per meeting")
	rate := fs.Float64("rate", 0, "events per second; 0 = as fast as possible")
	events := fs.Int("events", 0, "stop after this many events, starting new rooms as meetings end; 0 = play each room's meeting once")
	var roomWebhooks repeatedFlag
	fs.Var(&roomWebhooks, "room-webhook", "per-room webhook URL registered by every room_created (repeatable)")
	seed := fs.Uint64("seed", 0, "random seed; 0 = a random one (printed, to replay the same traffic)")
	run := fs.String("run", "", "run name in room and event ids, [a-z0-9]+; default derived from the seed")
	window := fs.Int("window", traffic.DefaultWindow, "publishes awaiting acknowledgement at most")
	wait := fs.Duration("wait", 30*time.Second, "how long to wait for the events stream (the dispatcher creates it)")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if err := schema.ValidateRegion(*region); err != nil {
		return fmt.Errorf("publish: --region: %w", err)
	}
	if _, err := endpoint.ParseWebhookURLs(roomWebhooks); err != nil {
		return fmt.Errorf("publish: --room-webhook: %w", err)
	}
	if *seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		*seed = binary.LittleEndian.Uint64(b[:]) | 1
	}
	g, err := traffic.NewGenerator(traffic.Config{
		Run: *run, Seed: *seed, Rooms: *rooms, Participants: *participants,
		RoomWebhooks: roomWebhooks, Start: time.Now(), Continuous: *events > 0,
	})
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	nc, err := server.ConnectNATS(c, *natsURL, log)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	defer nc.Close()
	// A lost acknowledgement fails its publish after traffic.AckTimeout (and is sent again)
	// instead of staying pending for good.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(traffic.AckTimeout))
	if err != nil {
		return fmt.Errorf("publish: jetstream: %w", err)
	}

	fmt.Fprintf(os.Stderr, "publishing run %s (--seed %d): %d rooms x %d participants to %s, region %s, %s\n",
		g.Run(), *seed, *rooms, *participants, nc.ConnectedUrlRedacted(), *region, rateText(*rate))
	var sent atomic.Int64
	stopProgress := progress(os.Stderr, &sent)
	st, err := traffic.Publish(ctx, js, g, traffic.PublishOptions{
		Region: *region, Rate: *rate, Events: *events, Window: *window, WaitForStream: *wait,
		OnPublish: func(string, time.Time) { sent.Add(1) },
	})
	stopProgress()
	fmt.Fprintf(os.Stderr, "published %d events in %s (%.0f events/s), run %s", st.Published, st.Elapsed.Round(time.Millisecond), st.Rate(), g.Run())
	if st.Duplicates > 0 {
		fmt.Fprintf(os.Stderr, "; %d were already stored (same ids published before: use another --run or --seed)", st.Duplicates)
	}
	if st.Retried > 0 {
		fmt.Fprintf(os.Stderr, "; %d were published again after an error and may be stored out of order", st.Retried)
	}
	fmt.Fprintln(os.Stderr)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func rateText(rate float64) string {
	if rate <= 0 {
		return "as fast as possible"
	}
	return fmt.Sprintf("%g events/s", rate)
}

// progress prints the count every second until the returned stop is called.
func progress(w io.Writer, sent *atomic.Int64) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last := int64(0)
		for {
			select {
			case <-done:
				return
			case <-t.C:
				n := sent.Load()
				fmt.Fprintf(w, "  %d events sent (%d/s)\n", n, n-last)
				last = n
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
