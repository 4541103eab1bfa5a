package dispatcher

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/roomhook/roomhook/deadletter"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/queue"
	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/roomhookv1"
	"github.com/roomhook/roomhook/subscriber"
)

// inbound is one event read from the partition stream, checked against its subject and
// rendered once into the webhook body every endpoint gets.
type inbound struct {
	queue.Queued
	urls []string // webhook_urls of a room_created
}

// headerStreamSource is the header in which the server records where a sourced message came
// from; it carries the event's sequence in the events stream.
const headerStreamSource = "Nats-Stream-Source"

// readEvent checks a partition-stream message and renders its body. A message that cannot be
// delivered comes back as the dead letter to record instead, with the reason in Detail.
func (d *Dispatcher) readEvent(m jetstream.Msg, meta *jetstream.MsgMetadata) (inbound, *deadletter.Letter) {
	subject := m.Subject()
	seq, ok := subscriber.SourceSequence(m.Headers().Get(headerStreamSource))
	if !ok {
		seq = meta.Sequence.Stream
	}
	stored := meta.Timestamp
	// The partition stream's subject is roomhook.part.<region>.<p>.<room>.<event>; the
	// events subject it was made from has the same room and event tokens, and any tokens
	// after them (such a subject is refused by CheckEvent).
	eventsSubject := subject
	if toks := strings.SplitN(subject, ".", 5); len(toks) == 5 {
		eventsSubject = "roomhook.events." + toks[2] + "." + toks[4]
	}
	data := m.Data()
	invalid := func(room, event, detail string) (inbound, *deadletter.Letter) {
		// The copy keeps no token: webhook_urls are redacted (the event as published stays
		// in the events stream, and an invalid event is never replayed).
		dl := &deadletter.Letter{Reason: deadletter.ReasonInvalid, Detail: detail, EndpointID: deadletter.ReasonInvalid,
			Room: room, Event: event, EventSeq: seq, Subject: eventsSubject, Stored: stored, Body: RedactEventURLs(data)}
		if len(dl.Body) > deadletter.MaxInvalidKept {
			dl.Body, dl.Truncated = dl.Body[:deadletter.MaxInvalidKept], true
		}
		return inbound{}, dl
	}
	evt, addr, err := schema.CheckEvent(eventsSubject, data, d.cfg.MaxEventBytes)
	if err != nil {
		bad := &schema.InvalidEventError{Detail: err.Error()}
		errors.As(err, &bad)
		return invalid(bad.Room, bad.Event, bad.Detail)
	}
	room, name := addr.Room, addr.Event
	if evt.CreatedAt == nil && ok {
		// created_at defaults to when the events stream stored the event (DESIGN 1.3), as
		// resend and tail render it; the partition copy was stored a moment later.
		if t, found := d.eventStoredAt(seq); found {
			stored = t
		}
	}
	fb := schema.Fallback{ID: schema.StreamEventID(d.names.EventsStream(), seq), CreatedAt: stored.Unix()}
	body, err := schema.MarshalBody(evt, fb)
	if err != nil {
		return invalid(room, name, err.Error())
	}
	if err := queue.CheckFits(body, room, d.maxPayload()); err != nil {
		return invalid(room, name, err.Error())
	}
	id := evt.GetId()
	if id == "" {
		id = fb.ID
	}
	return inbound{
		Queued: queue.Queued{Room: room, Event: name, EventID: id, EventSeq: seq, Stored: stored, Body: body},
		urls:   evt.GetWebhookUrls(),
	}, nil
}

// eventStoredAt is when the events stream stored its message seq: one request, asked only
// for events that carry no created_at (plugNmeet always sets it).
func (d *Dispatcher) eventStoredAt(seq uint64) (time.Time, bool) {
	if d.eventsSt == nil {
		return time.Time{}, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	m, err := d.eventsSt.GetMsg(ctx, seq)
	if err != nil {
		return time.Time{}, false
	}
	return m.Time, true
}

// webhookURLsField is the field number of roomhook.v1.Event's webhook_urls.
var webhookURLsField = (&roomhookv1.Event{}).ProtoReflect().Descriptor().Fields().ByName("webhook_urls").Number()

// RedactEventURLs returns a roomhook.v1.Event payload with every top-level webhook_urls entry
// as endpoint.RedactURL shows it (no user info, query or fragment) and every other field as it was; a
// payload that is not a well-formed protobuf message comes back unchanged.
func RedactEventURLs(payload []byte) []byte {
	out := make([]byte, 0, len(payload))
	for rest := payload; len(rest) > 0; {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 {
			return payload
		}
		m := protowire.ConsumeFieldValue(num, typ, rest[n:])
		if m < 0 {
			return payload
		}
		if num == webhookURLsField && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(rest[n:])
			out = protowire.AppendTag(out, num, typ)
			out = protowire.AppendString(out, endpoint.RedactURL(string(v)))
		} else {
			out = append(out, rest[:n+m]...)
		}
		rest = rest[n+m:]
	}
	return out
}

// maxPayload is the largest message the connected server takes (0 when unknown).
func (d *Dispatcher) maxPayload() int {
	if nc := d.js.Conn(); nc != nil {
		return int(nc.MaxPayload())
	}
	return 0
}
