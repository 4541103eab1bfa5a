package deadletter

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/internal/backoff"
	"github.com/roomhook/roomhook/queue"
)

// Reasons a delivery or an event becomes a dead letter.
const (
	ReasonInvalid   = "invalid"   // the event itself cannot be delivered (bad bytes, room mismatch, too big)
	ReasonRejected  = "rejected"  // the endpoint answered a 4xx that retrying cannot fix
	ReasonGone      = "gone"      // the endpoint answered 410 Gone, or was disabled by it earlier
	ReasonExhausted = "exhausted" // every attempt of the retry schedule failed
	ReasonForbidden = "forbidden" // the target address is not allowed (SSRF guard)
)

// Headers of a dead letter. The body is the webhook body that was to be delivered, or for
// invalid events the original payload (up to MaxInvalidKept bytes; the event stays in the
// events stream under Roomhook-Event-Seq until the stream's max age).
const (
	HeaderReason       = "Roomhook-Reason"
	HeaderDetail       = "Roomhook-Detail"
	HeaderEndpointID   = "Roomhook-Endpoint-Id"
	HeaderEndpointURL  = "Roomhook-Endpoint-Url"
	HeaderAttempts     = "Roomhook-Attempts"
	HeaderLastStatus   = "Roomhook-Last-Status"
	HeaderLastError    = "Roomhook-Last-Error"
	HeaderFirstAttempt = "Roomhook-First-Attempt"
	HeaderLastAttempt  = "Roomhook-Last-Attempt"
	HeaderSubject      = "Roomhook-Subject"
	HeaderTruncated    = "Roomhook-Truncated"
)

// MaxInvalidKept bounds how much of an invalid payload is copied into its dead letter.
const MaxInvalidKept = 64 << 10

// Letter is what roomhook records about a delivery it gave up on.
type Letter struct {
	Reason       string
	Detail       string
	EndpointID   string // "invalid" for invalid events
	EndpointURL  string // stored redacted (endpoint.RedactURL): the full URL lives only in the endpoints bucket
	Room         string
	Event        string
	EventID      string
	EventSeq     uint64
	Subject      string // original subject, for invalid events
	Attempts     int
	LastStatus   int
	LastError    string
	FirstAttempt time.Time
	LastAttempt  time.Time
	Stored       time.Time
	Body         []byte
	Truncated    bool
	ReplayOf     uint64 // the dead letter a replay came from; not stored

	// Sequence and Time are set when read back from the dead-letter stream.
	Sequence uint64
	Time     time.Time
}

func (dl Letter) msg(subject string) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = dl.Body
	set := func(k, v string) {
		if v != "" {
			m.Header.Set(k, v)
		}
	}
	set(HeaderReason, dl.Reason)
	set(HeaderDetail, dl.Detail)
	set(HeaderEndpointID, dl.EndpointID)
	// Per-room URLs often carry a token in their query; a dead letter is read by operators
	// and kept for days, so it holds only the id and what endpoint.RedactURL leaves.
	set(HeaderEndpointURL, endpoint.RedactURL(dl.EndpointURL))
	set(queue.HeaderRoom, dl.Room)
	set(queue.HeaderEvent, dl.Event)
	set(queue.HeaderEventID, dl.EventID)
	set(HeaderSubject, dl.Subject)
	set(HeaderLastError, dl.LastError)
	if dl.EventSeq > 0 {
		set(queue.HeaderEventSeq, strconv.FormatUint(dl.EventSeq, 10))
	}
	if dl.Attempts > 0 {
		set(HeaderAttempts, strconv.Itoa(dl.Attempts))
	}
	if dl.LastStatus > 0 {
		set(HeaderLastStatus, strconv.Itoa(dl.LastStatus))
	}
	if !dl.FirstAttempt.IsZero() {
		set(HeaderFirstAttempt, dl.FirstAttempt.UTC().Format(time.RFC3339Nano))
	}
	if !dl.LastAttempt.IsZero() {
		set(HeaderLastAttempt, dl.LastAttempt.UTC().Format(time.RFC3339Nano))
	}
	if !dl.Stored.IsZero() {
		set(queue.HeaderStored, strconv.FormatInt(dl.Stored.UnixNano(), 10))
	}
	if dl.Truncated {
		set(HeaderTruncated, "true")
	}
	// One dead letter per (event, endpoint) even when the publish is retried.
	id := fmt.Sprintf("%d:%s:%s", dl.EventSeq, dl.EndpointID, dl.EventID)
	if dl.ReplayOf > 0 {
		// A replay that fails again must not be taken for a retried publish of the dead
		// letter it replaces, which is deleted right after.
		id += ":replay:" + strconv.FormatUint(dl.ReplayOf, 10)
	}
	set(nats.MsgIdHdr, id)
	return m
}

// Parse reads a dead letter back from the dead-letter stream.
func Parse(m *jetstream.RawStreamMsg) Letter {
	h := m.Header
	dl := Letter{
		Reason: h.Get(HeaderReason), Detail: h.Get(HeaderDetail),
		EndpointID: h.Get(HeaderEndpointID), EndpointURL: h.Get(HeaderEndpointURL),
		Room: h.Get(queue.HeaderRoom), Event: h.Get(queue.HeaderEvent), EventID: h.Get(queue.HeaderEventID),
		Subject: h.Get(HeaderSubject), LastError: h.Get(HeaderLastError),
		Truncated: h.Get(HeaderTruncated) == "true",
		Body:      m.Data, Sequence: m.Sequence, Time: m.Time,
	}
	dl.EventSeq, _ = strconv.ParseUint(h.Get(queue.HeaderEventSeq), 10, 64)
	dl.Attempts, _ = strconv.Atoi(h.Get(HeaderAttempts))
	dl.LastStatus, _ = strconv.Atoi(h.Get(HeaderLastStatus))
	dl.FirstAttempt, _ = time.Parse(time.RFC3339Nano, h.Get(HeaderFirstAttempt))
	dl.LastAttempt, _ = time.Parse(time.RFC3339Nano, h.Get(HeaderLastAttempt))
	if ns, err := strconv.ParseInt(h.Get(queue.HeaderStored), 10, 64); err == nil {
		dl.Stored = time.Unix(0, ns)
	}
	return dl
}

// Publish stores dl, retrying until it is stored or ctx ends: a dead letter is the
// record that an event was not delivered, so it must not be dropped on a transient error.
func Publish(ctx context.Context, js jetstream.JetStream, subject string, dl Letter) error {
	msg := dl.msg(subject)
	b := backoff.New(100*time.Millisecond, 5*time.Second)
	for {
		_, err := js.PublishMsg(ctx, msg)
		if err == nil {
			return nil
		}
		if !b.Wait(ctx) {
			return fmt.Errorf("dead letter for %s: %w", dl.EventID, err)
		}
	}
}
