package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/breaker"
	"github.com/roomhook/roomhook/deadletter"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/internal/backoff"
	"github.com/roomhook/roomhook/queue"
	"github.com/roomhook/roomhook/sender"
	"github.com/roomhook/roomhook/subscriber"
)

// drainer delivers one route's spill queue with the full retry schedule, the breaker and
// parking, one lane per room as in memory. Its consumer exists only while it drains: once the
// queue is empty and nothing new was spilled, the route goes back to memory and the consumer
// is deleted, so idle endpoints cost the server nothing.
type drainer struct {
	r    *route
	held *subscriber.HeldSet

	mu    sync.Mutex
	lanes map[string]*drainLane
	wg    sync.WaitGroup

	broken    chan struct{}
	breakOnce sync.Once

	// For the stall watch: attempts made and deliveries settled, and lanes waiting on
	// purpose (a retry's delay, a pause, the breaker), which is not a stall.
	progress atomic.Uint64
	waiting  atomic.Int64

	// Sampled while draining, for the backlog and age gauges.
	backlog   int
	oldestAt  time.Time
	sampledAt time.Time
}

type drainLane struct {
	queue []queue.Queued
}

// drainWindow is how many stored messages a drainer holds at most: MaxInFlight deliveries,
// counting each message as a full batch, so that batches do not multiply a drainer's memory.
// A queue of single deliveries (spilled at a few a second) is then drained with fewer in
// flight, which it does not need more of: it grew that slowly.
func (d *Dispatcher) drainWindow() int {
	return max(1, (d.cfg.MaxInFlight+queue.BatchMaxDeliveries-1)/queue.BatchMaxDeliveries)
}

// errDrained ends a drainer whose queue is empty: the route is back in memory.
var errDrained = errors.New("spill queue drained")

// errParked ends a drainer's run while the endpoint's breaker is open: everything it held is
// handed back to the spill queue, so a down endpoint costs no memory and no request until
// its next probe is due.
var errParked = errors.New("parked while the endpoint's breaker is open")

func (r *route) startDrainerLocked() {
	dr := &drainer{r: r}
	r.drainer = dr
	stop := r.stop
	r.pt.goOwned(func() { dr.run(stop) })
}

func (dr *drainer) run(stop <-chan struct{}) {
	r := dr.r
	ctx, cancel := context.WithCancel(r.pt.ctx)
	defer cancel()
	var watch sync.WaitGroup
	defer watch.Wait() // after cancel, which ends it
	watch.Add(1)
	go func() {
		defer watch.Done()
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	delays := backoff.New(200*time.Millisecond, 10*time.Second)
	for ctx.Err() == nil {
		// A consumer only while holding a slot; waiting costs nothing, the queue is durable.
		select {
		case r.pt.d.drainSlots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		err := dr.runOnce(ctx)
		<-r.pt.d.drainSlots
		switch {
		case errors.Is(err, errDrained), ctx.Err() != nil:
			return
		case errors.Is(err, errParked):
			dr.waitForProbe(ctx)
			delays.Reset()
		case errors.Is(err, errStalled):
			sleep(ctx, delays.Next()) // the stall watch said why
		case err != nil:
			wait := delays.Next()
			r.pt.log.Error("spill drainer stopped; starting over", "endpoint", r.id, "error", err, "retry_in", wait.Round(time.Millisecond).String())
			sleep(ctx, wait)
		}
	}
}

func (dr *drainer) runOnce(ctx context.Context) error {
	r := dr.r
	d := r.pt.d
	name := d.names.SpillConsumer(r.id, r.pt.p)
	rctx, rcancel := context.WithTimeout(ctx, requestTimeout)
	cons, err := d.js.CreateOrUpdateConsumer(rctx, d.names.SpillStream(), jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "roomhook: drains one endpoint's spill queue on one partition; deleted once empty",
		FilterSubject: d.names.SpillQueueFilter(r.id, r.pt.p),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       subscriber.AckWait(d.cfg.Takeover),
		MaxAckPending: d.drainWindow(),
		MaxDeliver:    -1,
		// The spill stream is a work queue: it is the durable record of what is left, so the
		// consumer's own state may live in memory; a lost consumer is made again.
		MemoryStorage: true,
		// A consumer left behind by a replica that died is removed by the server.
		InactiveThreshold: 10 * d.cfg.Takeover,
	})
	rcancel()
	if err != nil {
		return fmt.Errorf("spill consumer %s: %w", name, err)
	}
	d.metrics.Consumers.WithLabelValues("spill").Inc()
	defer d.metrics.Consumers.WithLabelValues("spill").Dec()
	held := subscriber.NewHeldSet()
	dr.mu.Lock()
	dr.held = held
	dr.lanes = map[string]*drainLane{}
	dr.mu.Unlock()
	dr.broken, dr.breakOnce = make(chan struct{}), sync.Once{}
	laneCtx, stopLanes := context.WithCancel(ctx)
	defer stopLanes()
	dlog := r.pt.log.With("endpoint", r.id)
	var handle *subscriber.Resume // set before the consumer is read from
	handle, err = subscriber.ResumeInOrder(ctx, d.js, cons, d.cfg.Takeover, func(m jetstream.Msg) {
		meta, err := m.Metadata()
		if err != nil {
			return
		}
		// Consume's callbacks come one at a time: Admit's single goroutine.
		if !admitted(ctx, handle, meta, dlog) {
			return // sent again after the reset, in order
		}
		// The run's own set, never a later run's: a callback of this run that comes late
		// must not mark a message held in the next one.
		if held.Add(meta.Sequence.Stream, m) {
			return
		}
		seq := meta.Sequence.Stream
		qs, perr := queue.ParseAll(m.Headers(), m.Data())
		if perr != nil {
			dr.unreadable(laneCtx, seq, m.Data(), perr)
			return
		}
		for i, q := range qs {
			q.Seq, q.Part, q.Parts = seq, i, len(qs)
			dr.enqueue(laneCtx, q)
		}
	})
	if err != nil {
		return err
	}
	defer handle.Stop()
	if handle.ResetFailed != nil {
		r.pt.log.Info("resuming behind the gate: the spill consumer could not be reset", "endpoint", r.id, "error", handle.ResetFailed)
	}
	var aux sync.WaitGroup
	defer aux.Wait()
	// Held deliveries are kept alive until they are handed back, through the wait for the
	// last pull request at the end too.
	stopKeepAlive := dr.held.StartKeepAlive(subscriber.KeepAliveEvery(d.cfg.Takeover))
	defer stopKeepAlive()
	aux.Add(1)
	park := make(chan struct{})
	go func() { defer aux.Done(); dr.parkWhenOpen(laneCtx, park) }()
	watch, lost, stopWatch := subscriber.WatchLoss(cons)
	defer stopWatch() // after the consume is closed below: joins a check of the consumer
	cc, err := cons.Consume(handle.Handle, jetstream.PullMaxMessages(d.drainWindow()), watch,
		jetstream.PullExpiry(d.pullExpiry()))
	if err != nil {
		return fmt.Errorf("spill consume: %w", err)
	}
	check := time.NewTicker(250 * time.Millisecond)
	defer check.Stop()
	stall := newStallWatch(d.stallAfter())
	var gone error
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case <-lost:
			gone = fmt.Errorf("spill consumer %s is gone; creating it again", name)
			break wait
		case <-dr.broken:
			gone = fmt.Errorf("acknowledgements to %s are not confirmed; starting over", name)
			break wait
		case <-park:
			gone = errParked
			break wait
		case <-check.C:
			if dr.drained(ctx) {
				gone = errDrained
				break wait
			}
			if stall.stalled(dr.held.Len() > 0 && dr.waiting.Load() < int64(dr.laneCount()), dr.progress.Load()) {
				r.pt.log.Warn("spill drainer holds deliveries and has settled or tried none for a while; starting it over",
					append([]any{"endpoint", r.id, "held", dr.held.Len(), "for", d.stallAfter().String()}, consumerState(ctx, cons)...)...)
				gone = fmt.Errorf("spill drainer %s: %w for %s", name, errStalled, d.stallAfter())
				break wait
			}
		}
	}
	stopped := time.Now()
	cc.Drain()
	<-cc.Closed()
	// No callback comes after this: Consume's have ended, and the gate's timer, which
	// releases what it held back, is stopped (Stop waits for a release in progress).
	handle.Stop()
	stopLanes()
	dr.wg.Wait()
	cause := context.Cause(ctx)
	restarting := gone != nil && !errors.Is(gone, errDrained) && ctx.Err() == nil
	if restarting || errors.Is(cause, subscriber.ErrHandingOver) || errors.Is(cause, errRestarting) {
		// As a partition does (runPartitionOnce): the server may still hand this run's last
		// pull request a delivery, a handed-back one too, which would come back only after
		// its ack wait, behind newer ones of its room. Waiting the request out keeps the order.
		wait := context.Background()
		if restarting {
			wait = ctx // a lost lease ends the wait
		}
		d.waitOutPull(wait, stopped)
	}
	stopKeepAlive()
	dr.held.HandBack()
	dr.mu.Lock()
	dr.lanes = nil // what they held is handed back
	dr.mu.Unlock()
	return gone
}

// drained reports, and makes so, that the route went back to memory: nothing held, nothing
// waiting to be written, and the spill queue empty as the stream's leader sees it. Every
// delivery spilled after the check still finds the route spilled, so nothing is left behind.
func (dr *drainer) drained(ctx context.Context) bool {
	r := dr.r
	d := r.pt.d
	if dr.held.Len() > 0 {
		dr.sample(ctx)
		return false
	}
	r.mu.Lock()
	busy := len(r.pending) > 0 || r.writing > 0 || len(r.lanes) > 0
	pushed := r.pushed
	r.mu.Unlock()
	if busy {
		return false
	}
	n, err := d.spillCount(ctx, d.names.SpillQueueFilter(r.id, r.pt.p))
	if err != nil || n > 0 {
		dr.sample(ctx)
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pushed != pushed || len(r.pending) > 0 || r.writing > 0 {
		return false
	}
	// Delete the consumer before the route can spill again: a later drainer's consumer of
	// the same name must not be deleted by this one.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
	err = d.js.DeleteConsumer(dctx, d.names.SpillStream(), d.names.SpillConsumer(r.id, r.pt.p))
	cancel()
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return false
	}
	r.spilled = false
	r.drainer = nil
	close(r.stop)
	r.doneDirect = nil
	r.partsDone = nil
	dr.mu.Lock()
	dr.backlog, dr.oldestAt = 0, time.Time{}
	dr.mu.Unlock()
	r.pt.log.Info("endpoint caught up; delivering from memory again", "endpoint", r.id)
	return true
}

// sample records the queue's size and oldest delivery for the gauges, at most every few
// seconds and only while draining.
func (dr *drainer) sample(ctx context.Context) {
	dr.mu.Lock()
	defer dr.mu.Unlock()
	if time.Since(dr.sampledAt) < 5*time.Second {
		return
	}
	dr.sampledAt = time.Now()
	d := dr.r.pt.d
	filter := d.names.SpillQueueFilter(dr.r.id, dr.r.pt.p)
	n, err := d.spillCount(ctx, filter)
	if err != nil {
		return
	}
	dr.backlog = int(n)
	if n == 0 {
		dr.oldestAt = time.Time{}
		return
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	m, err := d.spillSt.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(filter))
	if err != nil {
		return
	}
	if qs, err := queue.ParseAll(m.Header, m.Data); err == nil {
		dr.oldestAt = qs[0].Stored
	}
}

// unreadable dead-letters, invalid and with the cause, a spilled message that cannot be read
// (no version of roomhook writes one), so it stops nothing else of its queue.
func (dr *drainer) unreadable(ctx context.Context, seq uint64, data []byte, cause error) {
	r := dr.r
	r.pt.log.Error("a spilled message cannot be read; dead-lettering it as invalid", "endpoint", r.id, "spill_seq", seq, "error", cause)
	q := queue.Queued{EventID: "spill-" + strconv.FormatUint(seq, 10), Body: data, Seq: seq, Parts: 1}
	v, _ := r.pt.d.dir.Get(r.id)
	dr.wg.Add(1)
	go func() {
		defer dr.wg.Done()
		dr.deadLetter(ctx, q, v, deadletter.ReasonInvalid, cause.Error(), 0, sender.Attempt{}, time.Time{})
	}()
}

// heldLen is how many spilled deliveries the drainer holds in memory, not yet settled.
func (dr *drainer) heldLen() int {
	dr.mu.Lock()
	defer dr.mu.Unlock()
	n := 0
	for _, l := range dr.lanes {
		n += len(l.queue)
	}
	return n
}

// gauges returns the last sample.
func (dr *drainer) gauges() (backlog int, oldest time.Time) {
	dr.mu.Lock()
	defer dr.mu.Unlock()
	return dr.backlog, dr.oldestAt
}

// waitForProbe returns when the endpoint's breaker has closed or its next probe is due.
func (dr *drainer) waitForProbe(ctx context.Context) {
	b := dr.r.pt.d.breakers
	for {
		rec, changed := b.Current(dr.r.id)
		if rec.State != breaker.Open || !time.Now().Before(rec.ProbeAt) {
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
func (dr *drainer) parkWhenOpen(ctx context.Context, park chan<- struct{}) {
	for {
		rec, changed := dr.r.pt.d.breakers.Current(dr.r.id)
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

func (dr *drainer) enqueue(ctx context.Context, q queue.Queued) {
	if ctx.Err() != nil {
		return // stopping: the message stays held and is handed back
	}
	dr.mu.Lock()
	defer dr.mu.Unlock()
	if dr.lanes == nil {
		return // the run has ended and handed its messages back
	}
	l := dr.lanes[q.Room]
	if l == nil {
		l = &drainLane{}
		dr.lanes[q.Room] = l
		dr.wg.Add(1)
		go dr.runLane(ctx, q.Room, l)
	}
	// Redeliveries after a reconnect can arrive behind newer messages; keep stream order.
	i := sort.Search(len(l.queue), func(i int) bool {
		return l.queue[i].Seq > q.Seq || (l.queue[i].Seq == q.Seq && l.queue[i].Part > q.Part)
	})
	l.queue = append(l.queue, queue.Queued{})
	copy(l.queue[i+1:], l.queue[i:])
	l.queue[i] = q
}

func (dr *drainer) runLane(ctx context.Context, room string, l *drainLane) {
	defer dr.wg.Done()
	// A direct attempt of this room that was in flight when the route spilled comes first.
	dr.r.mu.Lock()
	direct := dr.r.lanes[room]
	dr.r.mu.Unlock()
	if direct != nil {
		select {
		case <-direct.done:
		case <-ctx.Done():
		}
	}
	for {
		dr.mu.Lock()
		if len(l.queue) == 0 {
			delete(dr.lanes, room)
			dr.mu.Unlock()
			return
		}
		q := l.queue[0]
		dr.mu.Unlock()
		if !dr.deliver(ctx, q) {
			return
		}
		dr.mu.Lock()
		l.queue[0] = queue.Queued{}
		l.queue = l.queue[1:]
		dr.mu.Unlock()
	}
}

// deliver attempts q until it is settled: delivered, or dead-lettered. It returns false when
// ctx ends first; q is then still held and will be handed back.
func (dr *drainer) deliver(ctx context.Context, q queue.Queued) bool {
	r := dr.r
	d := r.pt.d
	r.mu.Lock()
	res, direct := r.doneDirect[q.EventSeq]
	if direct && q.ReplayOf == 0 {
		delete(r.doneDirect, q.EventSeq)
		if res.tried.Attempts > 0 && q.Attempts == 0 {
			q.Attempts, q.FirstAttempt, q.NextAttempt = res.tried.Attempts, res.tried.FirstAttempt, res.tried.NextAttempt
		}
	}
	settledBefore := r.partSettledLocked(q)
	r.mu.Unlock()
	if settledBefore {
		return dr.settle(q) // by an earlier run, before its batch could be acknowledged
	}
	if direct && res.settled && q.ReplayOf == 0 {
		return dr.settle(q) // settled by the direct attempt that was in flight when it spilled
	}
	// A delivery that failed before it was spilled goes on with its schedule.
	first, attempts := q.FirstAttempt, q.Attempts
	var last sender.Attempt
	if wait := time.Until(q.NextAttempt); attempts > 0 && wait > 0 {
		dr.waitOnPurpose(func() { sleep(ctx, wait) })
	}
	for {
		if ctx.Err() != nil {
			return false
		}
		v, ok := d.dir.Get(r.id)
		switch {
		case !ok || v.Disabled:
			reason := "endpoint removed"
			if ok {
				reason = "endpoint disabled"
				if v.Reason != "" {
					reason += ": " + v.Reason
				}
			}
			return dr.deadLetter(ctx, q, v, deadletter.ReasonGone, reason, attempts, last, first)
		case v.Paused:
			_, changed := d.dir.Snapshot()
			dr.waitOnPurpose(func() {
				select {
				case <-ctx.Done():
				case <-changed:
				case <-time.After(time.Second):
				}
			})
			continue
		case !v.Filter.Allows(q.Event):
			return dr.settle(q)
		}
		var probe, mayTry bool
		dr.waitOnPurpose(func() { probe, mayTry = d.breakers.Wait(ctx, r.id, d.sender.Timeout()+time.Second) })
		if !mayTry || ctx.Err() != nil {
			return false
		}
		if first.IsZero() {
			first = time.Now()
		}
		dr.progress.Add(1)
		last = d.attempt(ctx, v, q, probe)
		attempts++
		switch last.Verdict {
		case sender.Delivered:
			return dr.settle(q)
		case sender.Gone:
			d.disableGone(ctx, r.id)
			fallthrough
		case sender.Reject, sender.Forbidden:
			reason, detail := deadLetterReason(last)
			return dr.deadLetter(ctx, q, v, reason, detail, attempts, last, first)
		}
		if ctx.Err() != nil {
			return false
		}
		delay, more := d.cfg.Retry.NextDelay(attempts, last.RetryAfter, rand.Float64)
		if !more {
			return dr.deadLetter(ctx, q, v, deadletter.ReasonExhausted, last.Reason(), attempts, last, first)
		}
		d.metrics.Retries.WithLabelValues(endpointLabel(v.Endpoint)).Inc()
		d.log.Info("delivery failed; will retry", "room", q.Room, "event", q.Event, "event_id", q.EventID,
			"endpoint", r.id, "host", endpoint.URLHost(v.URL), "attempt", attempts, "reason", last.Reason(), "retry_in", delay.Round(time.Millisecond).String())
		dr.waitOnPurpose(func() { sleep(ctx, delay) })
	}
}

// laneCount is how many rooms the drainer is delivering now.
func (dr *drainer) laneCount() int {
	dr.mu.Lock()
	defer dr.mu.Unlock()
	return len(dr.lanes)
}

// waitOnPurpose runs a wait that the stall watch must not take for a stall.
func (dr *drainer) waitOnPurpose(wait func()) {
	dr.waiting.Add(1)
	defer dr.waiting.Add(-1)
	wait()
}

func (dr *drainer) deadLetter(ctx context.Context, q queue.Queued, v endpoint.View, reason, detail string, attempts int, last sender.Attempt, first time.Time) bool {
	if err := dr.r.pt.d.deadLetter(ctx, dr.r.id, v, q, reason, detail, attempts, last, first); err != nil {
		return false
	}
	return dr.settle(q)
}

// settle marks a spilled delivery settled; with the last of its stored message to be settled
// it acknowledges the message and waits for the server's confirmation. A message of one
// delivery is acknowledged before its room's next delivery goes out, so that one cannot
// come back after a newer one; a batch's deliveries are settled one by one and it is
// acknowledged once all of them are, so a drainer that stops before then (a takeover, a
// restart) leaves the batch to be delivered again. This replica's next drainer skips what is
// settled of it; another replica's sends it again, a repeat receivers drop by id.
func (dr *drainer) settle(q queue.Queued) bool {
	d := dr.r.pt.d
	dr.progress.Add(1)
	if !dr.r.settlePart(q) {
		return true
	}
	if err := dr.held.Ack(context.Background(), q.Seq); err != nil {
		d.log.Warn("ack not confirmed; the delivery may be repeated", "room", q.Room, "event_id", q.EventID, "endpoint", dr.r.id, "error", err)
		dr.breakOnce.Do(func() { close(dr.broken) })
		return false
	}
	dr.r.forgetParts(q.Seq)
	if q.ReplayOf > 0 {
		// A replayed dead letter leaves the DLQ once its delivery is settled (a new dead
		// letter replaces it if it failed again).
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		if err := d.dlq.DeleteMsg(ctx, q.ReplayOf); err != nil {
			if _, gerr := d.dlq.GetMsg(ctx, q.ReplayOf); !errors.Is(gerr, jetstream.ErrMsgNotFound) {
				d.log.Warn("could not remove a replayed dead letter", "room", q.Room, "event_id", q.EventID, "dlq_seq", q.ReplayOf, "error", err)
			}
		}
	}
	return true
}

// batchProgress is which deliveries of one stored batch are settled.
type batchProgress struct {
	done []bool
	left int
}

// settlePart records q settled and reports whether its stored message has nothing left
// unsettled, so that it can be acknowledged.
func (r *route) settlePart(q queue.Queued) bool {
	if q.Parts <= 1 {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.partsDone == nil {
		r.partsDone = map[uint64]*batchProgress{}
	}
	bp := r.partsDone[q.Seq]
	if bp == nil {
		bp = &batchProgress{done: make([]bool, q.Parts), left: q.Parts}
		r.partsDone[q.Seq] = bp
	}
	if q.Part < len(bp.done) && !bp.done[q.Part] {
		bp.done[q.Part] = true
		bp.left--
	}
	return bp.left == 0
}

// partSettledLocked reports whether an earlier drainer of this route settled q.
func (r *route) partSettledLocked(q queue.Queued) bool {
	bp := r.partsDone[q.Seq]
	return bp != nil && q.Part < len(bp.done) && bp.done[q.Part]
}

// forgetParts drops the progress of an acknowledged message.
func (r *route) forgetParts(seq uint64) {
	r.mu.Lock()
	delete(r.partsDone, seq)
	r.mu.Unlock()
}
