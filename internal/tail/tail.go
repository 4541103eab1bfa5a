// Package tail follows the events stream as it is written and renders each
// event as the webhook body receivers get, for `roomhook tail`. It reads
// through an ordered consumer, which is ephemeral, flow-controlled and gone
// when the tail stops: it never touches the dispatcher's consumers, acks
// nothing and delivers nothing.
package tail

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/queue"
	"github.com/roomhook/roomhook/schema"
)

// ErrInvalidEvent: a stored event the dispatcher would dead-letter as
// invalid, by the same check (schema.CheckEvent): undecodable payload, subject
// not roomhook's, room or event name differing from the subject's, routing
// fields on an event other than room_created, over MaxEventBytes, a body too
// large for the server's max payload. Event.Err
// wraps it beside the *schema.InvalidEventError; the tail goes on.
var ErrInvalidEvent = errors.New("invalid event")

// Filter says which events to follow and from when.
type Filter struct {
	// Region is the events stream's region (ROOMHOOK_REGION).
	Region string
	// Room, when set, follows one room (its id as the platform knows it).
	Room string
	// Event, when set, follows one event name (lower-cased here).
	Event string
	// Since, when set, starts at the first event stored at or after it;
	// otherwise the tail starts with the next event stored.
	Since time.Time
	// MaxEventBytes is the replicas' ROOMHOOK_MAX_EVENT_BYTES: a larger event is shown as
	// the invalid event they dead-letter it as. 0: no bound.
	MaxEventBytes int
}

// Subject is the filter subject: roomhook.events.<region>.<room token or
// *>.<event or *>.
func (f Filter) Subject() (string, error) {
	if err := schema.ValidateRegion(f.Region); err != nil {
		return "", err
	}
	room, event := "*", "*"
	if f.Room != "" {
		room = schema.EncodeRoomToken(f.Room)
	}
	if f.Event != "" {
		event = strings.ToLower(f.Event)
		if err := schema.ValidateEvent(event); err != nil {
			return "", err
		}
	}
	return schema.SubjectPrefix + "." + f.Region + "." + room + "." + event, nil
}

// Event is one stored event as the tail shows it.
type Event struct {
	// Subject is the subject it was published on.
	Subject string
	// Room and Name are the room id and event name the subject carries.
	Room, Name string
	// Seq is its sequence in the events stream, Stored when JetStream stored it.
	Seq    uint64
	Stored time.Time
	// Body is the webhook JSON receivers get for it (schema.MarshalBody with
	// the stream fallbacks the dispatcher uses), nil when Err is set.
	Body []byte
	// Err, wrapping ErrInvalidEvent, says why the event would be dead-lettered.
	Err error
}

// Tail is a running follow of the events stream. Next is not safe for
// concurrent use; Stop may be called from any goroutine.
type Tail struct {
	stream        string
	maxEventBytes int
	maxPayload    int // the server's: a body that cannot be queued is dead-lettered invalid
	msgs          jetstream.MessagesContext
}

// Start creates the ordered consumer and returns once it exists, so an event
// stored after Start returns is one Next will give (and, with Since, every
// event stored from then on too).
func Start(ctx context.Context, js jetstream.JetStream, f Filter) (*Tail, error) {
	subject, err := f.Subject()
	if err != nil {
		return nil, fmt.Errorf("tail: %w", err)
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverNewPolicy}
	if !f.Since.IsZero() {
		since := f.Since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	stream := schema.EventsStreamName(f.Region)
	cons, err := js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("tail: ordered consumer on %s: %w", stream, err)
	}
	msgs, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("tail: following %s: %w", stream, err)
	}
	maxPayload := 0
	if nc := js.Conn(); nc != nil {
		maxPayload = int(nc.MaxPayload())
	}
	return &Tail{stream: stream, maxEventBytes: f.MaxEventBytes, maxPayload: maxPayload, msgs: msgs}, nil
}

// Next waits for the next event until ctx ends. Its error is ctx's, or
// jetstream.ErrMsgIteratorClosed after Stop; an invalid event is not an
// error of Next but an Event with Err set.
func (t *Tail) Next(ctx context.Context) (Event, error) {
	msg, err := t.msgs.Next(jetstream.NextContext(ctx))
	if err != nil {
		return Event{}, fmt.Errorf("tail: %w", err)
	}
	return render(t.stream, msg, t.maxEventBytes, t.maxPayload), nil
}

// Stop ends the follow; the server removes the ordered consumer.
func (t *Tail) Stop() { t.msgs.Stop() }

// render turns one stored message into what the dispatcher would send.
func render(stream string, msg jetstream.Msg, maxBytes, maxPayload int) Event {
	ev := Event{Subject: msg.Subject()}
	if meta, err := msg.Metadata(); err == nil {
		ev.Seq, ev.Stored = meta.Sequence.Stream, meta.Timestamp
	}
	evt, addr, err := schema.CheckEvent(ev.Subject, msg.Data(), maxBytes)
	if err != nil {
		if bad := (*schema.InvalidEventError)(nil); errors.As(err, &bad) {
			ev.Room, ev.Name = bad.Room, bad.Event
		}
		ev.Err = fmt.Errorf("%w: %w", ErrInvalidEvent, err)
		return ev
	}
	ev.Room, ev.Name = addr.Room, addr.Event
	body, err := schema.MarshalBody(evt, schema.Fallback{ID: schema.StreamEventID(stream, ev.Seq), CreatedAt: ev.Stored.Unix()})
	if err == nil {
		err = queue.CheckFits(body, addr.Room, maxPayload)
	}
	if err != nil {
		ev.Err = fmt.Errorf("%w: %w", ErrInvalidEvent, err)
		return ev
	}
	ev.Body = body
	return ev
}
