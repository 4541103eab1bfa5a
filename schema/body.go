package schema

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/livekit/protocol/livekit"

	"github.com/roomhook/roomhook/schema/roomhookv1"
)

// Sentinel errors of MarshalBody, returned wrapped; check them with errors.Is.
var (
	// ErrNilEvent: MarshalBody was given no event.
	ErrNilEvent = errors.New("nil event")
	// ErrMissingID: neither the event nor the Fallback has an id.
	ErrMissingID = errors.New("event has no id and no fallback id")
	// ErrMissingCreatedAt: neither the event nor the Fallback has a created_at.
	ErrMissingCreatedAt = errors.New("event has no created_at and no fallback created_at")
	// ErrEncodeBody: the event cannot be written as JSON (for example a string
	// that is not valid UTF-8 in an event built in memory; DecodeEvent never
	// returns such an event).
	ErrEncodeBody = errors.New("cannot encode webhook body")
)

// Fallback holds the values MarshalBody writes when the publisher left id or
// created_at unset (or empty / zero). Both must be stable for one stored event,
// so that every retry, every replica and every endpoint sends the same bytes:
// ID from StreamEventID, CreatedAt the time JetStream stored the event.
type Fallback struct {
	// ID is the event id to use when the event has none.
	ID string
	// CreatedAt is the unix time in seconds to use when the event has none.
	CreatedAt int64
}

// MarshalBody returns the JSON body of the webhook request for evt in the shape
// plugNmeet's server writes (DESIGN 1.3): the bytes of Go's protojson with
// proto field names — enums as names, 64-bit integers as strings, fields in
// declaration order, map keys sorted, unset fields left out and proto3
// optional fields written whenever they are set, even to zero — but without
// the spaces protojson adds at random, so the bytes are compact and the same
// on every build, run and replica. Receivers check a hash of the exact bytes.
//
// On top of the event's own fields:
//   - "event" is lower-cased;
//   - "id" and "created_at" are always present, taken from fb when the event
//     has none (ErrMissingID / ErrMissingCreatedAt when neither has one);
//   - routing-only fields (numbers >= 100, such as webhook_urls) and unknown
//     fields are left out;
//   - track_published and track_unpublished carry only the room's sid and
//     room_id and the participant's sid, identity and name, as plugNmeet sends
//     them.
//
// evt is only read, never changed, so one decoded event can be encoded for
// many endpoints concurrently.
func MarshalBody(evt *roomhookv1.Event, fb Fallback) ([]byte, error) {
	if evt == nil {
		return nil, fmt.Errorf("marshal webhook body: %w", ErrNilEvent)
	}
	body, err := bodyEvent(evt, fb)
	if err != nil {
		return nil, fmt.Errorf("marshal webhook body: %w", err)
	}
	// Most bodies fit in 1 KiB; participant events with tracks grow it once or twice.
	out, err := appendProtoJSON(make([]byte, 0, 1024), body.ProtoReflect())
	if err != nil {
		return nil, fmt.Errorf("marshal webhook body: %w: %w", ErrEncodeBody, err)
	}
	return out, nil
}

// bodyEvent builds the event that is written as the body. It shares every
// sub-message with evt (they are only read) and allocates only what differs.
// Each payload field is listed by hand because a routing field must never
// slip into a body; TestMarshalBodyCarriesEveryPayloadField fails when a new
// payload field is added to the proto but not here.
func bodyEvent(evt *roomhookv1.Event, fb Fallback) (*roomhookv1.Event, error) {
	body := &roomhookv1.Event{
		Room:          evt.Room,
		Participant:   evt.Participant,
		RecordingInfo: evt.RecordingInfo,
		SpeechService: evt.SpeechService,
		Track:         evt.Track,
		Analytics:     evt.Analytics,
		RoomArtifact:  evt.RoomArtifact,
		Id:            evt.Id,
		CreatedAt:     evt.CreatedAt,
	}
	if evt.Event != nil {
		name := strings.ToLower(*evt.Event)
		body.Event = &name
		if name == EventTrackPublished || name == EventTrackUnpublished {
			body.Room = trimmedRoom(evt.Room)
			body.Participant = trimmedParticipant(evt.Participant)
		}
	}
	if body.GetId() == "" {
		if fb.ID == "" {
			return nil, ErrMissingID
		}
		id := fb.ID
		body.Id = &id
	}
	if body.GetCreatedAt() == 0 {
		if fb.CreatedAt == 0 {
			return nil, ErrMissingCreatedAt
		}
		createdAt := fb.CreatedAt
		body.CreatedAt = &createdAt
	}
	return body, nil
}

// trimmedRoom keeps what plugNmeet forwards of the room with track events.
func trimmedRoom(room *roomhookv1.NotifyEventRoom) *roomhookv1.NotifyEventRoom {
	if room == nil {
		return nil
	}
	return &roomhookv1.NotifyEventRoom{Sid: room.Sid, RoomId: room.RoomId}
}

// trimmedParticipant keeps what plugNmeet forwards of the participant with
// track events.
func trimmedParticipant(p *livekit.ParticipantInfo) *livekit.ParticipantInfo {
	if p == nil {
		return nil
	}
	return &livekit.ParticipantInfo{Sid: p.Sid, Identity: p.Identity, Name: p.Name}
}

// compactJSON removes, in place, the whitespace outside strings. protojson's
// single-line output is valid JSON whose only whitespace outside strings is
// the space it adds after some commas at random (fixed per binary, to stop
// users relying on its bytes); without it the output is canonical.
// appendProtoJSON uses it for the messages it hands to protojson.
func compactJSON(b []byte) []byte {
	out := b[:0]
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == ' ' || c == '\n' || c == '\r' || c == '\t':
			continue
		}
		out = append(out, c)
	}
	return out
}

// eventIDNamespace is the UUID namespace of StreamEventID:
// uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/roomhook/roomhook#event-id")).
// Changing it changes every derived id, so it is fixed here, not computed.
func eventIDNamespace() uuid.UUID {
	return uuid.UUID{
		0x6c, 0xe6, 0x1d, 0x60, 0xb1, 0x73, 0x5e, 0x32,
		0xa5, 0x00, 0xce, 0x04, 0xd5, 0x3c, 0x06, 0x41,
	}
}

// StreamEventID returns the id of an event whose publisher gave none: a
// version 5 (SHA-1, name-based) UUID in roomhook's namespace over
// "<stream>:<seq>", where stream is the name of the events stream and seq is
// the stream sequence the event was stored at.
//
// The id depends only on where the event is stored, so it is the same on every
// retry, redelivery, replica and endpoint, and for a replay from the dead-letter
// stream when the original stream and sequence are passed (not a consumer's
// delivery sequence or the dead-letter stream's own). Sequences restart only
// when the stream is deleted and created again; purging keeps them.
func StreamEventID(stream string, seq uint64) string {
	name := make([]byte, 0, len(stream)+21)
	name = append(name, stream...)
	name = append(name, ':')
	name = strconv.AppendUint(name, seq, 10)
	return uuid.NewSHA1(eventIDNamespace(), name).String()
}
