package schema

import (
	"errors"
	"fmt"
	"strings"
)

// SubjectPrefix is the first two tokens of every event subject.
const SubjectPrefix = "roomhook.events"

// Sentinel errors of the subject codec. They are returned wrapped with the
// detail of what was wrong; check them with errors.Is.
var (
	// ErrInvalidSubject: the subject is not roomhook.events.<region>.<room>.<event>.
	ErrInvalidSubject = errors.New("invalid roomhook subject")
	// ErrInvalidRoomToken: the room token is not one EncodeRoomToken produces.
	ErrInvalidRoomToken = errors.New("invalid room token")
	// ErrInvalidRegion: the region is not [a-z0-9-]+.
	ErrInvalidRegion = errors.New("invalid region")
	// ErrInvalidEvent: the event name is not [a-z0-9_]+.
	ErrInvalidEvent = errors.New("invalid event name")
	// ErrEmptyRoom: the room id is empty.
	ErrEmptyRoom = errors.New("empty room id")
)

// Address is where an event lives on NATS: its region, room id (decoded, as
// the platform knows it) and lower-case event name.
type Address struct {
	Region string
	Room   string
	Event  string
}

// Subject returns roomhook.events.<region>.<roomtoken>.<event> after checking
// every part: ErrInvalidRegion, ErrEmptyRoom or ErrInvalidEvent otherwise.
//
// The codec sets no length limit, but a NATS server closes the connection of a
// client whose publish protocol line (subject, reply inbox, sizes) exceeds its
// max_control_line, 4096 bytes by default, and every escaped byte of the room
// id takes three bytes of subject. With the default, room ids of up to about
// 1300 bytes always publish (measured through JetStream: 1330 bytes that all
// need escaping do, 1350 do not) and up to about 3900 bytes when no byte needs
// escaping. Raise max_control_line on the servers for longer room ids.
func (a Address) Subject() (string, error) {
	if err := ValidateRegion(a.Region); err != nil {
		return "", err
	}
	if a.Room == "" {
		return "", fmt.Errorf("%w: subject needs a room", ErrEmptyRoom)
	}
	if err := ValidateEvent(a.Event); err != nil {
		return "", err
	}
	return SubjectPrefix + "." + a.Region + "." + EncodeRoomToken(a.Room) + "." + a.Event, nil
}

// ParseSubject is the inverse of Address.Subject. Every error wraps
// ErrInvalidSubject and, where one part is at fault, that part's sentinel too
// (ErrInvalidRegion, ErrInvalidRoomToken, ErrInvalidEvent).
func ParseSubject(subject string) (Address, error) {
	parts := strings.Split(subject, ".")
	if len(parts) != 5 || parts[0] != "roomhook" || parts[1] != "events" {
		return Address{}, fmt.Errorf("%w: want %s.<region>.<room>.<event>, got %d tokens", ErrInvalidSubject, SubjectPrefix, len(parts))
	}
	if err := ValidateRegion(parts[2]); err != nil {
		return Address{}, fmt.Errorf("%w: %w", ErrInvalidSubject, err)
	}
	room, err := DecodeRoomToken(parts[3])
	if err != nil {
		return Address{}, fmt.Errorf("%w: %w", ErrInvalidSubject, err)
	}
	if err := ValidateEvent(parts[4]); err != nil {
		return Address{}, fmt.Errorf("%w: %w", ErrInvalidSubject, err)
	}
	return Address{Region: parts[2], Room: room, Event: parts[4]}, nil
}

// ValidateRegion accepts a non-empty region made of [a-z0-9-]. Such a region is
// one NATS token and, upper-cased with - turned into _, part of a valid stream
// name.
func ValidateRegion(region string) error {
	if region == "" {
		return fmt.Errorf("%w: empty", ErrInvalidRegion)
	}
	for i := 0; i < len(region); i++ {
		c := region[i]
		if !isLowerAlnum(c) && c != '-' {
			return fmt.Errorf("%w: %q has byte %q at %d, want [a-z0-9-]", ErrInvalidRegion, region, c, i)
		}
	}
	return nil
}

// ValidateEvent accepts a non-empty event name made of [a-z0-9_], which covers
// every plugNmeet and LiveKit event name. Upper case is refused rather than
// folded so that one event has exactly one subject; lower-case the name first.
func ValidateEvent(event string) error {
	if event == "" {
		return fmt.Errorf("%w: empty", ErrInvalidEvent)
	}
	for i := 0; i < len(event); i++ {
		c := event[i]
		if !isLowerAlnum(c) && c != '_' {
			return fmt.Errorf("%w: %q has byte %q at %d, want [a-z0-9_]", ErrInvalidEvent, event, c, i)
		}
	}
	return nil
}

// EventsSubjects is the subject filter of a region's events stream:
// roomhook.events.<region>.>.
func EventsSubjects(region string) string {
	return SubjectPrefix + "." + region + ".>"
}

// EventsStreamName is the JetStream stream holding a region's events:
// ROOMHOOK_EVENTS_<REGION>, upper case with - turned into _. The region should
// have passed ValidateRegion.
func EventsStreamName(region string) string {
	return "ROOMHOOK_EVENTS_" + streamSuffix(region)
}

// DLQStreamName is the JetStream stream holding a region's dead letters:
// ROOMHOOK_DLQ_<REGION>.
func DLQStreamName(region string) string {
	return "ROOMHOOK_DLQ_" + streamSuffix(region)
}

func streamSuffix(region string) string {
	return strings.ReplaceAll(strings.ToUpper(region), "-", "_")
}

// EncodeRoomToken turns any room id into one NATS subject token: bytes in
// [A-Za-z0-9_-] stay, every other byte becomes %XX with upper-case hex. So
// "a.b c" becomes "a%2Eb%20c" and "%" becomes "%25". The empty room gives the
// empty string, which is not a valid token; Address.Subject refuses it.
func EncodeRoomToken(room string) string {
	escapes := 0
	for i := 0; i < len(room); i++ {
		if !isTokenSafe(room[i]) {
			escapes++
		}
	}
	if escapes == 0 {
		return room
	}
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(room) + 2*escapes)
	for i := 0; i < len(room); i++ {
		c := room[i]
		if isTokenSafe(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0x0F])
	}
	return b.String()
}

// DecodeRoomToken is the strict inverse of EncodeRoomToken. It accepts only
// what EncodeRoomToken can produce, so a room has exactly one token: it
// refuses the empty token, bytes outside [A-Za-z0-9_%-], truncated escapes,
// lower-case hex, and escapes of bytes that must stay literal (%41 for "A").
// Errors wrap ErrInvalidRoomToken (and ErrEmptyRoom for the empty token).
func DecodeRoomToken(token string) (string, error) {
	if token == "" {
		return "", fmt.Errorf("%w: %w", ErrInvalidRoomToken, ErrEmptyRoom)
	}
	if !strings.Contains(token, "%") {
		for i := 0; i < len(token); i++ {
			if !isTokenSafe(token[i]) {
				return "", fmt.Errorf("%w: byte %q at %d must be escaped", ErrInvalidRoomToken, token[i], i)
			}
		}
		return token, nil
	}
	out := make([]byte, 0, len(token))
	for i := 0; i < len(token); i++ {
		c := token[i]
		if isTokenSafe(c) {
			out = append(out, c)
			continue
		}
		if c != '%' {
			return "", fmt.Errorf("%w: byte %q at %d must be escaped", ErrInvalidRoomToken, c, i)
		}
		if i+2 >= len(token) {
			return "", fmt.Errorf("%w: truncated escape at %d", ErrInvalidRoomToken, i)
		}
		hi, okHi := upperHexValue(token[i+1])
		lo, okLo := upperHexValue(token[i+2])
		if !okHi || !okLo {
			return "", fmt.Errorf("%w: escape at %d is not %%XX with upper-case hex", ErrInvalidRoomToken, i)
		}
		decoded := hi<<4 | lo
		if isTokenSafe(decoded) {
			return "", fmt.Errorf("%w: escape at %d encodes %q, which is written literally", ErrInvalidRoomToken, i, decoded)
		}
		out = append(out, decoded)
		i += 2
	}
	return string(out), nil
}

func isTokenSafe(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

func isLowerAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
}

func upperHexValue(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
