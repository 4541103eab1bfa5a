package schema

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestEncodeRoomToken(t *testing.T) {
	tests := []struct {
		room, token string
	}{
		{"room1", "room1"},
		{"Room_A-b9", "Room_A-b9"},
		{"a.b", "a%2Eb"},
		{"my room", "my%20room"},
		{"100%", "100%25"},
		{"*", "%2A"},
		{">", "%3E"},
		{"a/b:c", "a%2Fb%3Ac"},
		{"\x00\xff", "%00%FF"},
		{"zürich", "z%C3%BCrich"},
		{"%2E", "%252E"},
		{"\t\n", "%09%0A"},
	}
	for _, tt := range tests {
		t.Run(tt.room, func(t *testing.T) {
			if got := EncodeRoomToken(tt.room); got != tt.token {
				t.Fatalf("EncodeRoomToken(%q) = %q, want %q", tt.room, got, tt.token)
			}
			back, err := DecodeRoomToken(tt.token)
			if err != nil {
				t.Fatalf("DecodeRoomToken(%q): %v", tt.token, err)
			}
			if back != tt.room {
				t.Fatalf("DecodeRoomToken(%q) = %q, want %q", tt.token, back, tt.room)
			}
		})
	}
}

func TestDecodeRoomTokenRejects(t *testing.T) {
	tests := []struct {
		name, token string
		also        error
	}{
		{"empty", "", ErrEmptyRoom},
		{"lower-case hex", "a%2eb", nil},
		{"mixed-case hex", "%c3%BC", nil},
		{"escaped safe byte", "%41", nil},
		{"escaped underscore", "%5F", nil},
		{"escaped dash", "%2D", nil},
		{"truncated escape at end", "abc%", nil},
		{"truncated escape one digit", "abc%2", nil},
		{"non-hex escape", "%G0", nil},
		{"literal dot", "a.b", nil},
		{"literal space", "a b", nil},
		{"literal star", "*", nil},
		{"literal gt", ">", nil},
		{"non-ASCII byte", "z\xc3\xbcrich", nil},
		{"plus sign", "a+b", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeRoomToken(tt.token)
			if !errors.Is(err, ErrInvalidRoomToken) {
				t.Fatalf("DecodeRoomToken(%q) = %q, %v; want ErrInvalidRoomToken", tt.token, got, err)
			}
			if tt.also != nil && !errors.Is(err, tt.also) {
				t.Fatalf("DecodeRoomToken(%q) error %v does not wrap %v", tt.token, err, tt.also)
			}
		})
	}
}

func TestAddressSubject(t *testing.T) {
	tests := []struct {
		addr    Address
		subject string
		err     error
	}{
		{Address{"default", "room1", "participant_joined"}, "roomhook.events.default.room1.participant_joined", nil},
		{Address{"eu-west-1", "team.standup 9:00", "room_finished"}, "roomhook.events.eu-west-1.team%2Estandup%209%3A00.room_finished", nil},
		{Address{"default", "r", "speech_to_text_total_usage"}, "roomhook.events.default.r.speech_to_text_total_usage", nil},
		{Address{"", "room1", "room_created"}, "", ErrInvalidRegion},
		{Address{"EU", "room1", "room_created"}, "", ErrInvalidRegion},
		{Address{"eu.west", "room1", "room_created"}, "", ErrInvalidRegion},
		{Address{"eu_west", "room1", "room_created"}, "", ErrInvalidRegion},
		{Address{"default", "", "room_created"}, "", ErrEmptyRoom},
		{Address{"default", "room1", ""}, "", ErrInvalidEvent},
		{Address{"default", "room1", "ROOM_CREATED"}, "", ErrInvalidEvent},
		{Address{"default", "room1", "room.created"}, "", ErrInvalidEvent},
		{Address{"default", "room1", "room-created"}, "", ErrInvalidEvent},
		{Address{"default", "room1", ">"}, "", ErrInvalidEvent},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s/%s", tt.addr.Region, tt.addr.Room, tt.addr.Event), func(t *testing.T) {
			got, err := tt.addr.Subject()
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Subject() = %q, %v; want %v", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.subject {
				t.Fatalf("Subject() = %q, %v; want %q", got, err, tt.subject)
			}
			back, err := ParseSubject(got)
			if err != nil {
				t.Fatalf("ParseSubject(%q): %v", got, err)
			}
			if back != tt.addr {
				t.Fatalf("ParseSubject(%q) = %+v, want %+v", got, back, tt.addr)
			}
		})
	}
}

func TestParseSubjectRejects(t *testing.T) {
	tests := []struct {
		subject string
		also    error
	}{
		{"", nil},
		{"roomhook.events.default.room1", nil},
		{"roomhook.events.default.room1.participant_joined.extra", nil},
		{"other.events.default.room1.participant_joined", nil},
		{"roomhook.evts.default.room1.participant_joined", nil},
		{"roomhook.events.Default.room1.participant_joined", ErrInvalidRegion},
		{"roomhook.events..room1.participant_joined", ErrInvalidRegion},
		{"roomhook.events.default..participant_joined", ErrInvalidRoomToken},
		{"roomhook.events.default.a%2eb.participant_joined", ErrInvalidRoomToken},
		{"roomhook.events.default.*.participant_joined", ErrInvalidRoomToken},
		{"roomhook.events.default.room1.Participant_Joined", ErrInvalidEvent},
		{"roomhook.events.default.room1.>", ErrInvalidEvent},
	}
	for _, tt := range tests {
		t.Run(tt.subject, func(t *testing.T) {
			got, err := ParseSubject(tt.subject)
			if !errors.Is(err, ErrInvalidSubject) {
				t.Fatalf("ParseSubject(%q) = %+v, %v; want ErrInvalidSubject", tt.subject, got, err)
			}
			if tt.also != nil && !errors.Is(err, tt.also) {
				t.Fatalf("ParseSubject(%q) error %v does not wrap %v", tt.subject, err, tt.also)
			}
		})
	}
}

func TestLongRoomID(t *testing.T) {
	// No artificial limit: a room id of 1000 dots is 3000 bytes of token and
	// still one token that round-trips.
	room := strings.Repeat(".", 1000)
	subject, err := Address{Region: "default", Room: room, Event: "room_created"}.Subject()
	if err != nil {
		t.Fatal(err)
	}
	addr, err := ParseSubject(subject)
	if err != nil {
		t.Fatal(err)
	}
	if addr.Room != room {
		t.Fatalf("room did not round-trip (len %d, want %d)", len(addr.Room), len(room))
	}
}

func TestStreamNames(t *testing.T) {
	tests := []struct {
		region, events, dlq, subjects string
	}{
		{"default", "ROOMHOOK_EVENTS_DEFAULT", "ROOMHOOK_DLQ_DEFAULT", "roomhook.events.default.>"},
		{"eu-west-1", "ROOMHOOK_EVENTS_EU_WEST_1", "ROOMHOOK_DLQ_EU_WEST_1", "roomhook.events.eu-west-1.>"},
	}
	for _, tt := range tests {
		if got := EventsStreamName(tt.region); got != tt.events {
			t.Errorf("EventsStreamName(%q) = %q, want %q", tt.region, got, tt.events)
		}
		if got := DLQStreamName(tt.region); got != tt.dlq {
			t.Errorf("DLQStreamName(%q) = %q, want %q", tt.region, got, tt.dlq)
		}
		if got := EventsSubjects(tt.region); got != tt.subjects {
			t.Errorf("EventsSubjects(%q) = %q, want %q", tt.region, got, tt.subjects)
		}
	}
}

// FuzzRoomToken checks, for any byte string, that the encoding is one valid
// NATS token that decodes back, and, reading the same bytes as a token, that
// whatever DecodeRoomToken accepts re-encodes to exactly that token.
func FuzzRoomToken(f *testing.F) {
	for _, seed := range []string{"room1", "a.b", "my room", "100%", "%2E", "a%2eb", "*>", "zürich", "\x00\xff", "%41", "abc%"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if s != "" {
			token := EncodeRoomToken(s)
			if err := checkNATSToken(token); err != nil {
				t.Fatalf("EncodeRoomToken(%q) = %q: %v", s, token, err)
			}
			back, err := DecodeRoomToken(token)
			if err != nil {
				t.Fatalf("DecodeRoomToken(EncodeRoomToken(%q)) = %v", s, err)
			}
			if back != s {
				t.Fatalf("round trip of %q gave %q", s, back)
			}
		}
		if room, err := DecodeRoomToken(s); err == nil {
			if again := EncodeRoomToken(room); again != s {
				t.Fatalf("DecodeRoomToken accepted %q but EncodeRoomToken gives back %q", s, again)
			}
		}
	})
}

// checkNATSToken states what NATS needs of one subject token, independently of
// the codec's own character set.
func checkNATSToken(token string) error {
	if token == "" {
		return errors.New("empty token")
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		switch {
		case c <= ' ' || c >= 0x7f:
			return fmt.Errorf("byte %q at %d is not printable ASCII", c, i)
		case c == '.' || c == '*' || c == '>':
			return fmt.Errorf("byte %q at %d is a NATS subject delimiter or wildcard", c, i)
		}
	}
	return nil
}
