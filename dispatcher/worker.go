package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomhook/roomhook/subscriber"
)

// worker delivers one endpoint's queue of one partition. It pulls at most MaxInFlight
// deliveries and gives each room a lane: a room's deliveries go out strictly one after the
// other (the next is not sent before the previous is settled), while other rooms' lanes go on.
// A down endpoint therefore holds at most MaxInFlight deliveries per partition in memory; the
// rest of its backlog stays in the deliver stream.
type worker struct {
	d     *Dispatcher
	id    string
	part  int
	label string
	host  string
	held  *subscriber.HeldSet
	// heldGauge counts what this replica holds for the endpoint: bounded by partitions times
	// MaxInFlight however long the endpoint's backlog in the deliver stream is.
	heldGauge prometheus.Gauge
	// Series of this endpoint, looked up once rather than per attempt.
	inFlight        prometheus.Gauge
	attemptDuration prometheus.Observer
	endToEnd        prometheus.Observer

	mu    sync.Mutex
	lanes map[string]*lane
	wg    sync.WaitGroup

	// broken is closed when an acknowledgement could not be confirmed: the consumer's state
	// is unknown, so the worker starts over from what the server still has.
	broken    chan struct{}
	breakOnce sync.Once
}

// lane is one room's deliveries, in stream order.
type lane struct {
	queue []Queued
}

func (d *Dispatcher) runWorker(ctx context.Context, ep EndpointView, part int) {
	w := &worker{d: d, id: ep.ID, part: part, label: endpointLabel(ep.Endpoint), host: URLHost(ep.URL)}
	w.heldGauge = d.metrics.Held.WithLabelValues(w.label)
	w.inFlight = d.metrics.InFlight.WithLabelValues(w.label)
	w.attemptDuration = d.metrics.AttemptDuration.WithLabelValues(w.label)
	w.endToEnd = d.metrics.EndToEnd.WithLabelValues(w.label)
	go w.sampleBacklog(ctx)
	for ctx.Err() == nil {
		err := w.run(ctx)
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, errParked):
			w.waitForProbe(ctx)
		case err != nil:
			d.log.Error("endpoint worker stopped; restarting", "endpoint", w.id, "partition", part, "error", err)
			sleep(ctx, time.Second)
		}
	}
}

// errParked ends a worker's run while the endpoint's breaker is open: everything it held is
// handed back to the deliver stream, so a down endpoint costs no memory and no keep-alive
// traffic until its next probe is due.
var errParked = errors.New("parked while the endpoint's breaker is open")

// waitForProbe returns when the endpoint's breaker has closed or its next probe is due.
func (w *worker) waitForProbe(ctx context.Context) {
	for {
		rec, changed := w.d.breakers.Current(w.id)
		if rec.State != BreakerOpen || !time.Now().Before(rec.ProbeAt) {
			return
		}
		t := time.NewTimer(time.Until(rec.ProbeAt))
		select {
		case <-ctx.Done():
		case <-changed:
		case <-t.C:
		}
		t.Stop()
		if ctx.Err() != nil {
			return
		}
	}
}

// parkWhenOpen closes park when the endpoint's breaker opens for longer than a moment.
func (w *worker) parkWhenOpen(ctx context.Context, park chan<- struct{}) {
	for {
		rec, changed := w.d.breakers.Current(w.id)
		if rec.ShouldPark(time.Now()) {
			close(park)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// URLHost is what logs show of a webhook URL: its host, since the query may carry a token.
func URLHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

func (w *worker) run(ctx context.Context) error {
	d := w.d
	cons, err := d.js.CreateOrUpdateConsumer(ctx, d.names.DeliverStream(), jetstream.ConsumerConfig{
		Durable:       d.names.DeliverConsumer(w.id, w.part),
		Description:   "roomhook deliveries to one endpoint, one partition",
		FilterSubject: d.names.DeliverSubject(w.id, w.part),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       subscriber.AckWait(d.cfg.Takeover),
		MaxAckPending: d.cfg.MaxInFlight,
		MaxDeliver:    -1,
		// The consumer's state is in memory: on a work-queue stream an acked delivery is
		// deleted, so the stream itself is the durable record of what is left, and a consumer
		// lost in a server restart is created again and starts over the remaining messages.
		// With hundreds of (endpoint, partition) consumers, writing each one's state to disk
		// was the server's biggest cost and delayed acks.
		MemoryStorage: true,
	})
	if err != nil {
		return fmt.Errorf("deliver consumer: %w", err)
	}
	w.held = subscriber.NewHeldSet()
	w.lanes = map[string]*lane{}
	w.broken, w.breakOnce = make(chan struct{}), sync.Once{}
	laneCtx, stopLanes := context.WithCancel(ctx)
	defer stopLanes()
	handle, err := subscriber.ResumeInOrder(ctx, cons, d.cfg.Takeover, func(m jetstream.Msg) {
		meta, err := m.Metadata()
		if err != nil {
			return
		}
		seq := meta.Sequence.Stream
		if w.held.Add(seq, m) {
			return
		}
		w.heldGauge.Inc()
		q := ParseQueued(m)
		q.seq = seq
		w.enqueue(laneCtx, q)
	})
	if err != nil {
		return err
	}
	go w.held.KeepAlive(laneCtx, subscriber.KeepAliveEvery(d.cfg.Takeover))
	park := make(chan struct{})
	go w.parkWhenOpen(laneCtx, park)
	watch, lost := subscriber.WatchLoss(cons)
	cc, err := cons.Consume(handle, jetstream.PullMaxMessages(d.cfg.MaxInFlight), watch,
		jetstream.PullExpiry(5*time.Second)) // heartbeats every 2.5 s: a lost consumer is noticed quickly
	if err != nil {
		return fmt.Errorf("deliver consume: %w", err)
	}
	var gone error
	select {
	case <-ctx.Done():
	case <-lost:
		gone = fmt.Errorf("deliver consumer %s is gone; creating it again", d.names.DeliverConsumer(w.id, w.part))
	case <-w.broken:
		gone = fmt.Errorf("acknowledgements to %s are not confirmed; starting over", d.names.DeliverConsumer(w.id, w.part))
	case <-park:
		gone = errParked
	}
	// Stop pulling and take in what is already on its way (Drain, unlike Stop, hands it to
	// the callback, so it is held and handed back rather than left to expire), let attempts
	// in progress finish (each is bounded by the HTTP timeout), then hand back everything not
	// settled so the next owner gets it first, in order.
	cc.Drain()
	<-cc.Closed()
	stopLanes()
	w.wg.Wait()
	if n := w.held.HandBack(); n > 0 {
		w.heldGauge.Sub(float64(n))
		d.log.Debug("handed back deliveries", "endpoint", w.id, "partition", w.part, "count", n)
	}
	return gone
}

func (w *worker) enqueue(ctx context.Context, q Queued) {
	if ctx.Err() != nil {
		return // stopping: the message stays held and is handed back
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.lanes[q.Room]
	if l == nil {
		l = &lane{}
		w.lanes[q.Room] = l
		w.wg.Add(1)
		go w.runLane(ctx, q.Room, l)
	}
	// Redeliveries after a reconnect can arrive behind newer messages; keep stream order.
	i := sort.Search(len(l.queue), func(i int) bool { return l.queue[i].seq > q.seq })
	l.queue = append(l.queue, Queued{})
	copy(l.queue[i+1:], l.queue[i:])
	l.queue[i] = q
}

func (w *worker) runLane(ctx context.Context, room string, l *lane) {
	defer w.wg.Done()
	for {
		w.mu.Lock()
		if len(l.queue) == 0 {
			delete(w.lanes, room)
			w.mu.Unlock()
			return
		}
		q := l.queue[0]
		w.mu.Unlock()
		if !w.deliver(ctx, q) {
			return
		}
		w.mu.Lock()
		l.queue[0] = Queued{}
		l.queue = l.queue[1:]
		w.mu.Unlock()
	}
}

// deliver attempts q until it is settled: delivered, or dead-lettered. It returns false when
// ctx ends first; q is then still held and will be handed back.
func (w *worker) deliver(ctx context.Context, q Queued) bool {
	d := w.d
	var first time.Time
	var last Attempt
	attempts := 0
	for {
		if ctx.Err() != nil {
			return false // stopping: what has not been attempted is handed back
		}
		v, ok := d.dir.Get(w.id)
		switch {
		case !ok || v.Disabled:
			reason := "endpoint disabled"
			if v.Reason != "" {
				reason += ": " + v.Reason
			}
			return w.deadLetter(ctx, q, ReasonGone, reason, attempts, last, first)
		case v.Paused:
			_, changed := d.dir.Snapshot()
			select {
			case <-ctx.Done():
				return false
			case <-changed:
			case <-time.After(time.Second):
			}
			continue
		case !v.Filter.Allows(q.Event):
			// The filter changed after the event was Queued: the endpoint no longer wants it.
			return w.settle(q)
		}
		probe, ok := d.breakers.Wait(ctx, w.id, d.sender.Timeout()+time.Second)
		if !ok || ctx.Err() != nil {
			return false
		}
		now := time.Now()
		if first.IsZero() {
			first = now
		}
		w.inFlight.Inc()
		d.activity.inFlight(w.id, 1)
		// An attempt already started is finished even during shutdown: its outcome decides
		// between acknowledging and handing back, and the HTTP timeout bounds it.
		last = d.sender.Send(context.WithoutCancel(ctx), v.Endpoint, Delivery{Body: q.Body, EventID: q.EventID})
		w.inFlight.Dec()
		d.activity.inFlight(w.id, -1)
		d.activity.attempt(w.id, last, time.Now())
		d.breakers.Report(context.WithoutCancel(ctx), w.id, last.Verdict != Retry, probe, last.Reason())
		attempts++
		w.attemptDuration.Observe(last.Duration.Seconds())
		d.metrics.Deliveries.WithLabelValues(w.label, last.Verdict.String(), statusClass(last.Status)).Inc()
		switch last.Verdict {
		case Delivered:
			if !q.Stored.IsZero() {
				w.endToEnd.Observe(time.Since(q.Stored).Seconds())
			}
			d.log.Debug("delivered", "room", q.Room, "event", q.Event, "event_id", q.EventID,
				"endpoint", w.id, "host", w.host, "status", last.Status, "attempts", attempts)
			return w.settle(q)
		case Reject:
			return w.deadLetter(ctx, q, ReasonRejected, last.Reason(), attempts, last, first)
		case Gone:
			if err := d.dir.Update(context.WithoutCancel(ctx), w.id, func(r *EndpointRecord) {
				r.Disabled, r.Reason = true, "answered 410 Gone"
			}); err != nil {
				d.log.Warn("could not disable endpoint", "endpoint", w.id, "error", err)
			}
			return w.deadLetter(ctx, q, ReasonGone, last.Reason(), attempts, last, first)
		}
		if ctx.Err() != nil {
			return false
		}
		delay, more := d.cfg.Retry.NextDelay(attempts, last.RetryAfter, rand.Float64)
		if !more {
			return w.deadLetter(ctx, q, ReasonExhausted, last.Reason(), attempts, last, first)
		}
		d.metrics.Retries.WithLabelValues(w.label).Inc()
		d.log.Info("delivery failed; will retry", "room", q.Room, "event", q.Event, "event_id", q.EventID,
			"endpoint", w.id, "host", w.host, "attempt", attempts, "reason", last.Reason(), "retry_in", delay.Round(time.Millisecond).String())
		sleep(ctx, delay)
		if ctx.Err() != nil {
			return false
		}
	}
}

func (w *worker) settle(q Queued) bool {
	if err := w.held.Ack(context.Background(), q.seq); err != nil {
		// The delivery may come back: stop this room here rather than send its next event
		// before it, and let the worker start over.
		w.d.log.Warn("ack not confirmed; the delivery may be repeated", "room", q.Room, "event_id", q.EventID, "endpoint", w.id, "error", err)
		w.breakOnce.Do(func() { close(w.broken) })
		return false
	}
	w.heldGauge.Dec()
	if q.ReplayOf > 0 {
		// A replayed dead letter leaves the DLQ once its delivery is settled (a new dead letter
		// replaces it if it failed again).
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := w.d.dlq.DeleteMsg(ctx, q.ReplayOf); err != nil {
			// Deleting a sequence that is already gone is not reported as "not found".
			if _, gerr := w.d.dlq.GetMsg(ctx, q.ReplayOf); !errors.Is(gerr, jetstream.ErrMsgNotFound) {
				w.d.log.Warn("could not remove a replayed dead letter", "room", q.Room, "event_id", q.EventID, "dlq_seq", q.ReplayOf, "error", err)
			}
		}
	}
	return true
}

func (w *worker) deadLetter(ctx context.Context, q Queued, reason, detail string, attempts int, last Attempt, first time.Time) bool {
	d := w.d
	v, _ := d.dir.Get(w.id)
	dl := DeadLetter{
		Reason: reason, Detail: detail, EndpointID: w.id, EndpointURL: v.URL,
		Room: q.Room, Event: q.Event, EventID: q.EventID, EventSeq: q.EventSeq, Stored: q.Stored,
		Attempts: attempts, LastStatus: last.Status, FirstAttempt: first, Body: q.Body, ReplayOf: q.ReplayOf,
	}
	if last.Err != nil {
		dl.LastError = last.Reason()
	}
	if attempts > 0 {
		dl.LastAttempt = time.Now()
	}
	// Recording the dead letter is part of settling, so it may outlive a shutdown briefly.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := publishDeadLetter(pctx, d.js, d.names.DLQSubject(w.id), dl); err != nil {
		d.log.Warn("could not record dead letter; handing the delivery back", "room", q.Room, "event_id", q.EventID, "endpoint", w.id, "error", err)
		return false
	}
	d.metrics.DeadLetters.WithLabelValues(reason).Inc()
	d.activity.deadLettered(w.id)
	d.log.Warn("delivery dead-lettered", "room", q.Room, "event", q.Event, "event_id", q.EventID,
		"endpoint", w.id, "host", w.host, "reason", reason, "detail", detail, "attempts", attempts)
	return w.settle(q)
}

// sampleBacklog keeps the backlog gauge at this queue's size while the worker runs, parked
// or not.
func (w *worker) sampleBacklog(ctx context.Context) {
	gauge := w.d.metrics.Backlog.WithLabelValues(w.label)
	var last float64
	defer func() { gauge.Sub(last) }()
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		if cons, err := w.d.js.Consumer(ctx, w.d.names.DeliverStream(), w.d.names.DeliverConsumer(w.id, w.part)); err == nil {
			info := cons.CachedInfo()
			n := float64(info.NumPending + uint64(info.NumAckPending))
			gauge.Add(n - last)
			last = n
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
