package admin

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/roomhook/roomhook/deadletter"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/queue"
	"github.com/roomhook/roomhook/rooms"
	"github.com/roomhook/roomhook/schema"
)

// Resend from the log: the events still in the events stream are queued again for one
// endpoint, exactly as a dead-letter replay queues a dead letter: a queue.Queued with the
// event's room, name, id, events-stream sequence and webhook body, published to the endpoint's
// spill queue on the room's partition, and the partition's owner told to drain it. The events
// are read in stream order, so each room's events are queued, and delivered, in the order they
// were stored. The body is rendered as the dispatcher renders it (schema.MarshalBody with the
// stream fallbacks for id and created_at), so the receiver gets the same id and bytes again.
//
// Which events the endpoint gets is what a partition's owner sends it: a global endpoint
// every event its event filter takes; a per-room endpoint only the events of rooms whose
// room_created registered its URL, from that room_created on (a resend must not send one
// room's events to a URL another room gave). The registrations come from the rooms bucket and,
// for rooms it has forgotten, from the room_created events still in the stream.
//
// Message ids are resend:<event seq>:<endpoint id>:<nonce>. The nonce names one request: the
// same request sent again within the spill stream's duplicate window (after a timeout, say)
// queues nothing twice, while a later resend, with a new nonce, sends the events again on
// purpose. The id differs from the dispatcher's own spill ids and from replay:<dlq seq>:…, so a
// resend is never taken for either.

// nonceBytes is the size of a generated nonce, before hex encoding.
const nonceBytes = 8

var noncePattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// NewNonce returns a random ResendRequest nonce.
func NewNonce() string {
	b := make([]byte, nonceBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// resendPlan is a checked ResendRequest with the endpoint it names.
type resendPlan struct {
	ResendRequest
	id      string
	rec     endpoint.Record
	filter  endpoint.EventFilter
	subject string // filter subject of the events read
}

func (s *Service) eventsResend(ctx context.Context, req micro.Request) (any, error) {
	var r ResendRequest
	if err := decode(req, &r); err != nil {
		return nil, err
	}
	p, err := s.checkResend(ctx, r)
	if err != nil {
		return nil, err
	}
	st, err := s.js.Stream(ctx, s.names.EventsStream())
	if err != nil {
		return nil, fmt.Errorf("events stream %s: %w", s.names.EventsStream(), err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("events stream %s: %w", s.names.EventsStream(), err)
	}
	res := ResendResult{
		EndpointID: p.id, EndpointURL: RedactURL(p.rec.URL), Global: p.rec.Global, Paused: p.rec.Paused,
		DryRun: p.DryRun, Nonce: p.Nonce, Since: p.Since, Until: p.Until,
	}
	if info.State.Msgs > 0 {
		res.StreamFirst, res.StreamLast = info.State.FirstTime, info.State.LastTime
	}
	if err := checkWindow(p.ResendRequest, res.StreamFirst, res.StreamLast); err != nil {
		return nil, err
	}
	if info.State.Msgs == 0 {
		return res, nil
	}
	lastSeq, lastTime, err := lastMatching(ctx, st, p.subject)
	if err != nil {
		return nil, err
	}
	if res.Until.IsZero() {
		res.Until = lastTime
	}
	if lastSeq == 0 || lastTime.Before(p.Since) {
		return res, nil
	}
	var regs registrations
	if !p.rec.Global {
		if regs, err = s.registrations(ctx, st, p, lastSeq); err != nil {
			return nil, err
		}
	}
	rooms := map[string]bool{}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{p.subject}, InactiveThreshold: 30 * time.Second}
	since := p.Since
	cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	err = readEvents(ctx, st, cfg, lastSeq, func(m jetstream.Msg, meta *jetstream.MsgMetadata) (bool, error) {
		if !p.Until.IsZero() && meta.Timestamp.After(p.Until) {
			return false, nil // stored in time order: nothing later can match
		}
		q, _, ok := s.renderEvent(m.Subject(), m.Data(), meta.Sequence.Stream, meta.Timestamp)
		switch {
		case !ok:
			res.Invalid++
			return true, nil
		case !p.filter.Allows(q.Event) || (!p.rec.Global && !regs.registered(q.Room, q.EventSeq)):
			res.NotRouted++
			return true, nil
		}
		res.Matched++
		rooms[q.Room] = true
		if res.FirstSeq == 0 {
			res.FirstSeq = q.EventSeq
		}
		res.LastSeq = q.EventSeq
		if p.DryRun {
			return true, nil
		}
		dup, err := s.queueResend(ctx, p, q)
		if err != nil {
			return false, fmt.Errorf("resend event %d (%d queued before it; send the same request with nonce %s again to queue the rest without doubling them): %w",
				q.EventSeq, res.Queued, p.Nonce, err)
		}
		if dup {
			res.Duplicates++
		} else {
			res.Queued++
		}
		return true, nil
	})
	if err != nil {
		if res.Queued > 0 {
			s.log.Info("events resent before an error", "endpoint", p.id, "url", RedactURL(p.rec.URL), "queued", res.Queued)
		}
		return nil, err
	}
	res.Rooms = len(rooms)
	s.log.Info("events resent by an operator", "endpoint", p.id, "url", RedactURL(p.rec.URL), "since", p.Since, "until", res.Until,
		"room", p.Room, "event", p.Event, "dry_run", p.DryRun, "matched", res.Matched, "queued", res.Queued,
		"duplicates", res.Duplicates, "not_routed", res.NotRouted, "invalid", res.Invalid)
	return res, nil
}

// checkResend checks what needs no events stream, and finds the endpoint.
func (s *Service) checkResend(ctx context.Context, r ResendRequest) (resendPlan, error) {
	p := resendPlan{ResendRequest: r}
	id, err := endpointIDOf(r.Endpoint)
	if err != nil {
		return p, err
	}
	if id == deadletter.ReasonInvalid {
		return p, badRequest("%q is not an endpoint: invalid events have none to be resent to", id)
	}
	p.id = id
	p.Event = strings.ToLower(r.Event)
	if p.Event != "" {
		if err := schema.ValidateEvent(p.Event); err != nil {
			return p, badRequest("event: %v", err)
		}
	}
	if !r.Since.IsZero() && !r.Until.IsZero() && r.Until.Before(r.Since) {
		return p, badRequest("until (%s) is before since (%s)", r.Until.Format(time.RFC3339), r.Since.Format(time.RFC3339))
	}
	if p.Nonce == "" {
		p.Nonce = NewNonce()
	}
	if len(p.Nonce) > MaxNonceBytes || !noncePattern.MatchString(p.Nonce) {
		return p, badRequest("nonce: at most %d characters of A-Z, a-z, 0-9, _ and -", MaxNonceBytes)
	}
	room, event := "*", "*"
	if p.Room != "" {
		room = schema.EncodeRoomToken(p.Room)
	}
	if p.Event != "" {
		event = p.Event
	}
	p.subject = schema.SubjectPrefix + "." + s.cfg.Region + "." + room + "." + event

	kv, err := s.endpointsBucket(ctx)
	if err != nil {
		return p, err
	}
	e, err := kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return p, notFound("no endpoint %s (roomhook endpoints list shows every id and URL)", id)
	}
	if err != nil {
		return p, fmt.Errorf("endpoint %s: %w", id, err)
	}
	if err := json.Unmarshal(e.Value(), &p.rec); err != nil {
		return p, fmt.Errorf("endpoint %s: unreadable record: %w", id, err)
	}
	switch {
	case p.rec.Disabled:
		// The drainer of its spill queue would dead-letter every resent event at once.
		return p, badRequest("endpoint %s (%s) is disabled (%s): resume it first (roomhook endpoints resume %s)",
			id, RedactURL(p.rec.URL), orNone(p.rec.Reason), id)
	case s.cfg.Delivers != nil && !s.cfg.Delivers(id):
		return p, badRequest("endpoint %s (%s) is not configured on the replicas any more: nothing would deliver a resend",
			id, RedactURL(p.rec.URL))
	}
	if s.cfg.EventFilter != nil {
		p.filter, _ = s.cfg.EventFilter(id)
	}
	return p, nil
}

func orNone(s string) string {
	if s == "" {
		return "no reason recorded"
	}
	return s
}

// checkWindow refuses a resend without a time bound, or one reaching back past the oldest
// event the stream holds; both answers say how far back it reaches. first is zero when the
// stream is empty.
func checkWindow(r ResendRequest, first, last time.Time) error {
	reach := "the events stream holds no events"
	if !first.IsZero() {
		reach = "the events stream holds events stored from " + first.UTC().Format(time.RFC3339Nano) +
			" to " + last.UTC().Format(time.RFC3339Nano)
	}
	switch {
	case r.Since.IsZero():
		return badRequest("since is required: a resend needs a time bound; %s", reach)
	case !first.IsZero() && r.Since.Before(first):
		return badRequest("since %s is before the oldest event still in the events stream: %s (ROOMHOOK_STREAM_MAX_AGE); older events are gone, so give a since at or after %s",
			r.Since.UTC().Format(time.RFC3339Nano), reach, first.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// lastMatching is the sequence and time of the last event on subject (a filter); 0 when none.
func lastMatching(ctx context.Context, st jetstream.Stream, subject string) (uint64, time.Time, error) {
	m, err := st.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("read events: %w", err)
	}
	return m.Sequence, m.Time, nil
}

// readEvents reads the events stream with an ordered consumer up to lastSeq, calling visit
// with every message until it returns false or an error.
func readEvents(ctx context.Context, st jetstream.Stream, cfg jetstream.OrderedConsumerConfig, lastSeq uint64,
	visit func(jetstream.Msg, *jetstream.MsgMetadata) (bool, error)) error {
	cons, err := st.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("read events: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(256))
	if err != nil {
		return fmt.Errorf("read events: %w", err)
	}
	defer it.Stop()
	for {
		m, err := nextMsg(ctx, it)
		if errors.Is(err, errScanIdle) {
			return nil // what remained expired or was deleted meanwhile
		}
		if err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		if meta.Sequence.Stream > lastSeq {
			return nil
		}
		more, err := visit(m, meta)
		if err != nil || !more {
			return err
		}
		if meta.Sequence.Stream == lastSeq || meta.NumPending == 0 {
			return nil
		}
	}
}

// renderEvent checks one events-stream message and renders its webhook body as the
// dispatcher does (dispatcher's readEvent); false for an event it dead-letters as invalid.
// The urls are a room_created's webhook_urls.
func (s *Service) renderEvent(subject string, data []byte, seq uint64, stored time.Time) (queue.Queued, []string, bool) {
	evt, addr, err := schema.CheckEvent(subject, data, s.cfg.MaxEventBytes)
	if err != nil {
		return queue.Queued{}, nil, false
	}
	fb := schema.Fallback{ID: schema.StreamEventID(s.names.EventsStream(), seq), CreatedAt: stored.Unix()}
	body, err := schema.MarshalBody(evt, fb)
	if err != nil {
		return queue.Queued{}, nil, false
	}
	if queue.CheckFits(body, addr.Room, s.maxPayload()) != nil {
		return queue.Queued{}, nil, false // the dispatcher refuses it as too large to queue
	}
	id := evt.GetId()
	if id == "" {
		id = fb.ID
	}
	q := queue.Queued{Room: addr.Room, Event: addr.Event, EventID: id, EventSeq: seq, Stored: stored, Body: body}
	return q, evt.GetWebhookUrls(), true
}

func (s *Service) maxPayload() int {
	if nc := s.js.Conn(); nc != nil {
		return int(nc.MaxPayload())
	}
	return 0
}

// queueResend queues one event for the endpoint, as dlqReplay queues a dead letter; true when
// the spill stream had it from this same request already.
func (s *Service) queueResend(ctx context.Context, p resendPlan, q queue.Queued) (bool, error) {
	part := queue.Partition(q.Room, s.cfg.Partitions)
	subject := s.names.SpillSubject(p.id, part, 1)
	msgID := "resend:" + strconv.FormatUint(q.EventSeq, 10) + ":" + p.id + ":" + p.Nonce
	ack, err := s.js.PublishMsg(ctx, q.Msg(subject, msgID))
	if err != nil {
		return false, err
	}
	_ = s.js.Conn().Publish(s.names.NotifySubject(part), []byte(p.id))
	return ack.Duplicate, nil
}

// registration is one room_created of a room: whether it registered the endpoint.
type registration struct {
	seq        uint64
	registered bool
}

// registrations are the rooms' registrations of one per-room endpoint, by room, in stream order.
type registrations map[string][]registration

// registered reports whether room had the endpoint registered for its event at seq: its last
// room_created at or before seq registered it (a room_created reaches the URLs it registers).
func (r registrations) registered(room string, seq uint64) bool {
	regs := r[room]
	i, found := slices.BinarySearchFunc(regs, seq, compareSeq)
	if found {
		return regs[i].registered
	}
	return i > 0 && regs[i-1].registered
}

// set records the room_created at seq; a later call for the same seq (the rooms bucket)
// replaces what an earlier one said.
func (r registrations) set(room string, seq uint64, registered bool) {
	regs := r[room]
	i, found := slices.BinarySearchFunc(regs, seq, compareSeq)
	if found {
		regs[i].registered = registered
		return
	}
	r[room] = slices.Insert(regs, i, registration{seq: seq, registered: registered})
}

func compareSeq(g registration, seq uint64) int { return cmp.Compare(g.seq, seq) }

// registrations finds which rooms registered the per-room endpoint p names, and from which
// room_created on: every room_created still in the stream up to lastSeq whose webhook_urls
// name its URL, corrected by the rooms bucket, which holds what the partitions' owners really
// registered (they refuse URLs past ROOMHOOK_MAX_ROOM_URLS or ROOMHOOK_MAX_ROOM_ENDPOINTS) for
// the rooms they have not forgotten.
func (s *Service) registrations(ctx context.Context, st jetstream.Stream, p resendPlan, lastSeq uint64) (registrations, error) {
	regs := registrations{}
	room := "*"
	if p.Room != "" {
		room = schema.EncodeRoomToken(p.Room)
	}
	created := schema.SubjectPrefix + "." + s.cfg.Region + "." + room + "." + schema.EventRoomCreated
	createdLast, _, err := lastMatching(ctx, st, created)
	if err != nil {
		return nil, err
	}
	if createdLast > 0 {
		cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{created}, InactiveThreshold: 30 * time.Second}
		err = readEvents(ctx, st, cfg, min(createdLast, lastSeq), func(m jetstream.Msg, meta *jetstream.MsgMetadata) (bool, error) {
			q, urls, ok := s.renderEvent(m.Subject(), m.Data(), meta.Sequence.Stream, meta.Timestamp)
			if !ok {
				return true, nil // an invalid room_created registers nothing
			}
			has := false
			for _, u := range urls {
				if c, err := endpoint.ValidateRoomURL(u); err == nil && endpoint.ID(c) == p.id {
					has = true
					break
				}
			}
			regs.set(q.Room, q.EventSeq, has)
			return true, nil
		})
		if err != nil {
			return nil, fmt.Errorf("read room registrations: %w", err)
		}
	}
	kv, err := s.js.KeyValue(ctx, s.names.RoomsBucket())
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return regs, nil
	}
	if err != nil {
		return nil, fmt.Errorf("rooms bucket %s: %w", s.names.RoomsBucket(), err)
	}
	apply := func(value []byte) {
		var rec rooms.Record
		if json.Unmarshal(value, &rec) != nil || rec.CreatedSeq == 0 || rec.CreatedSeq > lastSeq {
			return
		}
		if p.Room != "" && rec.Room != p.Room {
			return
		}
		regs.set(rec.Room, rec.CreatedSeq, slices.Contains(rec.EndpointIDs(), p.id))
	}
	if p.Room != "" {
		e, err := kv.Get(ctx, rooms.Key(queue.Partition(p.Room, s.cfg.Partitions), p.Room))
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return nil, fmt.Errorf("room registry: %w", err)
		default:
			apply(e.Value())
		}
		return regs, nil
	}
	if err := readBucket(ctx, kv, func(_ string, value []byte) { apply(value) }); err != nil {
		return nil, fmt.Errorf("room registry: %w", err)
	}
	return regs, nil
}
