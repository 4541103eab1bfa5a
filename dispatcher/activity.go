package dispatcher

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/roomhook/roomhook/breaker"
	"github.com/roomhook/roomhook/sender"
)

// activityBook collects what this replica sees of each endpoint and writes it to the health
// bucket at most every few seconds, so `roomhook status` can show last success and last
// error without a write per delivery.
type activityBook struct {
	// flushing is held for a whole flush, writes included, so that forget can wait until
	// no write of a retired endpoint's record is still on its way to the bucket.
	flushing sync.Mutex
	mu       sync.Mutex
	recs     map[string]*breaker.ActivityRecord
	dirty    map[string]bool
}

func newActivityBook() *activityBook {
	return &activityBook{recs: map[string]*breaker.ActivityRecord{}, dirty: map[string]bool{}}
}

func (a *activityBook) update(id string, f func(*breaker.ActivityRecord)) {
	a.mu.Lock()
	r := a.recs[id]
	if r == nil {
		r = &breaker.ActivityRecord{}
		a.recs[id] = r
	}
	f(r)
	a.dirty[id] = true
	a.mu.Unlock()
}

func (a *activityBook) attempt(id string, at sender.Attempt, now time.Time) {
	a.update(id, func(r *breaker.ActivityRecord) {
		if at.Verdict == sender.Delivered {
			r.LastSuccess, r.LastStatus = now, at.Status
			r.Delivered++
			return
		}
		r.LastError, r.LastErrorAt, r.LastStatus = at.Reason(), now, at.Status
		r.Failed++
	})
}

func (a *activityBook) inFlight(id string, delta int) {
	a.update(id, func(r *breaker.ActivityRecord) { r.InFlight += delta })
}

func (a *activityBook) deadLettered(id string) {
	a.update(id, func(r *breaker.ActivityRecord) { r.DeadLettered++ })
}

// flushEvery writes changed records until ctx ends, and once more at the end.
func (a *activityBook) flushEvery(ctx context.Context, kv jetstream.KeyValue, replica string, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			a.flush(fctx, kv, replica)
			cancel()
			return
		case <-t.C:
			a.flush(ctx, kv, replica)
		}
	}
}

func (a *activityBook) flush(ctx context.Context, kv jetstream.KeyValue, replica string) {
	a.flushing.Lock()
	defer a.flushing.Unlock()
	a.mu.Lock()
	out := make(map[string][]byte, len(a.dirty))
	now := time.Now().UTC()
	for id := range a.dirty {
		r := a.recs[id]
		r.Updated = now
		out[id], _ = json.Marshal(r)
	}
	a.dirty = map[string]bool{}
	a.mu.Unlock()
	for id, b := range out {
		_, _ = kv.Put(ctx, breaker.ActivityKey(id, replica), b)
	}
}

// forget drops a retired endpoint's record, once a flush in progress has written what it
// took: delete the record's key after this, so that no flush writes it back.
func (a *activityBook) forget(id string) {
	a.flushing.Lock()
	defer a.flushing.Unlock()
	a.mu.Lock()
	delete(a.recs, id)
	delete(a.dirty, id)
	a.mu.Unlock()
}
