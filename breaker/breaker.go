package breaker

import (
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/internal/backoff"
	"github.com/roomhook/roomhook/subscriber"
)

// Breaker defaults: how many consecutive failed attempts on one replica open an endpoint's
// breaker, and how the wait between probes grows while it stays open.
const (
	DefaultFailures     = 5
	firstProbeAfter     = time.Second
	DefaultMaxProbeWait = time.Minute
)

// Breakers is the circuit breaker of every endpoint, shared by all replicas. When an endpoint
// keeps failing, its breaker opens: no replica attempts it until a probe is due, then exactly
// one replica (the one that wins a compare-and-set on the shared record) sends one delivery as
// the probe. Success closes the breaker and every lane resumes in order; failure reopens it
// with a longer wait. While it is open, deliveries do not use up their retry schedule, so an
// endpoint that is down for hours gets its whole backlog when it returns.
type Breakers struct {
	kv       jetstream.KeyValue
	replica  string
	failures int
	maxWait  time.Duration
	log      *slog.Logger
	onChange func(id string, prev, next State)

	mu    sync.Mutex
	state map[string]*breaker
}

type breaker struct {
	rec      Record
	rev      uint64
	failures int // consecutive failed attempts on this replica
	changed  chan struct{}
}

// New prepares the breakers; failures and maxWait of 0 take the defaults.
func New(kv jetstream.KeyValue, replica string, failures int, maxWait time.Duration, log *slog.Logger, onChange func(id string, prev, next State)) *Breakers {
	if failures <= 0 {
		failures = DefaultFailures
	}
	if maxWait <= 0 {
		maxWait = DefaultMaxProbeWait
	}
	return &Breakers{kv: kv, replica: replica, failures: failures, maxWait: maxWait, log: log,
		onChange: onChange, state: map[string]*breaker{}}
}

func (b *Breakers) get(id string) *breaker {
	br := b.state[id]
	if br == nil {
		br = &breaker{rec: Record{State: Closed}, changed: make(chan struct{})}
		b.state[id] = br
	}
	return br
}

// Watch follows the shared records until ctx ends.
func (b *Breakers) Watch(ctx context.Context) error {
	return subscriber.FollowKV(ctx, b.kv, "breaker.*", nil, func(e jetstream.KeyValueEntry) {
		id := strings.TrimPrefix(e.Key(), "breaker.")
		if e.Operation() != jetstream.KeyValuePut && e.Revision() >= b.revision(id) {
			// Deleted, as when its endpoint was retired: a closed breaker needs no state.
			b.apply(id, Record{State: Closed}, e.Revision())
			b.forget(id)
			return
		}
		var rec Record
		if e.Operation() != jetstream.KeyValuePut || json.Unmarshal(e.Value(), &rec) != nil {
			rec = Record{State: Closed}
		}
		b.apply(id, rec, e.Revision())
	})
}

func (b *Breakers) apply(id string, rec Record, rev uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	br := b.get(id)
	if rev < br.rev {
		return
	}
	prev := br.rec.State
	br.rec, br.rev = rec, rev
	if rec.State == Closed {
		br.failures = 0
	}
	close(br.changed)
	br.changed = make(chan struct{})
	if prev != rec.State && b.onChange != nil {
		b.onChange(id, prev, rec.State)
	}
}

// forget drops a closed breaker's state (its endpoint was retired).
func (b *Breakers) forget(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if br, ok := b.state[id]; ok && (br.rec.State == Closed || br.rec.State == "") {
		delete(b.state, id)
	}
}

// Forget deletes a retired endpoint's records from the health bucket, its breaker and every
// replica's activity, and drops this replica's state of its breaker if it is closed. Errors
// are ignored: a record left behind is deleted by the next retirement or stays harmless.
func (b *Breakers) Forget(ctx context.Context, id string) {
	_ = b.kv.Delete(ctx, Key(id))
	// This replica's own activity key without a listing, which a busy server can fail; the
	// listing finds the other replicas'.
	_ = b.kv.Delete(ctx, ActivityKey(id, b.replica))
	if keys, err := b.kv.ListKeysFiltered(ctx, ActivityKey(id, "*")); err == nil {
		for k := range keys.Keys() {
			if strings.HasPrefix(k, ActivityKey(id, "")) {
				_ = b.kv.Delete(ctx, k)
			}
		}
	}
	b.forget(id)
}

func (b *Breakers) revision(id string) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if br, ok := b.state[id]; ok {
		return br.rev
	}
	return 0
}

// Current returns an endpoint's breaker as this replica last saw it, and a channel closed at
// its next change.
func (b *Breakers) Current(id string) (Record, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	br := b.get(id)
	return br.rec, br.changed
}

// requestTimeout bounds each request to the health bucket: a server that does not answer is
// retried, never waited on forever.
const requestTimeout = 5 * time.Second

// parkAfter is how far away the next probe of an open breaker must be for a spill queue's
// drainer to hand its deliveries back and stop pulling until then, rather than keep them alive.
const parkAfter = 2 * time.Second

// ShouldPark reports whether the endpoint's drainers should let go of its deliveries for now:
// its breaker is open and the next probe is not due soon.
func (rec Record) ShouldPark(now time.Time) bool {
	return rec.State == Open && rec.ProbeAt.Sub(now) >= parkAfter
}

// State returns an endpoint's breaker as this replica last saw it.
func (b *Breakers) State(id string) Record {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Asked for every direct delivery: no state is made for endpoints that never failed.
	if br, ok := b.state[id]; ok {
		return br.rec
	}
	return Record{State: Closed}
}

// cas writes rec if the shared record is still at the revision this replica last saw. It
// reports whether it wrote, and, when it did not for another reason than someone writing
// first, that reason.
func (b *Breakers) cas(ctx context.Context, id string, rec Record) (bool, error) {
	b.mu.Lock()
	rev := b.get(id).rev
	b.mu.Unlock()
	rec.Replica, rec.Updated = b.replica, time.Now().UTC()
	data, _ := json.Marshal(rec)
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var err error
	var newRev uint64
	if rev == 0 {
		newRev, err = b.kv.Create(ctx, Key(id), data)
	} else {
		newRev, err = b.kv.Update(ctx, Key(id), data, rev)
	}
	if err != nil {
		if subscriber.IsConflict(err) {
			return false, nil
		}
		b.log.Warn("updating endpoint breaker failed", "endpoint", id, "error", err)
		return false, err
	}
	b.apply(id, rec, newRev)
	return true, nil
}

// refresh reads an endpoint's shared record and applies it if it is newer than what this
// replica holds.
func (b *Breakers) refresh(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	e, err := b.kv.Get(ctx, Key(id))
	if err != nil {
		return // gone (a closed breaker) or unreachable: the watch brings what comes next
	}
	var rec Record
	if json.Unmarshal(e.Value(), &rec) != nil {
		return
	}
	b.apply(id, rec, e.Revision())
}

// Wait blocks until an attempt to the endpoint may go. probe reports that this attempt is the
// probe of an open breaker: its outcome must be reported with probe set. It returns false
// when ctx ends first.
func (b *Breakers) Wait(ctx context.Context, id string, probeTimeout time.Duration) (probe, ok bool) {
	var failing *backoff.Backoff // made at the first failed write, not for every call
	for {
		b.mu.Lock()
		br := b.get(id)
		rec, changed := br.rec, br.changed
		b.mu.Unlock()
		now := time.Now()
		switch {
		case rec.State == Closed || rec.State == "":
			return false, true
		case now.After(rec.ProbeAt):
			// Due for a probe, or the replica that was probing died: try to be the prober.
			next := rec
			next.State, next.ProbeAt = HalfOpen, now.Add(probeTimeout)
			written, err := b.cas(ctx, id, next)
			if written {
				return true, true
			}
			// Another replica or lane wrote first, or the write failed. Every lane of a down
			// endpoint is here at once, so none may spin. Someone else wrote: read the record
			// the watch may not have brought yet, and give it a moment. The bucket failed:
			// wait longer each time, as for any request failing.
			pause := time.Duration(20+rand.IntN(40)) * time.Millisecond
			if err != nil {
				if failing == nil {
					failing = backoff.New(100*time.Millisecond, 5*time.Second)
				}
				pause = failing.Next()
			} else {
				b.refresh(ctx, id)
			}
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return false, false
			case <-changed:
			case <-t.C:
			}
			t.Stop()
			continue
		}
		t := time.NewTimer(time.Until(rec.ProbeAt) + 10*time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return false, false
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// Report records an attempt's outcome. answered is true when the endpoint answered in a way
// that shows it is up (2xx, and 4xx other than 408, 425 and 429).
func (b *Breakers) Report(ctx context.Context, id string, answered, probe bool, reason string) {
	b.mu.Lock()
	if _, ok := b.state[id]; !ok && answered && !probe {
		// A healthy endpoint that never failed needs no breaker state.
		b.mu.Unlock()
		return
	}
	br := b.get(id)
	rec := br.rec
	if answered {
		br.failures = 0
	} else {
		br.failures++
	}
	failures := br.failures
	b.mu.Unlock()
	now := time.Now()
	switch {
	case answered && rec.State != Closed && rec.State != "":
		if written, _ := b.cas(ctx, id, Record{State: Closed}); written {
			b.log.Info("endpoint answers again: breaker closed", "endpoint", id, "down_for", now.Sub(rec.OpenedAt).Round(time.Second))
		}
	case !answered && probe:
		next := rec
		next.State, next.Probes, next.Reason = Open, rec.Probes+1, reason
		next.ProbeAt = now.Add(b.probeWait(next.Probes))
		_, _ = b.cas(ctx, id, next)
	case !answered && (rec.State == Closed || rec.State == "") && failures >= b.failures:
		next := Record{State: Open, OpenedAt: now, ProbeAt: now.Add(firstProbeAfter), Reason: reason}
		if written, _ := b.cas(ctx, id, next); written {
			b.log.Warn("endpoint failing: breaker opened; probing before sending more", "endpoint", id,
				"consecutive_failures", failures, "reason", reason)
		}
	}
}

func (b *Breakers) probeWait(probes int) time.Duration {
	d := firstProbeAfter
	for i := 0; i < probes && d < b.maxWait; i++ {
		d *= 2
	}
	return min(d, b.maxWait)
}
