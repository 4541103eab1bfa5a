package dispatcher

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/breaker"
	"github.com/roomhook/roomhook/deadletter"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/internal/backoff"
	"github.com/roomhook/roomhook/queue"
	"github.com/roomhook/roomhook/sender"
)

// route is one endpoint on one partition. While the endpoint keeps up, its deliveries go
// straight from memory: one lane per room, a room's next delivery sent only after the previous
// one is settled, other rooms' lanes going on meanwhile. When it fails, is slow, is paused,
// has its breaker open or falls behind, the route spills: that delivery and every later one
// of the route are written, in order, to the route's spill queue in JetStream, and a drainer
// delivers the queue with retries. Once the queue is empty the route goes back to memory.
type route struct {
	pt *partition
	id string

	mu      sync.Mutex
	lanes   map[string]*lane // direct lanes, by room
	spilled bool
	retired bool          // dropped from the partition; a submit must take a new route
	pending []delivery    // spilled deliveries waiting to be written, in order
	writing int           // deliveries the writer has taken and not yet stored
	pushed  uint64        // deliveries ever given to the writer: the drainer's "nothing new" check
	wake    chan struct{} // the writer waits on it for pending
	stop    chan struct{} // closed when the route goes back to memory: writer and drainer end
	// doneDirect holds the events that a direct attempt, still running when the route
	// spilled, settled after all: the drainer skips their spilled copies.
	doneDirect map[uint64]directResult
	drainer    *drainer
	// partsDone holds, by spill-stream sequence, which deliveries of a stored batch are
	// settled while others of it are not: a drainer that starts over skips them.
	partsDone map[uint64]*batchProgress

	// answered is when a direct attempt of the route last came back (unix nanoseconds): an
	// endpoint whose lanes keep answering is working, however slowly a busy machine makes
	// each answer, and spills only when it lags the others.
	answered atomic.Int64
}

// slowWatch spills the route when none of its direct attempts has come back for SpillAfter.
type slowWatch struct {
	t        *time.Timer
	finished atomic.Bool
}

func (r *route) watchSlow(after time.Duration) *slowWatch {
	w := &slowWatch{}
	w.t = time.AfterFunc(after, func() { r.checkSlow(w, after) })
	return w
}

func (r *route) checkSlow(w *slowWatch, after time.Duration) {
	if w.finished.Load() {
		return
	}
	if since := time.Since(time.Unix(0, r.answered.Load())); since < after {
		w.t.Reset(after - since) // another lane of the route answered meanwhile
		return
	}
	r.spill(fmt.Sprintf("no answer within %s", after))
}

// done ends the watch: the attempt came back.
func (w *slowWatch) done() {
	w.finished.Store(true)
	w.t.Stop()
}

// delivery is one event for one endpoint, with the partition message it belongs to (nil for
// deliveries read back from a spill queue).
type delivery struct {
	queue.Queued
	ev *heldEvent
}

// lane is one room's direct deliveries to one endpoint, in stream order.
type lane struct {
	queue    []delivery
	inFlight bool
	moved    bool          // the route spilled while an attempt was in flight: its copy is in the writer
	done     chan struct{} // closed when the lane ends: a drainer waits for it before that room
}

func newRoute(pt *partition, id string) *route {
	return &route{pt: pt, id: id, lanes: map[string]*lane{}, wake: make(chan struct{}, 1)}
}

// idleLocked reports whether the route holds nothing at all.
func (r *route) idleLocked() bool {
	return len(r.lanes) == 0 && !r.spilled && len(r.pending) == 0 && r.writing == 0 && r.drainer == nil
}

// queued is how many deliveries the route holds in memory.
func (r *route) queued() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.pending) + r.writing
	for _, l := range r.lanes {
		n += len(l.queue)
	}
	return n
}

// oldest is when the oldest delivery the route holds in memory was stored (zero: none).
func (r *route) oldest() (time.Time, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var t time.Time
	n := len(r.pending)
	older := func(q queue.Queued) {
		if !q.Stored.IsZero() && (t.IsZero() || q.Stored.Before(t)) {
			t = q.Stored
		}
	}
	if len(r.pending) > 0 {
		older(r.pending[0].Queued)
	}
	for _, l := range r.lanes {
		n += len(l.queue)
		if len(l.queue) > 0 {
			older(l.queue[0].Queued)
		}
	}
	return t, n
}

// submit takes one delivery from the partition, in stream order.
func (r *route) submit(q delivery) {
	r.mu.Lock()
	if r.retired {
		r.mu.Unlock()
		r.pt.route(r.id).submit(q)
		return
	}
	defer r.mu.Unlock()
	if r.spilled {
		r.pushLocked(q)
		return
	}
	l := r.lanes[q.Room]
	if l == nil {
		l = &lane{done: make(chan struct{})}
		r.lanes[q.Room] = l
		if r.pt.addOwned() {
			go r.runLane(q.Room, l)
		} else {
			close(l.done) // stopping: the event is handed back, and nothing waits for this lane
		}
	}
	l.queue = append(l.queue, q)
}

func (r *route) pushLocked(q delivery) {
	r.pending = append(r.pending, q)
	r.pushed++
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// spill moves the route to its spill queue: every delivery held in memory, the one in flight
// of each lane first, goes to the writer in order, and every later delivery follows it there.
func (r *route) spill(why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.retired {
		// Not under this route's lock: the partition's route table is locked first.
		r.pt.goOwned(func() { r.pt.route(r.id).spill(why) })
		return
	}
	if r.spilled {
		if r.drainer == nil {
			r.startDrainerLocked()
		}
		return
	}
	r.spilled = true
	r.stop = make(chan struct{})
	r.doneDirect = map[uint64]directResult{}
	for _, l := range r.lanes {
		for _, q := range l.queue {
			r.pushLocked(q)
		}
		l.queue = nil
		if l.inFlight {
			l.moved = true
		}
	}
	r.pt.log.Info("endpoint spilled to its queue", "endpoint", r.id, "why", why)
	stop := r.stop
	r.pt.goOwned(func() { r.runWriter(stop) })
	r.startDrainerLocked()
}

// runLane delivers one room's deliveries straight from memory until its queue is empty or
// the route spills.
func (r *route) runLane(room string, l *lane) {
	defer r.pt.wg.Done() // addOwned
	defer close(l.done)
	ctx := r.pt.ctx
	for {
		r.mu.Lock()
		if len(l.queue) == 0 || ctx.Err() != nil {
			delete(r.lanes, room)
			idle := r.idleLocked()
			r.mu.Unlock()
			if idle {
				r.pt.forget(r)
			}
			return
		}
		q := l.queue[0]
		l.inFlight, l.moved = true, false
		r.mu.Unlock()

		out, tried := r.attemptDirect(ctx, q)
		r.pt.progress.Add(1)

		r.mu.Lock()
		l.inFlight = false
		switch {
		case l.moved:
			// Its copy went to the spill queue while the attempt ran: the drainer skips the
			// copy if the attempt settled it, and goes on with its schedule if it failed.
			if out == settled || tried.Attempts > 0 {
				r.doneDirect[q.EventSeq] = directResult{settled: out == settled, tried: tried}
			}
			l.moved = false
		case out == settled:
			l.queue[0] = delivery{}
			l.queue = l.queue[1:]
			r.mu.Unlock()
			q.ev.done()
			continue
		case out == needsSpill:
			if tried.Attempts > 0 {
				l.queue[0].Attempts, l.queue[0].FirstAttempt, l.queue[0].NextAttempt = tried.Attempts, tried.FirstAttempt, tried.NextAttempt
			}
			r.mu.Unlock()
			r.spill("a delivery failed")
			continue
		}
		r.mu.Unlock()
	}
}

// directResult is what a direct attempt that was in flight when its route spilled did.
type directResult struct {
	settled bool
	tried   queue.Queued // Attempts, FirstAttempt and NextAttempt when it failed
}

// directOutcome is what became of one direct attempt.
type directOutcome int

const (
	settled    directOutcome = iota // delivered or dead-lettered
	needsSpill                      // not settled: it goes to the spill queue, to be retried there
	stopping                        // the partition is stopping; the delivery is handed back
)

// attemptDirect makes one attempt of q from memory. A delivery that needs a retry, or an
// endpoint that is paused or whose breaker is open, goes to the spill queue instead, so that
// nothing waits in memory for an endpoint that does not answer. After a failed attempt,
// tried holds the retry schedule so far, which the spilled delivery carries on.
func (r *route) attemptDirect(ctx context.Context, q delivery) (out directOutcome, tried queue.Queued) {
	d := r.pt.d
	v, ok := d.dir.Get(r.id)
	switch {
	case !ok || v.Disabled:
		reason := "endpoint disabled"
		if v.Reason != "" {
			reason += ": " + v.Reason
		}
		if !ok {
			reason = "endpoint removed"
		}
		return r.settleDead(ctx, q.Queued, v, deadletter.ReasonGone, reason, 0, sender.Attempt{}, time.Time{}), tried
	case v.Paused:
		return needsSpill, tried
	case !v.Filter.Allows(q.Event):
		return settled, tried // the filter changed after the event was read
	}
	if rec := d.breakers.State(r.id); rec.State == breaker.Open || rec.State == breaker.HalfOpen {
		return needsSpill, tried
	}
	if ctx.Err() != nil {
		return stopping, tried
	}
	slow := r.watchSlow(d.cfg.SpillAfter)
	first := time.Now()
	at := d.attempt(ctx, v, q.Queued, false)
	slow.done()
	r.answered.Store(time.Now().UnixNano())
	switch at.Verdict {
	case sender.Delivered:
		return settled, tried
	case sender.Retry:
		delay, more := d.cfg.Retry.NextDelay(1, at.RetryAfter, rand.Float64)
		if !more {
			return r.settleDead(ctx, q.Queued, v, deadletter.ReasonExhausted, at.Reason(), 1, at, first), tried
		}
		d.metrics.Retries.WithLabelValues(endpointLabel(v.Endpoint)).Inc()
		d.log.Info("delivery failed; will retry", "room", q.Room, "event", q.Event, "event_id", q.EventID,
			"endpoint", r.id, "host", endpoint.URLHost(v.URL), "attempt", 1, "reason", at.Reason(), "retry_in", delay.Round(time.Millisecond).String())
		tried.Attempts, tried.FirstAttempt, tried.NextAttempt = 1, first, time.Now().Add(delay)
		return needsSpill, tried
	}
	reason, detail := deadLetterReason(at)
	if at.Verdict == sender.Gone {
		d.disableGone(ctx, r.id)
	}
	return r.settleDead(ctx, q.Queued, v, reason, detail, 1, at, first), tried
}

// settleDead records a dead letter for a direct delivery; if that fails the delivery goes to
// the spill queue, which retries durably.
func (r *route) settleDead(ctx context.Context, q queue.Queued, v endpoint.View, reason, detail string, attempts int, last sender.Attempt, first time.Time) directOutcome {
	if err := r.pt.d.deadLetter(ctx, r.id, v, q, reason, detail, attempts, last, first); err != nil {
		return needsSpill
	}
	return settled
}

// spillLinger is how long a spill writer waits for a batch to fill. Spilled deliveries are
// those of an endpoint that failed or fell behind, so a few milliseconds more cost it
// nothing, and at a thousand deliveries a second per route they fill a batch.
const spillLinger = 10 * time.Millisecond

// runWriter stores the route's spilled deliveries in its spill queue, in batches of up to
// queue.BatchMaxDeliveries, one batch after the other so the queue keeps stream order, until
// the route goes back to memory. A batch that is not full waits up to spillLinger for more.
func (r *route) runWriter(stop <-chan struct{}) {
	ctx := r.pt.ctx
	for {
		r.mu.Lock()
		partial := len(r.pending) > 0 && !r.batchFullLocked()
		r.mu.Unlock()
		if partial && !r.fillBatch(ctx, stop) {
			return
		}
		r.mu.Lock()
		n := r.takeLocked()
		batch := slices.Clone(r.pending[:n])
		clear(r.pending[:n])
		r.pending = r.pending[n:]
		r.writing += n
		r.mu.Unlock()
		if n > 0 {
			ok := r.writeBatch(ctx, batch)
			r.mu.Lock()
			r.writing -= n
			r.mu.Unlock()
			if !ok {
				return // stopping: the partition messages not written are handed back
			}
			for _, q := range batch {
				r.pt.progress.Add(1)
				q.ev.done()
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-r.wake:
		}
	}
}

// batchFullLocked reports whether what waits to be written fills a batch.
func (r *route) batchFullLocked() bool {
	n := r.takeLocked()
	return n == queue.BatchMaxDeliveries || n < len(r.pending)
}

// fillBatch waits until a batch is full or spillLinger has passed; false when the route or
// its partition stops first.
func (r *route) fillBatch(ctx context.Context, stop <-chan struct{}) bool {
	t := time.NewTimer(spillLinger)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-stop:
			return false
		case <-t.C:
			return true
		case <-r.wake:
			r.mu.Lock()
			full := r.batchFullLocked()
			r.mu.Unlock()
			if full {
				return true
			}
		}
	}
}

// takeLocked is how many of the waiting deliveries make the next batch.
func (r *route) takeLocked() int {
	return queue.Take(len(r.pending), func(i int) int { return len(r.pending[i].Body) })
}

// writeBatch stores one batch, retrying with backoff until it is stored or the partition
// stops; false only when it stops first. A batch the server refuses for good is stored one
// delivery at a time, and a delivery it refuses (too big) is dead-lettered invalid, so it
// stops nothing but itself.
func (r *route) writeBatch(ctx context.Context, batch []delivery) bool {
	d := r.pt.d
	qs := make([]queue.Queued, len(batch))
	for i, q := range batch {
		qs[i] = q.Queued
	}
	subject := d.names.SpillSubject(r.id, r.pt.p, len(qs))
	msg := queue.BatchMsg(subject, batchMsgID(r.id, qs), qs)
	delays := backoff.New(100*time.Millisecond, 5*time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, requestTimeout)
		_, err := d.js.PublishMsg(pctx, msg)
		cancel()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if permanentPublishError(err) {
			if len(batch) > 1 {
				for _, q := range batch {
					if !r.writeBatch(ctx, []delivery{q}) {
						return false
					}
				}
				return true
			}
			v, _ := d.dir.Get(r.id)
			detail := "spilling the delivery failed for good: " + err.Error()
			if d.deadLetter(ctx, r.id, v, qs[0], deadletter.ReasonInvalid, detail, 0, sender.Attempt{}, time.Time{}) == nil {
				return true
			}
		}
		wait := delays.Next()
		r.pt.log.Warn("spilling deliveries failed; retrying", "endpoint", r.id, "deliveries", len(qs), "first_event_id", qs[0].EventID, "error", err, "retry_in", wait.Round(time.Millisecond).String())
		sleep(ctx, wait)
	}
}

// batchMsgID makes a repeated publish of the same batch (its acknowledgement was lost) a
// no-op: the same route and the same events, named by the first, the last, their count and
// a hash of all of them.
func batchMsgID(endpointID string, qs []queue.Queued) string {
	h := fnv.New64a()
	var b [8]byte
	for _, q := range qs {
		binary.LittleEndian.PutUint64(b[:], q.EventSeq)
		h.Write(b[:])
	}
	return fmt.Sprintf("b:%d-%d:%d:%x:%s", qs[0].EventSeq, qs[len(qs)-1].EventSeq, len(qs), h.Sum64(), endpointID)
}

// permanentPublishError reports errors that retrying the same message cannot fix.
func permanentPublishError(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.Code == 400 {
		return true
	}
	return errors.Is(err, nats.ErrMaxPayload)
}
