package queue

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/roomhook/roomhook/schema"
)

// Headers of a spilled delivery in the spill stream. The body is the webhook body, rendered
// once by the partition's owner, so every endpoint and every retry sends the same bytes.
const (
	HeaderRoom     = "Roomhook-Room"
	HeaderEvent    = "Roomhook-Event"
	HeaderEventID  = "Roomhook-Event-Id"
	HeaderEventSeq = "Roomhook-Event-Seq" // the event's sequence in the events stream
	HeaderStored   = "Roomhook-Stored"    // when the events stream stored it, unix nanoseconds
	HeaderReplayOf = "Roomhook-Replay-Of" // dead-letter sequence a replayed delivery came from
	// A delivery spilled after failing from memory goes on with its retry schedule.
	headerAttempts     = "Roomhook-Attempts"      // attempts made before it was spilled
	headerFirstAttempt = "Roomhook-First-Attempt" // unix nanoseconds
	headerNextAttempt  = "Roomhook-Next-Attempt"  // unix nanoseconds: not before
)

// Partition maps a room to one of n partitions, exactly as the partition stream's subject
// transform {{partition(n,1)}} does (FNV-1a over the room's subject token): all of a room's
// events share a partition, so one owner sees them in order, and a replay queued here lands
// where the owner of the room's live events looks.
func Partition(room string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(schema.EncodeRoomToken(room)))
	return int(h.Sum32() % uint32(n))
}

// Queued is one delivery: read from the partition stream, or spilled into an endpoint's
// spill queue, or written there again by a dead-letter replay.
type Queued struct {
	Room     string
	Event    string
	EventID  string
	EventSeq uint64    // sequence of the event in the events stream
	Stored   time.Time // when the events stream stored the event
	Body     []byte
	ReplayOf uint64 // dead-letter sequence, for replays; removed from the DLQ once settled

	// The retry schedule so far, for a delivery that failed before it was spilled.
	Attempts     int
	FirstAttempt time.Time
	NextAttempt  time.Time

	// Seq is the message's sequence in the spill stream, set by whoever pulled it; not stored.
	Seq uint64
	// Part is the delivery's place in its stored message and Parts how many that message
	// holds (1 but for a batch), set by whoever pulled it; not stored.
	Part, Parts int
}

// Msg is the message that queues q on subject; msgID makes a repeated publish a no-op.
func (q Queued) Msg(subject, msgID string) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = q.Body
	m.Header[HeaderRoom] = []string{q.Room}
	m.Header[HeaderEvent] = []string{q.Event}
	m.Header[HeaderEventID] = []string{q.EventID}
	m.Header[HeaderEventSeq] = []string{strconv.FormatUint(q.EventSeq, 10)}
	if !q.Stored.IsZero() {
		m.Header[HeaderStored] = []string{strconv.FormatInt(q.Stored.UnixNano(), 10)}
	}
	if q.ReplayOf > 0 {
		m.Header[HeaderReplayOf] = []string{strconv.FormatUint(q.ReplayOf, 10)}
	}
	if q.Attempts > 0 {
		m.Header[headerAttempts] = []string{strconv.Itoa(q.Attempts)}
		m.Header[headerFirstAttempt] = []string{strconv.FormatInt(q.FirstAttempt.UnixNano(), 10)}
		m.Header[headerNextAttempt] = []string{strconv.FormatInt(q.NextAttempt.UnixNano(), 10)}
	}
	m.Header[nats.MsgIdHdr] = []string{msgID}
	return m
}

// Parse reads a delivery from the headers and body of its message.
func Parse(h nats.Header, body []byte) Queued {
	q := Queued{Body: body, Room: h.Get(HeaderRoom), Event: h.Get(HeaderEvent), EventID: h.Get(HeaderEventID)}
	q.EventSeq, _ = strconv.ParseUint(h.Get(HeaderEventSeq), 10, 64)
	q.ReplayOf, _ = strconv.ParseUint(h.Get(HeaderReplayOf), 10, 64)
	if ns, err := strconv.ParseInt(h.Get(HeaderStored), 10, 64); err == nil {
		q.Stored = time.Unix(0, ns)
	}
	if n, err := strconv.Atoi(h.Get(headerAttempts)); err == nil && n > 0 {
		q.Attempts = n
		if ns, err := strconv.ParseInt(h.Get(headerFirstAttempt), 10, 64); err == nil {
			q.FirstAttempt = time.Unix(0, ns)
		}
		if ns, err := strconv.ParseInt(h.Get(headerNextAttempt), 10, 64); err == nil {
			q.NextAttempt = time.Unix(0, ns)
		}
	}
	return q
}

// HeaderAllowance bounds the headers a spilled delivery or a dead letter adds to the body.
const HeaderAllowance = 4 << 10

// CheckFits reports, as an error that says so, a body that with its room and HeaderAllowance
// exceeds maxPayload (the NATS server's max payload; 0: unknown, anything fits). Such a body
// cannot be spilled, replayed or dead-lettered, so whoever renders it refuses it up front
// rather than stall its endpoint later.
func CheckFits(body []byte, room string, maxPayload int) error {
	if maxPayload > 0 && len(body)+len(room)+HeaderAllowance > maxPayload {
		return fmt.Errorf("the rendered body is %d bytes: with its headers it exceeds the NATS server's max payload (%d bytes), so it could not be queued, retried or replayed", len(body), maxPayload)
	}
	return nil
}
