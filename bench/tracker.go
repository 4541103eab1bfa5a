package bench

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/roomhook/roomhook/receiver"
	"github.com/roomhook/roomhook/traffic"
)

// tracker follows the deliveries of one traffic run: how many arrived, when the last one did,
// and, when asked to, each event's time from publish to receipt.
type tracker struct {
	prefix string // rh-<run>-
	count  atomic.Int64
	first  atomic.Int64 // unix nanoseconds of the earliest receipt
	last   atomic.Int64 // unix nanoseconds of the latest receipt

	timed bool
	mu    sync.Mutex
	sent  map[string]time.Time
	lat   []time.Duration
}

func newTracker(run string, timed bool) *tracker {
	t := &tracker{prefix: traffic.IDPrefix + run + "-", timed: timed}
	if timed {
		t.sent = map[string]time.Time{}
	}
	return t
}

// published is PublishOptions.OnPublish.
func (t *tracker) published(id string, at time.Time) {
	if !t.timed {
		return
	}
	t.mu.Lock()
	t.sent[id] = at
	t.mu.Unlock()
}

// received is called for every delivery a receiver accepts.
func (t *tracker) received(d receiver.Delivery) {
	if !strings.HasPrefix(d.ID, t.prefix) {
		return
	}
	t.count.Add(1)
	at := d.At.UnixNano()
	for {
		cur := t.first.Load()
		if (cur != 0 && at >= cur) || t.first.CompareAndSwap(cur, at) {
			break
		}
	}
	for {
		cur := t.last.Load()
		if at <= cur || t.last.CompareAndSwap(cur, at) {
			break
		}
	}
	if t.timed {
		t.mu.Lock()
		if s, ok := t.sent[d.ID]; ok {
			t.lat = append(t.lat, d.At.Sub(s))
		}
		t.mu.Unlock()
	}
}

func (t *tracker) firstReceipt() time.Time { return time.Unix(0, t.first.Load()) }

func (t *tracker) lastReceipt() time.Time { return time.Unix(0, t.last.Load()) }

// wait waits until n deliveries arrived; the timeout grows with n.
func (t *tracker) wait(ctx context.Context, n int64, what string) error {
	timeout := time.Minute + time.Duration(n)*time.Millisecond
	deadline := time.Now().Add(timeout)
	for t.count.Load() < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %d of %d deliveries after %s", what, t.count.Load(), n, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// percentileMS is the p-th percentile (0-100) of the latencies, in milliseconds, by the
// nearest-rank method.
func (t *tracker) percentileMS(p float64) float64 {
	t.mu.Lock()
	lat := slices.Clone(t.lat)
	t.mu.Unlock()
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	rank := int(math.Ceil(p / 100 * float64(len(lat))))
	rank = min(max(rank, 1), len(lat))
	return float64(lat[rank-1]) / float64(time.Millisecond)
}

// routing sends a receiver's deliveries to whichever tracker is current, so one receiver can
// serve a warm-up and then the measurement.
type routing struct{ cur atomic.Pointer[tracker] }

func (r *routing) onEvent(d receiver.Delivery) {
	if t := r.cur.Load(); t != nil {
		t.received(d)
	}
}

func (r *routing) follow(t *tracker) *tracker {
	r.cur.Store(t)
	return t
}
