package schema

import (
	"errors"
	"fmt"
	"strings"

	"github.com/roomhook/roomhook/schema/roomhookv1"
)

// ErrUndeliverable: an events-stream message that roomhook dead-letters as invalid instead of
// delivering it. CheckEvent's errors are *InvalidEventError values, which match it with
// errors.Is.
var ErrUndeliverable = errors.New("undeliverable event")

// An InvalidEventError says why an events-stream message cannot be delivered, with its room
// and event as far as they could be read: from the subject, or from the payload once it
// decoded. Both are empty for a subject that is not an events subject.
type InvalidEventError struct {
	Room, Event string
	Detail      string // what a dead letter's reason detail says
}

func (e *InvalidEventError) Error() string { return e.Detail }

// Is makes errors.Is(err, ErrUndeliverable) hold.
func (e *InvalidEventError) Is(target error) bool { return target == ErrUndeliverable }

// CheckEvent decodes an events-stream message and checks it against its subject, as
// everything that renders an event must before its body is made: the dispatcher, a resend and
// a tail, so that none of them delivers or shows what another refuses. The subject is the
// authority: NATS permissions on subjects alone decide what a publisher can make roomhook do,
// so a payload naming another room or event (compared without case) is refused. An event with
// no event name takes the subject's, and only room_created may carry webhook_urls. maxBytes bounds the payload (ROOMHOOK_MAX_EVENT_BYTES; 0: no bound).
//
// The address is the subject's: its room and lower-case event name are the event's. Any
// error is an *InvalidEventError.
func CheckEvent(subject string, data []byte, maxBytes int) (*roomhookv1.Event, Address, error) {
	addr, err := ParseSubject(subject)
	if err != nil {
		return nil, Address{}, &InvalidEventError{Room: subjectRoom(subject), Detail: err.Error()}
	}
	invalid := func(format string, args ...any) error {
		return &InvalidEventError{Room: addr.Room, Event: addr.Event, Detail: fmt.Sprintf(format, args...)}
	}
	if maxBytes > 0 && len(data) > maxBytes {
		return nil, addr, invalid("event is %d bytes, over ROOMHOOK_MAX_EVENT_BYTES (%d)", len(data), maxBytes)
	}
	evt, err := DecodeEvent(data)
	if err != nil {
		return nil, addr, invalid("%s", err)
	}
	switch room := evt.GetRoom().GetRoomId(); {
	case room == "":
		return nil, addr, invalid("event has no room.room_id")
	case room != addr.Room:
		return nil, addr, invalid("room %q in the payload differs from room %q in the subject", room, addr.Room)
	}
	switch name := strings.ToLower(evt.GetEvent()); {
	case name == "":
		evt.Event = &addr.Event
	case name != addr.Event:
		return nil, addr, invalid("event %q in the payload differs from event %q in the subject", name, addr.Event)
	}
	if len(evt.GetWebhookUrls()) > 0 && addr.Event != EventRoomCreated {
		return nil, addr, invalid("only room_created may carry webhook_urls")
	}
	return evt, addr, nil
}

// subjectRoom is the room of a subject that ParseSubject refused, read from the token after
// the region as in a well-formed subject, so that a dead letter of a misshapen subject can
// still be found by its room; "" when that token is missing or not a room token.
func subjectRoom(subject string) string {
	parts := strings.SplitN(subject, ".", 5)
	if len(parts) < 4 || parts[0] != "roomhook" || parts[1] != "events" {
		return ""
	}
	room, err := DecodeRoomToken(parts[3])
	if err != nil {
		return ""
	}
	return room
}
