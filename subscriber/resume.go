package subscriber

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ResumeInOrder prepares a new owner of a consumer to start where the previous owner stopped
// without breaking stream order. Deliveries the previous owner left unsettled come back from
// the server at once when it handed them back, or when their ack wait ends when it died, and
// in the order they were handed back or expired, which need not be stream order. ResumeInOrder
// returns a callback for Consume that collects them, passes them to handle sorted by stream
// sequence, and only then passes on anything newer (kept meanwhile; at most a pull's worth).
// With nothing left pending it returns handle as is.
func ResumeInOrder(ctx context.Context, cons jetstream.Consumer, takeover time.Duration, handle func(jetstream.Msg)) (func(jetstream.Msg), error) {
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("consumer info: %w", err)
	}
	if info.NumAckPending == 0 {
		return handle, nil
	}
	g := &resumeGate{handle: handle, last: info.Delivered.Stream, want: info.NumAckPending, seen: map[uint64]bool{}}
	// Orphans acknowledged or deleted meanwhile never come back: do not wait for them forever.
	time.AfterFunc(4*AckWait(takeover), g.release)
	return g.add, nil
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
}

type orphan struct {
	seq uint64
	msg jetstream.Msg
}

func (g *resumeGate) add(m jetstream.Msg) {
	g.mu.Lock()
	defer g.mu.Unlock()
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
	g.releaseLocked()
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
