package traffic

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// IDPrefix starts every event id the generator writes.
const IDPrefix = "rh-"

// ErrNotTrafficID: an event id is not of the form rh-<run>-<room>-<seq>.
var ErrNotTrafficID = errors.New("not a traffic event id")

// EventID identifies one generated event: the run it belongs to, the room number within the
// run, and the event's position in that room (1 for room_created, then 2, 3, ...).
type EventID struct {
	Run  string // [a-z0-9]+
	Room int    // room number within the run, from 1
	Seq  uint64 // position within the room, from 1
}

// String is rh-<run>-<room>-<seq>, the event's id and Nats-Msg-Id.
func (id EventID) String() string {
	return IDPrefix + id.Run + "-" + strconv.Itoa(id.Room) + "-" + strconv.FormatUint(id.Seq, 10)
}

// RoomKey is rh-<run>-<room>: the same for every event of one room of one run, so receivers
// key their per-room order checks on it.
func (id EventID) RoomKey() string {
	return IDPrefix + id.Run + "-" + strconv.Itoa(id.Room)
}

// RoomID is the room id the generator gives room number room of run: <run>-<room>.
func RoomID(run string, room int) string {
	return run + "-" + strconv.Itoa(room)
}

// ParseEventID reads an id written by EventID.String. Any other id is an error wrapping
// ErrNotTrafficID; receivers skip order checks for such ids.
func ParseEventID(s string) (EventID, error) {
	rest, ok := strings.CutPrefix(s, IDPrefix)
	if !ok {
		return EventID{}, fmt.Errorf("%w: %q has no %s prefix", ErrNotTrafficID, s, IDPrefix)
	}
	parts := strings.Split(rest, "-")
	if len(parts) != 3 || ValidateRun(parts[0]) != nil {
		return EventID{}, fmt.Errorf("%w: %q is not rh-<run>-<room>-<seq>", ErrNotTrafficID, s)
	}
	room, err := strconv.Atoi(parts[1])
	if err != nil || room < 1 {
		return EventID{}, fmt.Errorf("%w: %q has no room number", ErrNotTrafficID, s)
	}
	seq, err := strconv.ParseUint(parts[2], 10, 64)
	if err != nil || seq < 1 {
		return EventID{}, fmt.Errorf("%w: %q has no sequence number", ErrNotTrafficID, s)
	}
	return EventID{Run: parts[0], Room: room, Seq: seq}, nil
}

// ErrInvalidRun: a run name is empty or not [a-z0-9]+.
var ErrInvalidRun = errors.New("invalid run name")

// ValidateRun accepts a non-empty run name made of [a-z0-9]: no dash, so ids split unambiguously.
func ValidateRun(run string) error {
	if run == "" {
		return fmt.Errorf("%w: empty", ErrInvalidRun)
	}
	for i := 0; i < len(run); i++ {
		if c := run[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return fmt.Errorf("%w: %q has byte %q, want [a-z0-9]", ErrInvalidRun, run, c)
		}
	}
	return nil
}
