package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/deadletter"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/internal/backoff"
	"github.com/roomhook/roomhook/rooms"
	"github.com/roomhook/roomhook/subscriber"
)

// partition is one partition's delivery while this replica owns it: one durable consumer
// reads the partition's events in stream order, and each event fans out in memory to the
// routes of its endpoints. A partition message is acknowledged once every endpoint has it
// settled (delivered or dead-lettered) or durably spilled, so the partition stream holds
// only events still being delivered, and a new owner redelivers exactly those.
type partition struct {
	d     *Dispatcher
	p     int
	log   *slog.Logger
	held  *subscriber.HeldSet
	rooms *rooms.Registry
	// resume is this run's place in the consumer's delivery sequence (see Resume.Admit);
	// used by the run's main loop only.
	resume *subscriber.Resume
	ctx    context.Context // ends when the partition stops; lanes, writers and drainers follow it
	wg     sync.WaitGroup  // every lane, writer and drainer of the partition: see addOwned
	goMu   sync.Mutex      // guards closed and each wg.Add; taken last, after any other lock
	closed bool            // the partition's end waits for its goroutines: no new one starts

	mu      sync.Mutex
	routes  map[string]*route
	lastSeq uint64     // highest partition-stream sequence fanned out by this run
	fanned  *seqWindow // sequences fanned out by this run lately: a redelivery of one is a lost ack

	lastPressure time.Time // when a route was last spilled because the window was nearly full

	handled atomic.Uint64 // partition messages taken in
	// progress counts partition messages released, direct attempts that came back and
	// deliveries stored in spill queues: the stall watch's sign of progress. Released messages
	// alone were not enough: on saturated CPUs an event waits for the slowest of its
	// endpoints, and a partition fanning out to 200 of them settled nothing for 10 s while its
	// routes kept working, was started over and repeated what it held (13,000-33,000 repeats
	// in 4 of 24 benchmark runs).
	progress atomic.Uint64
}

// goOwned starts f as one of the partition's goroutines, whose end the partition waits for,
// and reports whether it did. Once the partition waits (closeAndWait) it starts nothing:
// a notification, or an attempt's slow-watch timer, that spills a route as the partition
// stops would otherwise start a writer or a drainer after the wait, owned by nobody.
func (pt *partition) goOwned(f func()) bool {
	if !pt.addOwned() {
		return false
	}
	go func() {
		defer pt.wg.Done()
		f()
	}()
	return true
}

// addOwned counts one more goroutine in the partition's wait group, unless the partition
// waits already; the caller starts it, and the goroutine calls pt.wg.Done. For the lanes,
// started once per event where rooms send a few events a second: one goroutine, no closure.
func (pt *partition) addOwned() bool {
	pt.goMu.Lock()
	defer pt.goMu.Unlock()
	if pt.closed {
		return false
	}
	pt.wg.Add(1)
	return true
}

// closeAndWait stops goOwned and addOwned from counting goroutines in, and waits for those
// they counted.
func (pt *partition) closeAndWait() {
	pt.goMu.Lock()
	pt.closed = true
	pt.goMu.Unlock()
	pt.wg.Wait()
}

// release acknowledges a settled partition message.
func (pt *partition) release(seq uint64) {
	pt.held.Release(seq)
	pt.progress.Add(1)
}

// heldEvent counts the endpoints that have not yet settled or spilled one partition message.
type heldEvent struct {
	p         *partition
	seq       uint64
	remaining int
	mu        sync.Mutex
}

// done marks one endpoint's share of the event settled; the last one acknowledges it.
func (h *heldEvent) done() {
	if h == nil {
		return
	}
	h.mu.Lock()
	h.remaining--
	last := h.remaining == 0
	h.mu.Unlock()
	if last {
		h.p.release(h.seq)
	}
}

// pullExpiry is how long a partition's pull requests live at the server: short, since a
// handover waits for the last one to end.
func (d *Dispatcher) pullExpiry() time.Duration {
	return max(time.Second, min(5*time.Second, d.cfg.Takeover/4))
}

// waitOutPull waits, until ctx ends, for a pull request made before since to have expired at
// the server: see the end of runPartitionOnce.
func (d *Dispatcher) waitOutPull(ctx context.Context, since time.Time) {
	sleep(ctx, time.Until(since.Add(d.pullExpiry())))
}

// admitted reports whether a delivery is taken in (subscriber.Resume.Admit), and logs one
// that was lost on its way.
func admitted(ctx context.Context, r *subscriber.Resume, meta *jetstream.MsgMetadata, log *slog.Logger) bool {
	ok, err := r.Admit(ctx, meta)
	if err != nil {
		log.Warn("a delivery was lost on its way; it is sent again in order", "error", err)
	}
	return ok
}

// window is how many partition messages may be held at once: it bounds a partition's memory.
func (d *Dispatcher) window() int { return max(1024, 8*d.cfg.MaxInFlight) }

func (d *Dispatcher) runPartition(ctx context.Context, p int) {
	d.metrics.PartitionsOwned.Inc()
	defer d.metrics.PartitionsOwned.Dec()
	delays := backoff.New(200*time.Millisecond, 10*time.Second)
	for ctx.Err() == nil {
		start := time.Now()
		err := d.runPartitionOnce(ctx, p)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			delays.Reset()
		}
		wait := delays.Next()
		if !errors.Is(err, errStalled) {
			d.log.Error("partition stopped; starting over", "partition", p, "error", err, "retry_in", wait.Round(time.Millisecond).String())
		}
		sleep(ctx, wait)
	}
}

func (d *Dispatcher) runPartitionOnce(ctx context.Context, p int) error {
	cons, err := d.partConsumer(ctx, p)
	if err != nil {
		return err
	}
	// pctx is what the partition's lanes, writers and drainers follow. It outlives a
	// handover (the unit given up on purpose, its lease still ours) until the partition has
	// settled, so that lanes deliver what they hold and writers store what spilled; any other
	// end of ctx (a lease that may be lost, a restart) ends it as the main loop ends.
	pctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancel(nil)
	pt := &partition{
		d: d, p: p, log: d.log.With("partition", p), held: subscriber.NewHeldSet(),
		rooms: rooms.New(d.rooms, d.cfg.RoomGrace, p, rooms.WithTTL(d.cfg.RoomTTL)), ctx: pctx, routes: map[string]*route{},
		fanned: newSeqWindow(4 * subscriber.AckWait(d.cfg.Takeover)),
	}
	if d.cfg.PerRoomWebhooks {
		// Before the first event: then a room without a registration, the common case, costs
		// its first event no request.
		if err := pt.rooms.Load(ctx); err != nil {
			pt.log.Warn("reading the partition's room registrations failed; each room is looked up on its first event", "error", err)
		}
	}
	d.addPartition(pt)
	defer d.removePartition(pt)
	in := make(chan jetstream.Msg, d.window())
	handle, err := subscriber.ResumeInOrder(ctx, d.js, cons, d.cfg.Takeover, func(m jetstream.Msg) {
		select {
		case in <- m:
		case <-pctx.Done():
			_ = m.Nak() // stopping: back to the next owner at once
		}
	})
	if err != nil {
		return err
	}
	defer handle.Stop()
	if handle.ResetFailed != nil {
		pt.log.Info("resuming behind the gate: the consumer could not be reset", "error", handle.ResetFailed)
	}
	pt.resume = handle
	// Held events are kept alive until they are handed back, through the wait for the last
	// pull request at the end too.
	stopKeepAlive := pt.held.StartKeepAlive(subscriber.KeepAliveEvery(d.cfg.Takeover))
	defer stopKeepAlive()
	if err := pt.resumeSpilled(ctx, true); err != nil {
		return err
	}
	notify, err := d.nc().Subscribe(d.names.NotifySubject(p), func(m *nats.Msg) {
		if id := string(m.Data); endpointIDPattern.MatchString(id) {
			pt.spilledOutside(id)
		}
	})
	if err != nil {
		return fmt.Errorf("partition %d: subscribe to notifications: %w", p, err)
	}
	defer func() { _ = notify.Unsubscribe() }()
	watch, lost, stopWatch := subscriber.WatchLoss(cons)
	defer stopWatch() // after the consume is closed below: joins a check of the consumer
	cc, err := cons.Consume(handle.Handle, jetstream.PullMaxMessages(min(d.window(), 1024)), watch,
		jetstream.PullExpiry(d.pullExpiry()))
	if err != nil {
		return fmt.Errorf("partition %d: consume: %w", p, err)
	}
	d.metrics.Consumers.WithLabelValues("partition").Inc()
	defer d.metrics.Consumers.WithLabelValues("partition").Dec()
	rescan := time.NewTicker(30 * time.Second)
	defer rescan.Stop()
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	stall := newStallWatch(d.stallAfter())
	watchStall := time.NewTicker(d.stallAfter() / 4)
	defer watchStall.Stop()
	idleSince, idleAt, sawPending := pt.handled.Load(), time.Now(), false
	var stopped error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-lost:
			stopped = fmt.Errorf("partition consumer %s is gone; creating it again", d.names.PartConsumer(p))
			break loop
		case <-rescan.C:
			if err := pt.resumeSpilled(ctx, false); err != nil {
				pt.log.Warn("looking for spilled deliveries failed", "error", err)
			}
		case <-watchStall.C:
			if stall.stalled(pt.held.Len() > 0, pt.progress.Load()) {
				pt.log.Warn("partition holds events and has made no progress for a while (nothing settled, no attempt back); starting it over",
					append([]any{"held", pt.held.Len(), "for", d.stallAfter().String()}, consumerState(ctx, cons)...)...)
				stopped = fmt.Errorf("partition %d: %w for %s", p, errStalled, d.stallAfter())
				break loop
			}
			// Holding nothing: the server may still have events for it that never come (a
			// pull that died without a word). Asked once per stall window, only when idle.
			// Pending twice in a row, a window apart, with nothing taken in between: an event
			// published a moment before a check is not a stall.
			if n := pt.handled.Load(); pt.held.Len() == 0 && n == idleSince && time.Since(idleAt) >= d.stallAfter() {
				idleAt = time.Now()
				pending, ok := consumerPending(ctx, cons)
				wasPending := sawPending
				sawPending = ok && pending > 0
				if sawPending && wasPending {
					pt.log.Warn("partition gets no events while the server has some for it; starting it over",
						append([]any{"for", d.stallAfter().String()}, consumerState(ctx, cons)...)...)
					stopped = fmt.Errorf("partition %d: %w for %s", p, errStalled, d.stallAfter())
					break loop
				}
			} else if n != idleSince {
				idleSince, idleAt, sawPending = n, time.Now(), false
			}
		case <-sweep.C:
			if n, err := pt.rooms.Sweep(ctx, time.Now()); err != nil {
				pt.log.Warn("room registry sweep failed", "forgot", n, "error", err)
			} else if n > 0 {
				pt.log.Info("forgot finished rooms", "rooms", n)
			}
		case m := <-in:
			pt.handled.Add(1)
			pt.handle(ctx, m)
		}
	}
	// Stop pulling and take in what is on its way (held, then handed back). On a handover,
	// lanes deliver what they hold and writers store what spilled, for a while (settle);
	// otherwise they stop at once. Then lanes finish the attempts in progress (bounded by the
	// HTTP timeout), writers stop, drainers hand back, and every partition message not
	// settled is handed back, so the next owner gets them first, in order.
	if ctx.Err() != nil && !errors.Is(context.Cause(ctx), subscriber.ErrHandingOver) {
		cancel(context.Cause(ctx))
	}
	drained := time.Now()
	cc.Drain()
	<-cc.Closed()
	// Nothing reaches in after this: Consume's callbacks have ended, and the gate's timer,
	// which releases what it held back, is stopped (Stop waits for a release in progress).
	handle.Stop()
	handingOver := errors.Is(context.Cause(ctx), subscriber.ErrHandingOver)
	restarting := stopped != nil && ctx.Err() == nil
	if handingOver {
		// Given up on purpose, lease still ours: settle first. A unit whose lease may be
		// lost stops at once instead.
		pt.settle(min(2*d.cfg.SpillAfter, d.cfg.Takeover/2))
	}
	if handingOver || restarting {
		// The server keeps this run's last pull request until it expires, and may hand it
		// an event after the subscription is gone (across routes and gateways the end of
		// interest travels slowly), a handed-back one too: that event would reach the next
		// owner, or this replica's next run, only after its ack wait, behind newer ones.
		// Waiting the request out keeps the order. (A replica that lost its lease stops at
		// once: the next owner takes over only after the lease expired, later than that.
		// A restart's wait ends there too.)
		wait := context.Background()
		if restarting {
			wait = ctx
		}
		d.waitOutPull(wait, drained)
	}
	if restarting {
		cancel(errRestarting) // drainers wait out their own last pull requests too
	} else {
		cancel(context.Cause(ctx)) // a handover's cause: drainers wait out their pulls too
	}
	pt.closeAndWait()
	stopKeepAlive()
	if n := pt.held.HandBack(); n > 0 {
		pt.log.Debug("handed back events", "count", n)
	}
	// Taken in but not handled: handed back too, after the older ones held, so that they
	// come back at once rather than after their ack wait.
	for len(in) > 0 {
		_ = (<-in).Nak()
	}
	return stopped
}

func (d *Dispatcher) partConsumer(ctx context.Context, p int) (jetstream.Consumer, error) {
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	cons, err := d.js.CreateOrUpdateConsumer(rctx, d.names.PartStream(), jetstream.ConsumerConfig{
		Durable:       d.names.PartConsumer(p),
		Description:   "roomhook: one partition's events, fanned out to their endpoints",
		FilterSubject: d.names.PartFilter(p),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       subscriber.AckWait(d.cfg.Takeover),
		MaxAckPending: d.window(),
		MaxDeliver:    -1,
	})
	if err != nil {
		return nil, fmt.Errorf("partition %d consumer: %w", p, err)
	}
	return cons, nil
}

// handle fans one partition message out, in stream order.
func (pt *partition) handle(ctx context.Context, m jetstream.Msg) {
	d := pt.d
	meta, err := m.Metadata()
	if err != nil {
		_ = m.Term()
		return
	}
	seq := meta.Sequence.Stream
	if !admitted(ctx, pt.resume, meta, pt.log) {
		return // sent again after the reset, in order
	}
	if pt.held.Add(seq, m) {
		return // a redelivery of an event still being delivered: only its handle is renewed
	}
	if pt.fanned.has(seq) {
		// Settled earlier in this run, but the acknowledgement was lost.
		pt.release(seq)
		return
	}
	if seq < pt.lastSeq {
		// An event the previous owner left unsettled that came back after this run had
		// moved on (its redelivery was late: the old owner died, or the server was away).
		// Sent late rather than never: its room may see it after a newer event.
		pt.log.Warn("a late redelivery is delivered out of order", "seq", seq, "last_seq", pt.lastSeq,
			"delivered_count", meta.NumDelivered)
	}
	pt.fanned.add(seq, time.Now())
	pt.lastSeq = max(pt.lastSeq, seq)
	ev, invalid := d.readEvent(m, meta)
	if invalid != nil {
		d.metrics.InvalidEvents.Inc()
		d.metrics.DeadLetters.WithLabelValues(deadletter.ReasonInvalid).Inc()
		pt.log.Warn("invalid event dead-lettered", "room", invalid.Room, "event", invalid.Event,
			"seq", invalid.EventSeq, "reason", invalid.Detail)
		retry(ctx, d, "record an invalid event", func() error {
			rctx, cancel := context.WithTimeout(ctx, requestTimeout)
			defer cancel()
			return deadletter.Publish(rctx, d.js, d.names.DLQSubject(deadletter.ReasonInvalid), *invalid)
		})
		if ctx.Err() == nil {
			pt.release(seq)
		}
		return
	}
	d.metrics.EventsConsumed.WithLabelValues(d.eventLabel(ev.Event)).Inc()
	targets := pt.targets(ctx, ev)
	if ctx.Err() != nil {
		return // stopping: the event is handed back
	}
	if ev.Event == "room_finished" && d.cfg.PerRoomWebhooks {
		retry(ctx, d, "record room_finished", func() error { return pt.rooms.Finish(ctx, ev.Room, ev.Stored) })
	}
	if len(targets) == 0 {
		pt.release(seq)
		return
	}
	pt.relievePressure()
	h := &heldEvent{p: pt, seq: seq, remaining: len(targets)}
	for _, id := range targets {
		pt.route(id).submit(delivery{Queued: ev.Queued, ev: h})
	}
}

// targets lists the endpoints an event goes to: every global endpoint whose filter takes it,
// and the room's own endpoints. A room_created with webhook_urls registers them first, so
// that room_created reaches them too.
func (pt *partition) targets(ctx context.Context, ev inbound) []string {
	d := pt.d
	out := make([]string, 0, 4)
	for _, v := range d.dir.Globals() {
		// A global endpoint disabled by 410 Gone still gets its deliveries: they are
		// dead-lettered, so an operator can replay them once it is resumed.
		if v.Filter.Allows(ev.Event) {
			out = append(out, v.ID)
		}
	}
	if !d.cfg.PerRoomWebhooks {
		return out
	}
	if ev.Event == "room_created" && len(ev.urls) > 0 {
		valid := d.roomURLs(ev.Room, ev.urls)
		registered := make([]string, 0, len(valid))
		for _, u := range valid {
			var err error
			retry(ctx, d, "register endpoint", func() error {
				rctx, cancel := context.WithTimeout(ctx, requestTimeout)
				defer cancel()
				_, err = d.dir.EnsurePerRoom(rctx, u, d.cfg.MaxRoomEndpoints)
				if errors.Is(err, endpoint.ErrTooMany) {
					return nil
				}
				return err
			})
			if errors.Is(err, endpoint.ErrTooMany) {
				d.metrics.RoomEndpointsRefused.Inc()
				pt.log.Warn("per-room endpoint refused: ROOMHOOK_MAX_ROOM_ENDPOINTS live per-room endpoints exist",
					"room", ev.Room, "url", endpoint.RedactURL(u), "max", d.cfg.MaxRoomEndpoints)
				continue
			}
			registered = append(registered, u)
		}
		retry(ctx, d, "register room", func() error { return pt.rooms.Register(ctx, ev.Room, registered, ev.EventSeq) })
	}
	var roomEndpoints []string
	retry(ctx, d, "look up room", func() (err error) { roomEndpoints, err = pt.rooms.Endpoints(ctx, ev.Room, ev.Stored); return err })
	for _, id := range roomEndpoints {
		if v, ok := d.dir.Get(id); !ok || v.Disabled {
			continue
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// route returns the partition's route to an endpoint, creating it on first use.
func (pt *partition) route(id string) *route {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	r := pt.routes[id]
	if r == nil {
		r = newRoute(pt, id)
		pt.routes[id] = r
	}
	return r
}

// forget drops an idle route, so memory follows the endpoints with live work.
func (pt *partition) forget(r *route) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if pt.routes[r.id] == r && r.idleLocked() {
		delete(pt.routes, r.id)
		r.retired = true
	}
}

// snapshot lists the partition's routes.
func (pt *partition) snapshot() []*route {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	out := make([]*route, 0, len(pt.routes))
	for _, r := range pt.routes {
		out = append(out, r)
	}
	return out
}

// relievePressure spills the route holding most of the partition's window when the window is
// nearly full and other routes share the partition: one endpoint that falls behind moves to
// its spill queue instead of holding every other endpoint's events back.
func (pt *partition) relievePressure() {
	window := pt.d.window()
	if pt.held.Len() < window*3/4 || time.Since(pt.lastPressure) < 100*time.Millisecond {
		return
	}
	pt.lastPressure = time.Now()
	routes := pt.snapshot()
	if len(routes) < 2 {
		return
	}
	var worst *route
	most := 0
	queued := make([]int, 0, len(routes))
	for _, r := range routes {
		n := r.queued()
		queued = append(queued, n)
		if n > most {
			worst, most = r, n
		}
	}
	// Only an endpoint that lags the others spills: when every endpoint is as far behind,
	// the window is full because events come faster than anyone takes them, and the
	// partition waits (the server holds the rest) rather than copy every event once more
	// per endpoint into spill queues.
	slices.Sort(queued)
	others := queued[:len(queued)-1] // every route but the worst
	typical := others[len(others)/2]
	if worst != nil && most >= window/4 && most >= 2*typical {
		worst.spill(fmt.Sprintf("holds %d of the partition's %d in-flight events, other endpoints about %d", most, window, typical))
	}
}

// resumeSpilled starts draining every spill queue of the partition that holds deliveries:
// at takeover, what the previous owner spilled is found here.
func (pt *partition) resumeSpilled(ctx context.Context, atStart bool) error {
	ids, err := pt.d.spilledEndpoints(ctx, pt.d.names.SpillPartitionFilter(pt.p))
	if err != nil {
		return err
	}
	for _, id := range ids {
		pt.spilledOutside(id)
	}
	if atStart {
		pt.deleteIdleSpillConsumers(ctx, ids)
	}
	return nil
}

// deleteIdleSpillConsumers removes the partition's spill consumers that no drainer of this
// replica runs and whose queue is empty: left by a drainer that stopped with its partition
// (a handover, a restart), they would otherwise wait for the server's inactivity threshold.
func (pt *partition) deleteIdleSpillConsumers(ctx context.Context, spilled []string) {
	d := pt.d
	busy := map[string]bool{}
	for _, id := range spilled {
		busy[d.names.SpillConsumer(id, pt.p)] = true
	}
	for _, r := range pt.snapshot() {
		r.mu.Lock()
		if r.drainer != nil {
			busy[d.names.SpillConsumer(r.id, pt.p)] = true
		}
		r.mu.Unlock()
	}
	suffix := "_" + strconv.Itoa(pt.p)
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	names := d.spillSt.ConsumerNames(rctx)
	var idle []string
	for name := range names.Name() {
		if strings.HasPrefix(name, "spill_") && strings.HasSuffix(name, suffix) && !busy[name] {
			idle = append(idle, name)
		}
	}
	for _, name := range idle {
		if err := d.js.DeleteConsumer(rctx, d.names.SpillStream(), name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			pt.log.Debug("deleting an idle spill consumer", "consumer", name, "error", err)
		}
	}
}

// spilledOutside is told that id's spill queue on this partition has deliveries this replica
// did not write (a previous owner, a replay, an upgrade): the route spills and drains it.
func (pt *partition) spilledOutside(id string) {
	pt.route(id).spill("its spill queue holds deliveries")
}

// settle waits, at most grace, until every partition message taken is settled: healthy
// endpoints answer, slow or failing ones spill within SpillAfter and their spill writes are
// local to JetStream. Handing back an event that some endpoints already have makes the next
// owner send it to them again, so a handover (every rolling restart) waits for this first.
func (pt *partition) settle(grace time.Duration) {
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for pt.held.Len() > 0 {
		select {
		case <-deadline.C:
			return
		case <-tick.C:
		}
	}
}
