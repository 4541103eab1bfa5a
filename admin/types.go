package admin

import (
	"time"

	"github.com/roomhook/roomhook/breaker"
	"github.com/roomhook/roomhook/subscriber"
)

// ServiceName is the NATS micro service name every replica registers (`nats micro ls` lists it).
const ServiceName = subscriber.AdminServiceName

// Operations, each answered on Subject(region, op). The request and response bodies are the
// JSON of the types named. Reading operations (ReadOps) answer under ReadSubjects, changing
// ones (WriteOps) under WriteSubjects, so NATS permissions can grant an operator one or both.
const (
	OpEndpointsList   = "endpoints.list"   // no body → EndpointList
	OpEndpointsPause  = "endpoints.pause"  // EndpointRequest → Endpoint
	OpEndpointsResume = "endpoints.resume" // EndpointRequest → Endpoint
	OpStatus          = "status"           // no body → Status
	OpDLQList         = "dlq.list"         // Filter → DeadLetterList
	OpDLQShow         = "dlq.show"         // ShowRequest → DeadLetterDetail
	OpDLQReplay       = "dlq.replay"       // Filter → ReplayResult
	OpDLQPurge        = "dlq.purge"        // PurgeRequest → PurgeResult
	OpEventsResend    = "events.resend"    // ResendRequest → ResendResult
)

// ReadOps are the operations that only read: status, endpoints list, dlq list and show.
func ReadOps() []string { return []string{OpStatus, OpEndpointsList, OpDLQList, OpDLQShow} }

// WriteOps are the operations that change state: pause, resume, replay, purge and resend (a
// dry-run resend only counts, but it is the same operation, so it needs the same permission).
func WriteOps() []string {
	return []string{OpEndpointsPause, OpEndpointsResume, OpDLQReplay, OpDLQPurge, OpEventsResend}
}

// IsWrite reports whether op changes state, so that it is answered under WriteSubjects.
func IsWrite(op string) bool {
	switch op {
	case OpEndpointsPause, OpEndpointsResume, OpDLQReplay, OpDLQPurge, OpEventsResend:
		return true
	}
	return false
}

// Access levels, the subject token after the region.
const (
	AccessRead  = "read"
	AccessWrite = "write"
)

// Subject is where one operation of a region's admin service is answered:
// roomhook.admin.<region>.read.<op> or roomhook.admin.<region>.write.<op>.
func Subject(region, op string) string {
	access := AccessRead
	if IsWrite(op) {
		access = AccessWrite
	}
	return SubjectPrefix(region) + "." + access + "." + op
}

// SubjectPrefix is the root of a region's admin subjects, roomhook.admin.<region>.
func SubjectPrefix(region string) string { return "roomhook.admin." + region }

// ReadSubjects is the wildcard of a region's reading operations, for NATS permissions:
// roomhook.admin.<region>.read.>.
func ReadSubjects(region string) string { return subscriber.Names{Region: region}.AdminReadSubjects() }

// WriteSubjects is the wildcard of a region's changing operations, for NATS permissions:
// roomhook.admin.<region>.write.>.
func WriteSubjects(region string) string {
	return subscriber.Names{Region: region}.AdminWriteSubjects()
}

// Endpoint is an endpoint as operators see it. Its URL is redacted (RedactURL: no user info,
// query or fragment), since receivers often take a token there.
type Endpoint struct {
	ID             string        `json:"id"`
	URL            string        `json:"url"`
	Global         bool          `json:"global"` // from configuration; false: registered by rooms
	Paused         bool          `json:"paused"`
	Disabled       bool          `json:"disabled"` // by a 410 Gone answer
	DisabledReason string        `json:"disabled_reason,omitempty"`
	Breaker        breaker.State `json:"breaker"` // closed when no replica has recorded one
	BreakerReason  string        `json:"breaker_reason,omitempty"`
	Updated        time.Time     `json:"updated,omitzero"` // last change of the shared state
}

// State is one word for an endpoint's shared state: active, paused or disabled.
func (e Endpoint) State() string {
	switch {
	case e.Disabled:
		return "disabled"
	case e.Paused:
		return "paused"
	default:
		return "active"
	}
}

// EndpointList answers OpEndpointsList, sorted by URL.
type EndpointList struct {
	Endpoints []Endpoint `json:"endpoints"`
}

// EndpointRequest names one endpoint by its id or its URL.
type EndpointRequest struct {
	Endpoint string `json:"endpoint"`
}

// Status answers OpStatus: what every endpoint is doing and what the dead-letter stream holds.
type Status struct {
	Region      string           `json:"region"`
	Replica     string           `json:"replica"` // the replica that answered
	At          time.Time        `json:"at"`
	Endpoints   []EndpointStatus `json:"endpoints"`
	Totals      Totals           `json:"totals"`
	DeadLetters DeadLetterCounts `json:"dead_letters"`
	// Unrouted counts the events stored on roomhook.events.<region>.<room>, a subject with
	// no event token: the events stream takes them, but they are neither delivered nor
	// dead-lettered, so a publisher sending them sees no error but this one.
	Unrouted uint64 `json:"unrouted_events"`
}

// EndpointStatus is one endpoint's backlog and health.
type EndpointStatus struct {
	Endpoint
	// Backlog is what the endpoint's spill queues hold, summed over partitions: every
	// delivery spilled (or queued by a replay or resend) and not yet settled, those in flight
	// included. A healthy endpoint's deliveries are only in a replica's memory, for moments,
	// and are not counted.
	Backlog uint64 `json:"backlog"`
	// InFlight is how many of the stored messages that hold Backlog the drainers of the
	// endpoint's spill queues have pulled and not yet acknowledged, their consumers'
	// ack-pending counts (being attempted, waiting for a retry, or held while the endpoint is
	// paused). A message holds one delivery, or up to queue.BatchMaxDeliveries of one
	// partition when the partition's owner spilled them together.
	InFlight    uint64 `json:"in_flight"`
	DeadLetters uint64 `json:"dead_letters"` // stored for this endpoint
	// The latest success and failed attempt any replica recorded (replicas write what they
	// see every few seconds).
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// Totals sums the endpoints' numbers.
type Totals struct {
	Endpoints int    `json:"endpoints"`
	Backlog   uint64 `json:"backlog"`
	InFlight  uint64 `json:"in_flight"`
}

// DeadLetterCounts is the size of the dead-letter stream by reason (deadletter.Reason*).
type DeadLetterCounts struct {
	Total    uint64            `json:"total"`
	ByReason map[string]uint64 `json:"by_reason"`
}

// Filter selects dead letters. Every criterion given must match; none given selects all.
type Filter struct {
	Endpoint string    `json:"endpoint,omitempty"` // endpoint id or URL; "invalid" for invalid events
	Room     string    `json:"room,omitempty"`
	Event    string    `json:"event,omitempty"`
	Reason   string    `json:"reason,omitempty"` // invalid, rejected, gone, exhausted or forbidden
	Since    time.Time `json:"since,omitzero"`   // dead-lettered at or after
	Until    time.Time `json:"until,omitzero"`   // dead-lettered at or before
	// Limit caps how many dead letters are selected, oldest first. 0: dlq.list shows
	// DefaultListLimit, replay and purge take every match.
	Limit int `json:"limit,omitempty"`
}

// Empty reports whether f selects every dead letter.
func (f Filter) Empty() bool {
	return f.Endpoint == "" && f.Room == "" && f.Event == "" && f.Reason == "" &&
		f.Since.IsZero() && f.Until.IsZero() && f.Limit == 0
}

// List limits: a listing stays well below NATS's default 1 MiB message size.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// DeadLetter is a dead letter without its body.
type DeadLetter struct {
	Seq          uint64    `json:"seq"`  // sequence in the dead-letter stream
	Time         time.Time `json:"time"` // when it was dead-lettered
	Reason       string    `json:"reason"`
	Detail       string    `json:"detail,omitempty"`
	EndpointID   string    `json:"endpoint_id"`
	EndpointURL  string    `json:"endpoint_url,omitempty"` // redacted (RedactURL)
	Room         string    `json:"room,omitempty"`
	Event        string    `json:"event,omitempty"`
	EventID      string    `json:"event_id,omitempty"`
	EventSeq     uint64    `json:"event_seq,omitempty"`    // sequence in the events stream
	EventStored  time.Time `json:"event_stored,omitzero"`  // when the events stream stored the event
	Subject      string    `json:"subject,omitempty"`      // original subject, for invalid events
	Attempts     int       `json:"attempts,omitempty"`     // delivery attempts made
	LastStatus   int       `json:"last_status,omitempty"`  // HTTP status of the last attempt
	LastError    string    `json:"last_error,omitempty"`   // network error of the last attempt
	FirstAttempt time.Time `json:"first_attempt,omitzero"` // zero when never attempted
	LastAttempt  time.Time `json:"last_attempt,omitzero"`
	BodyBytes    int       `json:"body_bytes"`
	Truncated    bool      `json:"truncated,omitempty"` // an invalid event's payload was cut to deadletter.MaxInvalidKept
}

// DeadLetterList answers OpDLQList.
type DeadLetterList struct {
	DeadLetters []DeadLetter `json:"dead_letters"` // oldest first, at most the limit
	Matched     int          `json:"matched"`      // every dead letter the filter matches, ignoring the limit
}

// ShowRequest names one dead letter by its sequence.
type ShowRequest struct {
	Seq uint64 `json:"seq"`
}

// DeadLetterDetail answers OpDLQShow: a dead letter with its body, as text when it is UTF-8
// (webhook bodies are JSON), else base64 (an invalid event's protobuf payload). URLs in the
// body are shown redacted: the webhook_urls of a protobuf payload, and anything that looks
// like an http(s) URL in other bodies.
type DeadLetterDetail struct {
	DeadLetter
	Body       string `json:"body,omitempty"`
	BodyBase64 string `json:"body_base64,omitempty"`
}

// ReplayResult answers OpDLQReplay.
type ReplayResult struct {
	Matched  int `json:"matched"`
	Replayed int `json:"replayed"` // queued again for their endpoint; they leave the DLQ once delivered
	// Skipped lists (up to MaxSkippedListed) what could not be replayed, and why.
	Skipped      []Skipped `json:"skipped,omitempty"`
	SkippedTotal int       `json:"skipped_total"`
}

// MaxSkippedListed bounds ReplayResult.Skipped.
const MaxSkippedListed = 100

// Skipped is a selected dead letter that was not replayed.
type Skipped struct {
	Seq    uint64 `json:"seq"`
	Reason string `json:"reason"`
}

// PurgeRequest selects the dead letters to delete. An empty filter purges nothing unless All
// is set, so that a forgotten flag cannot empty the stream.
type PurgeRequest struct {
	Filter
	All bool `json:"all,omitempty"`
}

// PurgeResult answers OpDLQPurge.
type PurgeResult struct {
	Purged uint64 `json:"purged"`
}

// ResendRequest selects events still in the events stream to queue again for one endpoint.
// Since is required: a resend without a time bound is refused, and so is one whose Since is
// before the oldest event the stream still holds (ResendResult.StreamFirst says how far back
// it reaches).
type ResendRequest struct {
	Endpoint string    `json:"endpoint"`        // endpoint id or URL; it must be in the endpoints bucket
	Since    time.Time `json:"since"`           // stored at or after; required
	Until    time.Time `json:"until,omitzero"`  // stored at or before; zero: up to the last event stored when the request began
	Room     string    `json:"room,omitempty"`  // only this room
	Event    string    `json:"event,omitempty"` // only this event name
	// DryRun counts what would be queued and queues nothing.
	DryRun bool `json:"dry_run,omitempty"`
	// Nonce names this request in the queued deliveries' message ids
	// (resend:<event seq>:<endpoint id>:<nonce>), so a request sent again with the same nonce
	// within the spill stream's duplicate window (2 minutes), after a timeout for example,
	// does not queue an event twice, while a new request (a new nonce) resends on purpose.
	// Client.Resend fills a random one when it is empty; so does the service. At most
	// MaxNonceBytes of [A-Za-z0-9_-].
	Nonce string `json:"nonce,omitempty"`
}

// MaxNonceBytes bounds ResendRequest.Nonce.
const MaxNonceBytes = 64

// ResendResult answers OpEventsResend.
type ResendResult struct {
	EndpointID  string `json:"endpoint_id"`
	EndpointURL string `json:"endpoint_url"` // redacted (RedactURL)
	Global      bool   `json:"global"`       // false: a per-room endpoint, resent only the events of rooms that registered it
	Paused      bool   `json:"paused,omitempty"`
	DryRun      bool   `json:"dry_run,omitempty"`
	Nonce       string `json:"nonce"`
	// The window read: Since as asked, Until as asked or the last event's time.
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// StreamFirst and StreamLast are when the oldest and newest events still in the events
	// stream were stored: how far back a resend can reach (ROOMHOOK_STREAM_MAX_AGE).
	StreamFirst time.Time `json:"stream_first,omitzero"`
	StreamLast  time.Time `json:"stream_last,omitzero"`
	// Matched counts the events of the window (and of Room and Event) that the endpoint
	// receives: its event filter takes them and, for a per-room endpoint, their room had it
	// registered.
	Matched int `json:"matched"`
	// Queued counts those queued for the endpoint now (0 on a dry run); Duplicates those
	// this same request (the same nonce) had queued moments ago already.
	Queued     int `json:"queued"`
	Duplicates int `json:"duplicates,omitempty"`
	// NotRouted counts the events of the window the endpoint never received and is not sent
	// now: its event filter refuses them, or their room did not register a per-room endpoint.
	NotRouted int `json:"not_routed,omitempty"`
	// Invalid counts the events of the window the dispatcher dead-letters as invalid: they
	// were never delivered and are not resent.
	Invalid int `json:"invalid,omitempty"`
	// Rooms counts the rooms of the matched events.
	Rooms int `json:"rooms"`
	// FirstSeq and LastSeq are the events-stream sequences of the first and last event matched.
	FirstSeq uint64 `json:"first_seq,omitempty"`
	LastSeq  uint64 `json:"last_seq,omitempty"`
}
