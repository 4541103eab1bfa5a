package subscriber

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Resume prepares a new owner of a consumer to start where the previous owner stopped
// without breaking stream order. Deliveries the previous owner left unsettled would come back
// from the server at once when it handed them back, or when their ack wait ends when it died,
// and in the order they were handed back or expired, which need not be stream order, while
// anything newer comes at once.
//
// Where the server can (nats-server 2.14 and later), ResumeInOrder resets the consumer to its
// ack floor first: the server forgets what it handed the previous owner and delivers again
// from the oldest unsettled message, in stream order, at once, and Handle passes everything
// on. On older servers, Handle collects the previous owner's deliveries as they come back,
// passes them on sorted by stream sequence, and only then anything newer (kept meanwhile; at
// most a pull's worth).
//
// A Resume belongs to one run of one consumer: Stop it when the run ends, so that its
// release timer cannot fire into a later run.
type Resume struct {
	gate  *resumeGate // nil: nothing was pending, or the consumer was reset; Handle passes everything on at once
	timer *time.Timer
	next  func(jetstream.Msg)

	// The delivery sequence Admit expects next (0: not watched, the server cannot reset),
	// and whether a reset was asked for mid-run and its first delivery has not come yet.
	js              jetstream.JetStream
	stream, name    string
	nextDelivery    uint64
	awaitingRestart bool

	// ResetFailed says why the consumer could not be reset at the start, when it could not:
	// the run then resumes behind the gate, as on servers before 2.14.
	ResetFailed error
}

// ResumeInOrder reads the consumer's state, resets it to its ack floor when the previous owner
// left deliveries pending and the server supports it, and returns the Resume for one run;
// handle gets every message in order. Call it before the run pulls: a reset forgets what was
// handed out before it.
func ResumeInOrder(ctx context.Context, js jetstream.JetStream, cons jetstream.Consumer, takeover time.Duration, handle func(jetstream.Msg)) (*Resume, error) {
	return resumeInOrder(ctx, js, cons, takeover, handle, CanResetConsumers(js.Conn()))
}

// resumeInOrder is ResumeInOrder with the choice made: reset the consumer, or gate its
// deliveries as on servers that cannot reset.
func resumeInOrder(ctx context.Context, js jetstream.JetStream, cons jetstream.Consumer, takeover time.Duration, handle func(jetstream.Msg), reset bool) (*Resume, error) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := cons.Info(rctx)
	if err != nil {
		return nil, fmt.Errorf("consumer info: %w", err)
	}
	r := &Resume{next: handle, js: js, stream: info.Stream, name: info.Name}
	if info.NumAckPending == 0 {
		if reset {
			r.nextDelivery = info.Delivered.Consumer + 1
		}
		return r, nil
	}
	if reset {
		_, err := js.ResetConsumer(rctx, info.Stream, info.Name)
		if err == nil {
			r.nextDelivery = 1 // a reset starts the delivery sequence over
			return r, nil
		}
		// The consumer's leader may be older than the server we are connected to (a
		// rolling upgrade), or busy: gate instead. A reset that still takes effect later
		// only sends again what this run then recognises.
		r.ResetFailed = fmt.Errorf("reset consumer %s to its ack floor: %w", info.Name, err)
	}
	r.gate = &resumeGate{handle: handle, last: info.Delivered.Stream, want: info.NumAckPending, seen: map[uint64]bool{}}
	// Orphans acknowledged or deleted meanwhile never come back: do not wait for them forever.
	r.timer = time.AfterFunc(4*AckWait(takeover), r.gate.release)
	return r, nil
}

// ErrDeliveryLost is what Admit reports when a delivery of the consumer never arrived.
var ErrDeliveryLost = errors.New("a delivery was lost on its way")

// Admit checks a delivery's place in the consumer's delivery sequence, which the server
// numbers without gaps. A gap means a delivery was lost on its way (a consumer leader changed
// while it was in transit, or it went to a pull request nobody reads any more): the server
// would send that event again only after its ack wait, behind newer ones. Admit then resets
// the consumer to its ack floor, so the lost one comes again at once, in stream order, with
// everything after it, and reports false with an error wrapping ErrDeliveryLost: the caller
// drops this delivery (no ack, no nak; it comes again too). Deliveries that were on their way
// before the reset are dropped the same way, silently, until the first one after it.
//
// Admit is called from one goroutine, for every delivery, before anything else is done
// with it. On servers that cannot reset it admits everything.
func (r *Resume) Admit(ctx context.Context, meta *jetstream.MsgMetadata) (bool, error) {
	if r.nextDelivery == 0 {
		return true, nil
	}
	got := meta.Sequence.Consumer
	switch {
	case r.awaitingRestart && got != 1:
		return false, nil // sent before the reset; it comes again after it
	case got == r.nextDelivery || r.awaitingRestart:
		r.awaitingRestart = false
		r.nextDelivery = got + 1
		return true, nil
	case got < r.nextDelivery:
		// Numbered again by a new leader that had not heard of the last deliveries: an
		// event sent twice, which the caller recognises; the sequence goes on from here.
		r.nextDelivery = got + 1
		return true, nil
	}
	lost := fmt.Errorf("%w: consumer %s delivered #%d, expected #%d (stream sequence %d)",
		ErrDeliveryLost, r.name, got, r.nextDelivery, meta.Sequence.Stream)
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := r.js.ResetConsumer(rctx, r.stream, r.name); err != nil {
		// The lost delivery comes back after its ack wait; deliver what comes meanwhile
		// rather than nothing, as on servers that cannot reset.
		r.nextDelivery = 0
		return true, fmt.Errorf("%w; resetting the consumer failed, so it comes back late: %w", lost, err)
	}
	r.nextDelivery, r.awaitingRestart = 1, true
	return false, lost
}

// CanResetConsumers reports whether the server nc is connected to resets consumers
// ($JS.API.CONSUMER.RESET, nats-server 2.14 and later).
func CanResetConsumers(nc *nats.Conn) bool {
	major, minor, ok := serverVersion(nc.ConnectedServerVersion())
	return ok && (major > 2 || major == 2 && minor >= 14)
}

// serverVersion reads "2.15.2" (or "2.15.2-beta") as major 2, minor 15.
func serverVersion(v string) (major, minor int, ok bool) {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	return major, minor, err1 == nil && err2 == nil
}

// Handle is the callback for Consume.
func (r *Resume) Handle(m jetstream.Msg) {
	if r.gate == nil {
		r.next(m)
		return
	}
	r.gate.add(m)
}

// Stop ends the run: the release timer is stopped and nothing more is passed on.
func (r *Resume) Stop() {
	if r.timer != nil {
		r.timer.Stop()
	}
	if r.gate != nil {
		r.gate.stop()
	}
}

type resumeGate struct {
	mu      sync.Mutex
	handle  func(jetstream.Msg)
	last    uint64 // highest sequence the previous owner was given
	want    int    // deliveries it left pending
	seen    map[uint64]bool
	orphans []orphan
	newer   []jetstream.Msg
	open    bool
	stopped bool
}

type orphan struct {
	seq uint64
	msg jetstream.Msg
}

func (g *resumeGate) add(m jetstream.Msg) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return
	}
	if g.open {
		g.handle(m)
		return
	}
	meta, err := m.Metadata()
	if err != nil || meta.Sequence.Stream > g.last {
		g.newer = append(g.newer, m)
		return
	}
	if !g.seen[meta.Sequence.Stream] {
		g.seen[meta.Sequence.Stream] = true
		g.orphans = append(g.orphans, orphan{meta.Sequence.Stream, m})
	}
	if len(g.orphans) >= g.want {
		g.releaseLocked()
	}
}

func (g *resumeGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.stopped {
		g.releaseLocked()
	}
}

func (g *resumeGate) stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stopped = true
	g.orphans, g.newer = nil, nil
}

func (g *resumeGate) releaseLocked() {
	if g.open {
		return
	}
	g.open = true
	sort.Slice(g.orphans, func(i, j int) bool { return g.orphans[i].seq < g.orphans[j].seq })
	for _, o := range g.orphans {
		g.handle(o.msg)
	}
	for _, m := range g.newer {
		g.handle(m)
	}
	g.orphans, g.newer, g.seen = nil, nil, nil
}
