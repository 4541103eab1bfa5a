package traffic

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/internal/backoff"
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

// AckTimeout is the default of PublishOptions.AckTimeout. Give the JetStream handle
// jetstream.WithPublishAsyncTimeout(AckTimeout) as well, so the client also forgets a lost
// acknowledgement instead of holding it among its pending ones.
const AckTimeout = 10 * time.Second

// streamLookupTimeout bounds each request that looks for the events stream.
const streamLookupTimeout = 5 * time.Second

// Jittered waits of the polls for the events stream and of the retries of a publish that
// the client refused for too many pending acknowledgements: short, so neither start nor
// publishing speed suffers.
const (
	streamPollFirst, streamPollLimit = 50 * time.Millisecond, 500 * time.Millisecond
	stallRetryFirst, stallRetryLimit = 2 * time.Millisecond, 50 * time.Millisecond
)

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
	// AckTimeout bounds the wait for each publish's acknowledgement (default AckTimeout): one
	// that does not come in time counts as failed and is sent again synchronously, so a lost
	// acknowledgement cannot hang Publish.
	AckTimeout time.Duration
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
	b := backoff.New(streamPollFirst, streamPollLimit)
	for {
		rctx, cancel := context.WithTimeout(ctx, streamLookupTimeout)
		_, err := js.StreamNameBySubject(rctx, probe)
		cancel()
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, jetstream.ErrStreamNotFound):
			return fmt.Errorf("traffic: looking up the events stream: %w", err)
		case time.Now().After(deadline):
			return fmt.Errorf("traffic: %w %q (subjects %s)", ErrNoStream, region, schema.EventsSubjects(region))
		}
		if !b.Wait(ctx) {
			return ctx.Err()
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
// gave them. A publish whose acknowledgement fails, or does not come within AckTimeout, is
// sent again synchronously; since the retry can land behind later events of its room, Retried
// says how often that happened.
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
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = AckTimeout
	}
	p := &publisher{js: js, ring: make([]jetstream.PubAckFuture, opts.Window), ackTimeout: opts.AckTimeout}
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

	ackTimeout time.Duration // PublishOptions.AckTimeout
}

func (p *publisher) stats(start time.Time) PublishStats {
	s := p.st
	s.Elapsed = time.Since(start)
	return s
}

func (p *publisher) send(ctx context.Context, region string, evt *roomhookv1.Event) error {
	var stalled *backoff.Backoff
	for {
		f, err := schema.PublishAsync(p.js, region, evt)
		switch {
		case err == nil:
			p.ring[(p.oldest+p.pending)%len(p.ring)] = f
			p.pending++
			return nil
		case errors.Is(err, jetstream.ErrTooManyStalledMsgs):
			// The connection's own limit of pending acknowledgements; wait for some to arrive.
			if stalled == nil {
				stalled = backoff.New(stallRetryFirst, stallRetryLimit)
			}
			t := time.NewTimer(stalled.Next())
			select {
			case <-p.js.PublishAsyncComplete():
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
			t.Stop()
		default:
			return err
		}
	}
}

// settleOldest waits for the oldest pending acknowledgement, at most p.ackTimeout.
func (p *publisher) settleOldest(ctx context.Context) error {
	f := p.ring[p.oldest]
	p.ring[p.oldest] = nil
	p.oldest = (p.oldest + 1) % len(p.ring)
	p.pending--
	// Most acknowledgements are in by now: take those without starting a timer.
	select {
	case ack := <-f.Ok():
		p.stored(ack)
		return nil
	case err := <-f.Err():
		return p.retry(ctx, f, err)
	default:
	}
	t := time.NewTimer(p.ackTimeout)
	defer t.Stop()
	select {
	case ack := <-f.Ok():
		p.stored(ack)
		return nil
	case err := <-f.Err():
		return p.retry(ctx, f, err)
	case <-t.C:
		return p.retry(ctx, f, fmt.Errorf("no acknowledgement within %s", p.ackTimeout))
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retry sends the message of a failed asynchronous publish again, synchronously, waiting
// for its acknowledgement as long as for an asynchronous one.
func (p *publisher) retry(ctx context.Context, f jetstream.PubAckFuture, err error) error {
	p.st.Retried++
	rctx, cancel := context.WithTimeout(ctx, p.ackTimeout)
	defer cancel()
	ack, rerr := p.js.PublishMsg(rctx, f.Msg())
	if rerr != nil {
		return fmt.Errorf("traffic: publish failed (%v), and so did its retry: %w", err, rerr)
	}
	p.stored(ack)
	return nil
}

// stored counts a stored publish.
func (p *publisher) stored(ack *jetstream.PubAck) {
	p.st.Published++
	if ack.Duplicate {
		p.st.Duplicates++
	}
}
