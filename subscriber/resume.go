package subscriber

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Resume prepares a new owner of a consumer to start where the previous owner stopped
// without breaking stream order. Deliveries the previous owner left unsettled come back from
// the server at once when it handed them back, or when their ack wait ends when it died, and
// in the order they were handed back or expired, which need not be stream order. Handle
// collects them, passes them on sorted by stream sequence, and only then passes on anything
// newer (kept meanwhile; at most a pull's worth).
//
// A Resume belongs to one run of one consumer: Stop it when the run ends, so that its
// release timer cannot fire into a later run.
type Resume struct {
	gate  *resumeGate // nil: nothing was pending, Handle passes everything on at once
	timer *time.Timer
	next  func(jetstream.Msg)
}

// ResumeInOrder reads the consumer's state and returns the Resume for one run; handle gets
// every message in order.
func ResumeInOrder(ctx context.Context, cons jetstream.Consumer, takeover time.Duration, handle func(jetstream.Msg)) (*Resume, error) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := cons.Info(rctx)
	if err != nil {
		return nil, fmt.Errorf("consumer info: %w", err)
	}
	r := &Resume{next: handle}
	if info.NumAckPending == 0 {
		return r, nil
	}
	r.gate = &resumeGate{handle: handle, last: info.Delivered.Stream, want: info.NumAckPending, seen: map[uint64]bool{}}
	// Orphans acknowledged or deleted meanwhile never come back: do not wait for them forever.
	r.timer = time.AfterFunc(4*AckWait(takeover), r.gate.release)
	return r, nil
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
