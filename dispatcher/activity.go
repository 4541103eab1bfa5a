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

// How the activity book writes: every activityFlushEvery it writes the records that have news
// worth showing at once (an error, a dead letter); a record that only counted successes or
// attempts in flight waits until activityQuietEvery after its last write. With thousands of
// per-room endpoints each delivering a few events, writing every changed record every tick was
// one put per endpoint per tick: measured on 10,000 rooms with a URL each, those puts (and
// their tail once deliveries ended) were most of roomhook's and nats-server's CPU at idle.
const (
	activityFlushEvery  = 2 * time.Second
	activityQuietEvery  = 10 * time.Second
	activityParallelism = 16 // puts on their way at once: one at a time, each waits for its round trip
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
	dirty    map[string]bool // changed since written; true: with news to show at once
	quiet    time.Duration   // activityQuietEvery; shorter in tests
}

func newActivityBook() *activityBook {
	return &activityBook{
		recs: map[string]*breaker.ActivityRecord{}, dirty: map[string]bool{}, quiet: activityQuietEvery,
	}
}

func (a *activityBook) update(id string, urgent bool, f func(*breaker.ActivityRecord)) {
	a.mu.Lock()
	r := a.recs[id]
	if r == nil {
		// Updated is when the record was last written; a new one counts as written now, so a
		// new endpoint's first successes wait as later ones do.
		r = &breaker.ActivityRecord{Updated: time.Now().UTC()}
		a.recs[id] = r
	}
	f(r)
	a.dirty[id] = a.dirty[id] || urgent
	a.mu.Unlock()
}

func (a *activityBook) attempt(id string, at sender.Attempt, now time.Time) {
	delivered := at.Verdict == sender.Delivered
	a.update(id, !delivered, func(r *breaker.ActivityRecord) {
		if delivered {
			r.LastSuccess, r.LastStatus = now, at.Status
			r.Delivered++
			return
		}
		r.LastError, r.LastErrorAt, r.LastStatus = at.Reason(), now, at.Status
		r.Failed++
	})
}

func (a *activityBook) inFlight(id string, delta int) {
	a.update(id, false, func(r *breaker.ActivityRecord) { r.InFlight += delta })
}

func (a *activityBook) deadLettered(id string) {
	a.update(id, true, func(r *breaker.ActivityRecord) { r.DeadLettered++ })
}

// flushEvery writes records as they become due until ctx ends, and every changed one at the end.
func (a *activityBook) flushEvery(ctx context.Context, kv jetstream.KeyValue, replica string) {
	t := time.NewTicker(activityFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			a.flush(fctx, kv, replica, true)
			cancel()
			return
		case <-t.C:
			a.flush(ctx, kv, replica, false)
		}
	}
}

// due takes the records to write now (all changed ones with all set), marks them written and
// returns them encoded, by endpoint id.
func (a *activityBook) due(all bool) map[string][]byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string][]byte{}
	now := time.Now()
	for id, urgent := range a.dirty {
		r := a.recs[id]
		if !all && !urgent && now.Sub(r.Updated) < a.quiet {
			continue
		}
		r.Updated = now.UTC()
		out[id], _ = json.Marshal(r)
		delete(a.dirty, id)
	}
	return out
}

func (a *activityBook) flush(ctx context.Context, kv jetstream.KeyValue, replica string, all bool) {
	a.flushing.Lock()
	defer a.flushing.Unlock()
	out := a.due(all)
	ids := make(chan string)
	var wg sync.WaitGroup
	for range min(activityParallelism, len(out)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				// Best effort: a lost write is a status a few seconds old, written again at
				// the endpoint's next change.
				pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				_, _ = kv.Put(pctx, breaker.ActivityKey(id, replica), out[id])
				cancel()
			}
		}()
	}
	for id := range out {
		ids <- id
	}
	close(ids)
	wg.Wait()
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
