package traffic

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/roomhookv1"
)

// Source hands out events to publish; *Generator is one.
type Source interface {
	// Next returns the next event and false when there are no more.
	Next() (*roomhookv1.Event, bool)
}

// DefaultWindow is how many publishes may wait for their acknowledgement at once when
// PublishOptions.Window is zero.
const DefaultWindow = 1024

// drainTimeout bounds the wait for the last acknowledgements.
const drainTimeout = 30 * time.Second

// PublishOptions tune Publish.
type PublishOptions struct {
	// Region is the subject region (default "default").
	Region string
	// Rate is the target in events per second; 0 publishes as fast as the window allows.
	Rate float64
	// Events stops after this many events; 0 publishes until the Source runs out.
	Events int
	// Window bounds the publishes awaiting acknowledgement (default DefaultWindow).
	Window int
	// OnPublish, when set, is called just before each event is sent, with its id; benchmarks
	// use it to time events from publish to receipt.
	OnPublish func(id string, at time.Time)
	// WaitForStream is how long to wait for a stream that stores the region's events (the
	// dispatcher creates it when it starts); 0 checks once.
	WaitForStream time.Duration
}

// ErrNoStream: no JetStream stream stores the region's event subjects, so publishing would
// fail; start the dispatcher (it creates the stream) or create it.
var ErrNoStream = errors.New("no stream stores roomhook events for this region")

// waitForStream polls until a stream covers the region's subjects. Publishing before it exists
// fails, and the synchronous retries of failed publishes would store those events behind later
// ones of their rooms.
func waitForStream(ctx context.Context, js jetstream.JetStream, region string, wait time.Duration) error {
	probe := schema.SubjectPrefix + "." + region + ".probe.room_created"
	deadline := time.Now().Add(wait)
	for {
		_, err := js.StreamNameBySubject(ctx, probe)
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, jetstream.ErrStreamNotFound):
			return fmt.Errorf("traffic: looking up the events stream: %w", err)
		case time.Now().After(deadline):
			return fmt.Errorf("traffic: %w %q (subjects %s)", ErrNoStream, region, schema.EventsSubjects(region))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// PublishStats is what Publish did.
type PublishStats struct {
	Published  int           // events stored by JetStream (duplicates included)
	Duplicates int           // events JetStream already had (same Nats-Msg-Id within its window)
	Retried    int           // asynchronous publishes that failed and were sent again synchronously
	Elapsed    time.Duration // from the first publish to the last acknowledgement
}

// Rate is the achieved rate in events per second.
func (s PublishStats) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Published) / s.Elapsed.Seconds()
}

// Publish sends src's events to JetStream with schema.PublishAsync (subject from the region,
// room and event name; Nats-Msg-Id = event id), paced to opts.Rate, until the Source runs out,
// opts.Events are sent or ctx ends. It waits for every acknowledgement before returning. It
// first makes sure a stream stores the region's events (see WaitForStream); the error then
// wraps ErrNoStream.
//
// One connection publishes in order, so each room's events are stored in the order the Source
// gave them. A publish whose acknowledgement fails is sent again synchronously; since the
// retry can land behind later events of its room, Retried says how often that happened.
func Publish(ctx context.Context, js jetstream.JetStream, src Source, opts PublishOptions) (PublishStats, error) {
	if opts.Region == "" {
		opts.Region = "default"
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.Rate < 0 {
		return PublishStats{}, fmt.Errorf("%w: rate must not be negative", ErrConfig)
	}
	if err := waitForStream(ctx, js, opts.Region, opts.WaitForStream); err != nil {
		return PublishStats{}, err
	}
	p := &publisher{js: js, ring: make([]jetstream.PubAckFuture, opts.Window)}
	start := time.Now()
	var interval time.Duration
	if opts.Rate > 0 {
		interval = time.Duration(float64(time.Second) / opts.Rate)
	}
	for sent := 0; opts.Events <= 0 || sent < opts.Events; sent++ {
		if err := ctx.Err(); err != nil {
			break
		}
		evt, ok := src.Next()
		if !ok {
			break
		}
		if interval > 0 {
			// Pace against the schedule, not the previous event, so short stalls are caught up;
			// sleeping below a millisecond costs more than it is worth.
			if ahead := time.Until(start.Add(time.Duration(sent) * interval)); ahead > time.Millisecond {
				select {
				case <-time.After(ahead):
				case <-ctx.Done():
				}
			}
		}
		if p.pending == len(p.ring) {
			if err := p.settleOldest(ctx); err != nil {
				return p.stats(start), err
			}
		}
		if opts.OnPublish != nil {
			opts.OnPublish(evt.GetId(), time.Now())
		}
		if err := p.send(ctx, opts.Region, evt); err != nil {
			return p.stats(start), err
		}
	}
	// Acknowledgements of what was sent are awaited even when ctx has ended, so the stats say
	// what was stored; the bound keeps a lost server from hanging the caller.
	drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	defer cancel()
	for p.pending > 0 {
		if err := p.settleOldest(drain); err != nil {
			return p.stats(start), err
		}
	}
	return p.stats(start), ctx.Err()
}

type publisher struct {
	js      jetstream.JetStream
	ring    []jetstream.PubAckFuture // the window: pending acknowledgements from oldest
	oldest  int                      // index in ring of the oldest pending one
	pending int
	st      PublishStats
}

func (p *publisher) stats(start time.Time) PublishStats {
	s := p.st
	s.Elapsed = time.Since(start)
	return s
}

func (p *publisher) send(ctx context.Context, region string, evt *roomhookv1.Event) error {
	for {
		f, err := schema.PublishAsync(p.js, region, evt)
		switch {
		case err == nil:
			p.ring[(p.oldest+p.pending)%len(p.ring)] = f
			p.pending++
			return nil
		case errors.Is(err, jetstream.ErrTooManyStalledMsgs):
			// The connection's own limit of pending acknowledgements; wait for some to arrive.
			select {
			case <-p.js.PublishAsyncComplete():
			case <-time.After(10 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		default:
			return err
		}
	}
}

// settleOldest waits for the oldest pending acknowledgement.
func (p *publisher) settleOldest(ctx context.Context) error {
	f := p.ring[p.oldest]
	p.ring[p.oldest] = nil
	p.oldest = (p.oldest + 1) % len(p.ring)
	p.pending--
	select {
	case ack := <-f.Ok():
		p.st.Published++
		if ack.Duplicate {
			p.st.Duplicates++
		}
		return nil
	case err := <-f.Err():
		p.st.Retried++
		ack, rerr := p.js.PublishMsg(ctx, f.Msg())
		if rerr != nil {
			return fmt.Errorf("traffic: publish failed (%v), and so did its retry: %w", err, rerr)
		}
		p.st.Published++
		if ack.Duplicate {
			p.st.Duplicates++
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
