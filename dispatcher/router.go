package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/subscriber"
)

// routerBatch bounds how many events the router handles between acknowledgements.
const routerBatch = 256

// router reads the events stream in stream order and queues deliveries. Because it is the
// only reader, the per-room registry it keeps is consistent with the order of events: a
// room_created registers its URLs before the room_created itself is routed.
type router struct {
	d       *Dispatcher
	lastSeq uint64            // highest events-stream sequence routed by this run
	cur     *routedBatch      // the batch being routed
	stored  chan *routedBatch // batches waiting for their deliveries to be stored
}

// routedBatch is what one batch of events queued, and the event that acknowledges it.
type routedBatch struct {
	msgs    []*nats.Msg
	futures []jetstream.PubAckFuture
	last    jetstream.Msg
}

// confirmAhead is how many routed batches may wait for their stores while the next is routed:
// routing and storing overlap instead of taking turns.
const confirmAhead = 4

func (d *Dispatcher) runRouter(ctx context.Context) {
	r := &router{d: d}
	d.rooms.Reset()
	for ctx.Err() == nil {
		if err := r.run(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("router stopped; restarting", "error", err)
			sleep(ctx, time.Second)
		}
	}
}

func (r *router) run(ctx context.Context) error {
	d := r.d
	cons, err := d.js.CreateOrUpdateConsumer(ctx, d.names.EventsStream(), jetstream.ConsumerConfig{
		Durable:       d.names.RouterConsumer(),
		Description:   "roomhook router: events to per-endpoint delivery queues",
		FilterSubject: d.names.EventsSubjects(),
		AckPolicy:     jetstream.AckAllPolicy,
		AckWait:       subscriber.AckWait(d.cfg.Takeover),
		MaxAckPending: 4 * routerBatch,
		MaxDeliver:    -1,
	})
	if err != nil {
		return fmt.Errorf("router consumer: %w", err)
	}
	msgs := make(chan jetstream.Msg, 4*routerBatch)
	handle, err := subscriber.ResumeInOrder(ctx, cons, d.cfg.Takeover, func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-ctx.Done():
		}
	})
	if err != nil {
		return err
	}
	watch, lost := subscriber.WatchLoss(cons)
	cc, err := cons.Consume(handle, jetstream.PullMaxMessages(4*routerBatch), watch)
	if err != nil {
		return fmt.Errorf("router consume: %w", err)
	}
	defer cc.Stop()
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	r.stored = make(chan *routedBatch, confirmAhead)
	confirmed := make(chan struct{})
	go func() {
		defer close(confirmed)
		for b := range r.stored {
			if !r.confirm(ctx, b) {
				return
			}
			if b.last != nil {
				_ = b.last.Ack() // AckAll: acknowledges the batch and everything before it
			}
		}
	}()
	defer func() {
		close(r.stored)
		<-confirmed
	}()
	batch := make([]jetstream.Msg, 0, routerBatch)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-lost:
			return errors.New("router consumer is gone; creating it again")
		case <-sweep.C:
			if n, err := d.rooms.Sweep(ctx, time.Now()); err != nil {
				d.log.Warn("room registry sweep failed", "error", err)
			} else if n > 0 {
				d.log.Info("forgot finished rooms", "rooms", n)
			}
		case m := <-msgs:
			batch = append(batch[:0], m)
		drain:
			for len(batch) < routerBatch {
				select {
				case m := <-msgs:
					batch = append(batch, m)
				default:
					break drain
				}
			}
			r.routeBatch(ctx, batch)
		}
	}
}

func (r *router) routeBatch(ctx context.Context, batch []jetstream.Msg) {
	r.cur = &routedBatch{msgs: make([]*nats.Msg, 0, len(batch)), futures: make([]jetstream.PubAckFuture, 0, len(batch))}
	for _, m := range batch {
		meta, err := m.Metadata()
		if err != nil {
			continue
		}
		if meta.Sequence.Stream <= r.lastSeq {
			// A redelivery of something already routed (its ack was slow); the next ack covers it.
			r.cur.last = m
			continue
		}
		if !r.route(ctx, m, meta) {
			return // ctx ended mid-way; nothing after this point is acknowledged
		}
		r.lastSeq, r.cur.last = meta.Sequence.Stream, m
	}
	select {
	case r.stored <- r.cur:
	case <-ctx.Done():
	}
}

// confirm waits until every delivery the batch queued is stored. On failure it publishes the
// batch again in order; what was already stored is dropped as a duplicate by its Nats-Msg-Id.
func (r *router) confirm(ctx context.Context, b *routedBatch) bool {
	failed := false
	for _, f := range b.futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			if !failed {
				r.d.log.Warn("queueing a delivery failed; publishing the batch again", "error", err)
			}
			failed = true
		case <-ctx.Done():
			return false
		}
	}
	for failed && ctx.Err() == nil {
		sleep(ctx, 200*time.Millisecond)
		failed = false
		for _, msg := range b.msgs {
			if _, err := r.d.js.PublishMsg(ctx, msg); err != nil {
				failed = true
				break
			}
		}
	}
	return !failed
}

func (r *router) publish(ctx context.Context, msg *nats.Msg) bool {
	r.cur.msgs = append(r.cur.msgs, msg)
	for {
		f, err := r.d.js.PublishMsgAsync(msg)
		if err == nil {
			r.cur.futures = append(r.cur.futures, f)
			return true
		}
		select {
		case <-r.d.js.PublishAsyncComplete():
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// route queues one event's deliveries (or its dead letter); false only when ctx ended.
func (r *router) route(ctx context.Context, m jetstream.Msg, meta *jetstream.MsgMetadata) bool {
	d := r.d
	seq, stored := meta.Sequence.Stream, meta.Timestamp
	data := m.Data()
	invalid := func(room, event, detail string) bool {
		d.metrics.InvalidEvents.Inc()
		d.metrics.DeadLetters.WithLabelValues(ReasonInvalid).Inc()
		d.log.Warn("invalid event dead-lettered", "room", room, "event", event, "seq", seq, "subject", m.Subject(), "reason", detail)
		body := data
		dl := DeadLetter{Reason: ReasonInvalid, Detail: detail, EndpointID: ReasonInvalid,
			Room: room, Event: event, EventSeq: seq, Subject: m.Subject(), Stored: stored}
		if len(body) > MaxInvalidKept {
			body, dl.Truncated = body[:MaxInvalidKept], true
		}
		dl.Body = body
		return r.publish(ctx, dl.msg(d.names.DLQSubject(ReasonInvalid)))
	}
	addr, err := schema.ParseSubject(m.Subject())
	if err != nil {
		return invalid("", "", err.Error())
	}
	if len(data) > d.cfg.MaxEventBytes {
		return invalid(addr.Room, addr.Event, fmt.Sprintf("event is %d bytes, over ROOMHOOK_MAX_EVENT_BYTES (%d)", len(data), d.cfg.MaxEventBytes))
	}
	evt, err := schema.DecodeEvent(data)
	if err != nil {
		return invalid(addr.Room, addr.Event, err.Error())
	}
	room := evt.GetRoom().GetRoomId()
	if room == "" {
		return invalid(addr.Room, addr.Event, "event has no room.room_id")
	}
	if room != addr.Room {
		return invalid(addr.Room, addr.Event, fmt.Sprintf("room %q in the payload differs from room %q in the subject", room, addr.Room))
	}
	name := strings.ToLower(evt.GetEvent())
	if name == "" {
		name = addr.Event
		evt.Event = &name
	}
	fb := schema.Fallback{ID: schema.StreamEventID(d.names.EventsStream(), seq), CreatedAt: stored.Unix()}
	body, err := schema.MarshalBody(evt, fb)
	if err != nil {
		return invalid(room, name, err.Error())
	}
	eventID := evt.GetId()
	if eventID == "" {
		eventID = fb.ID
	}
	d.metrics.EventsConsumed.WithLabelValues(d.eventLabel(name)).Inc()

	targets := r.targets(ctx, evt.GetWebhookUrls(), room, name, seq, stored)
	if targets == nil && ctx.Err() != nil {
		return false
	}
	part := Partition(room, d.cfg.Partitions)
	q := Queued{Room: room, Event: name, EventID: eventID, EventSeq: seq, Stored: stored, Body: body}
	seqStr := strconv.FormatUint(seq, 10)
	for _, id := range targets {
		if !r.publish(ctx, q.Msg(d.names.DeliverSubject(id, part), seqStr+":"+id)) {
			return false
		}
	}
	if name == "room_finished" && d.cfg.PerRoomWebhooks {
		retry(ctx, d, "record room_finished", func() error { return d.rooms.Finish(ctx, room, stored) })
	}
	return ctx.Err() == nil
}

// targets lists the endpoint ids an event goes to: every enabled global endpoint whose filter
// takes it, and the room's own endpoints. A room_created with webhook_urls registers them
// first, so that room_created reaches them too.
func (r *router) targets(ctx context.Context, urls []string, room, name string, seq uint64, stored time.Time) []string {
	d := r.d
	out := make([]string, 0, 4)
	for _, v := range d.dir.Globals() {
		// A global endpoint disabled by 410 Gone still gets its deliveries queued: its worker
		// dead-letters them, so an operator can replay them once it is resumed.
		if v.Filter.Allows(name) {
			out = append(out, v.ID)
		}
	}
	if !d.cfg.PerRoomWebhooks {
		return out
	}
	if name == "room_created" && len(urls) > 0 {
		valid := make([]string, 0, len(urls))
		for _, u := range urls {
			c, err := ParseWebhookURLs([]string{u})
			if err != nil {
				// Only the host: a URL's query may carry a token.
				d.log.Warn("ignoring an invalid per-room webhook URL", "room", room, "url_host", URLHost(u))
				continue
			}
			if !slices.Contains(valid, c[0]) {
				valid = append(valid, c[0])
			}
		}
		for _, u := range valid {
			retry(ctx, d, "register endpoint", func() error { _, err := d.dir.EnsurePerRoom(ctx, u); return err })
		}
		retry(ctx, d, "register room", func() error { return d.rooms.Register(ctx, room, valid, seq) })
	}
	var roomURLs []string
	retry(ctx, d, "look up room", func() (err error) { roomURLs, err = d.rooms.URLs(ctx, room, stored); return err })
	for _, u := range roomURLs {
		id := EndpointID(u)
		if v, ok := d.dir.Get(id); ok && v.Disabled {
			continue
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return out
}

// retry runs op until it succeeds or ctx ends: the router must not skip an event because the
// registry was briefly unreachable.
func retry(ctx context.Context, d *Dispatcher, what string, op func() error) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := op()
		if err == nil {
			return
		}
		d.log.Warn(what+" failed; retrying", "error", err)
		sleep(ctx, backoff)
		if backoff < 5*time.Second {
			backoff *= 2
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
