package dispatcher

import (
	"hash/fnv"
	"strconv"
	"time"

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
)

// Partition maps a room to one of n partitions. All of a room's deliveries to an endpoint
// share a partition, so one owner sees them in order.
func Partition(room string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(room))
	return int(h.Sum32() % uint32(n))
}

// queued is one delivery as a Worker holds it.
type queued struct {
	seq     uint64 // deliver stream sequence
	room    string
	event   string
	eventID string
	evSeq   uint64
	stored  time.Time
	body    []byte
}

func parseQueued(seq uint64, m jetstream.Msg) queued {
	q := queued{seq: seq, body: m.Data()}
	h := m.Headers()
	q.room = h.Get(HeaderRoom)
	q.event = h.Get(HeaderEvent)
	q.eventID = h.Get(HeaderEventID)
	q.evSeq, _ = strconv.ParseUint(h.Get(HeaderEventSeq), 10, 64)
	if ns, err := strconv.ParseInt(h.Get(HeaderStored), 10, 64); err == nil {
		q.stored = time.Unix(0, ns)
	}
	return q
}
