package dispatcher

import (
	"hash/fnv"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers of a queued delivery in the deliver stream. The body is the webhook body, rendered
// once by the router, so every endpoint and every retry sends the same bytes.
const (
	HeaderRoom     = "Roomhook-Room"
	HeaderEvent    = "Roomhook-Event"
	HeaderEventID  = "Roomhook-Event-Id"
	HeaderEventSeq = "Roomhook-Event-Seq" // the event's sequence in the events stream
	HeaderStored   = "Roomhook-Stored"    // when the events stream stored it, unix nanoseconds
	HeaderReplayOf = "Roomhook-Replay-Of" // dead-letter sequence a replayed delivery came from
)

// Partition maps a room to one of n partitions. All of a room's deliveries to an endpoint
// share a partition, so one owner sees them in order.
func Partition(room string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(room))
	return int(h.Sum32() % uint32(n))
}

// Queued is one delivery in the deliver stream: the router writes it, a worker delivers it,
// and a dead-letter replay writes it again.
type Queued struct {
	Room     string
	Event    string
	EventID  string
	EventSeq uint64    // sequence of the event in the events stream
	Stored   time.Time // when the events stream stored the event
	Body     []byte
	ReplayOf uint64 // dead-letter sequence, for replays; removed from the DLQ once settled

	seq uint64 // deliver stream sequence, set when pulled
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
	m.Header[nats.MsgIdHdr] = []string{msgID}
	return m
}

// ParseQueued reads a pulled delivery.
func ParseQueued(m jetstream.Msg) Queued {
	h := m.Headers()
	q := Queued{Body: m.Data(), Room: h.Get(HeaderRoom), Event: h.Get(HeaderEvent), EventID: h.Get(HeaderEventID)}
	q.EventSeq, _ = strconv.ParseUint(h.Get(HeaderEventSeq), 10, 64)
	q.ReplayOf, _ = strconv.ParseUint(h.Get(HeaderReplayOf), 10, 64)
	if ns, err := strconv.ParseInt(h.Get(HeaderStored), 10, 64); err == nil {
		q.Stored = time.Unix(0, ns)
	}
	return q
}
