package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/roomhookv1"
	"github.com/roomhook/roomhook/schema/signature"
)

// PathPlugNmeet is where the Handler is served: point plugNmeet's webhook URL
// at http(s)://<roomhook>:<ingest port>/ingest/plugnmeet.
const PathPlugNmeet = "/ingest/plugnmeet"

// Sentinel errors of a refused request, returned wrapped; check them with
// errors.Is. Their text is what the response body says.
var (
	// ErrNotEvent: the body is not a plugNmeet event (unparseable, no event
	// name, no room id, or an event name that cannot be a subject token).
	ErrNotEvent = errors.New("not a plugNmeet event")
	// ErrRoutingField: an event other than room_created carries routing fields
	// (webhook_urls), which the contract allows only on room_created.
	ErrRoutingField = errors.New("only room_created may carry routing fields")
	// ErrTooLarge: the body is over the maximum event size.
	ErrTooLarge = errors.New("event body too large")
	// ErrUnavailable: JetStream did not store the event in time.
	ErrUnavailable = errors.New("JetStream did not store the event")
)

// Handler is the http.Handler of POST /ingest/plugnmeet. It is safe for
// concurrent use; every replica may serve it behind one Service, since the
// stream's duplicate window, not the replica, makes a retry count once.
type Handler struct {
	js             jetstream.JetStream
	region         string
	creds          signature.Credentials
	log            *slog.Logger
	maxBytes       int
	publishTimeout time.Duration
	leeway         time.Duration
	reg            prometheus.Registerer
	requests       *prometheus.CounterVec
}

// Outcomes, the label of roomhook_ingest_requests_total.
const (
	outcomeStored       = "stored"
	outcomeDuplicate    = "duplicate"
	outcomeUnauthorized = "unauthorized"
	outcomeBadRequest   = "bad_request"
	outcomeTooLarge     = "too_large"
	outcomeUnavailable  = "unavailable"
	outcomeRefused      = "refused" // wrong method or content type
)

// NewHandler returns the Handler that publishes into region's events stream
// with js and verifies tokens with creds (ROOMHOOK_INGEST_API_KEY/SECRET, by
// default the signing pair). The events stream must exist (the dispatcher
// provisions it); until it does, requests are answered 503.
func NewHandler(js jetstream.JetStream, region string, creds signature.Credentials, opts ...Option) (*Handler, error) {
	if js == nil {
		return nil, errors.New("ingest: no JetStream")
	}
	if err := schema.ValidateRegion(region); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	if creds.APIKey == "" || creds.APISecret == "" {
		return nil, fmt.Errorf("ingest: %w", signature.ErrMissingCredentials)
	}
	h := &Handler{
		js: js, region: region, creds: creds,
		maxBytes: DefaultMaxEventBytes, publishTimeout: DefaultPublishTimeout, leeway: DefaultLeeway,
	}
	for _, o := range opts {
		o(h)
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	h.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "roomhook_ingest_requests_total",
		Help: "Requests to POST /ingest/plugnmeet by outcome: stored, duplicate (stored before, answered 200), unauthorized, bad_request, too_large, unavailable (JetStream did not store it in time), refused (method or content type).",
	}, []string{"outcome"})
	for _, o := range []string{outcomeStored, outcomeDuplicate, outcomeUnauthorized, outcomeBadRequest, outcomeTooLarge, outcomeUnavailable, outcomeRefused} {
		h.requests.WithLabelValues(o) // zero series, so rates exist before the first one
	}
	if h.reg != nil {
		if err := h.reg.Register(h.requests); err != nil {
			return nil, fmt.Errorf("ingest: registering metrics: %w", err)
		}
	}
	return h, nil
}

// Stored is the 200 answer's JSON body: where the event now lives.
type Stored struct {
	// ID is the event id, also its Nats-Msg-Id.
	ID string `json:"id"`
	// Subject is the subject it was published on.
	Subject string `json:"subject"`
	// Stream and Seq are where JetStream stored it.
	Stream string `json:"stream"`
	Seq    uint64 `json:"seq"`
	// Duplicate is true when the id had been stored before within the
	// duplicate window; Seq is then the first copy's.
	Duplicate bool `json:"duplicate,omitempty"`
}

// ServeHTTP verifies, parses and stores one plugNmeet webhook request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.refuse(w, r, http.StatusMethodNotAllowed, outcomeRefused, errors.New("only POST"))
		return
	}
	body, err := h.readBody(w, r)
	if err != nil {
		status, outcome := http.StatusBadRequest, outcomeBadRequest
		if errors.Is(err, ErrTooLarge) {
			status, outcome = http.StatusRequestEntityTooLarge, outcomeTooLarge
		}
		h.refuse(w, r, status, outcome, err)
		return
	}
	// The token is checked before anything else about the body, so a caller
	// without the secret learns nothing about what roomhook would accept.
	verifier := signature.Verifier{Credentials: h.creds, Leeway: h.leeway}
	if err := verifier.Verify(r.Header, body, time.Now()); err != nil {
		w.Header().Set("WWW-Authenticate", `JWT realm="roomhook ingest"`)
		h.refuse(w, r, http.StatusUnauthorized, outcomeUnauthorized, err)
		return
	}
	if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
		h.refuse(w, r, http.StatusUnsupportedMediaType, outcomeRefused, err)
		return
	}
	evt, err := parseEvent(body)
	if err != nil {
		h.refuse(w, r, http.StatusBadRequest, outcomeBadRequest, err)
		return
	}
	stored, err := h.publish(r.Context(), evt)
	switch {
	case errors.Is(err, ErrTooLarge):
		h.refuse(w, r, http.StatusRequestEntityTooLarge, outcomeTooLarge, err)
		return
	case errors.Is(err, ErrNotEvent):
		h.refuse(w, r, http.StatusBadRequest, outcomeBadRequest, err)
		return
	case err != nil:
		// plugNmeet retries 5xx; Retry-After tells other senders the same.
		w.Header().Set("Retry-After", "1")
		h.refuse(w, r, http.StatusServiceUnavailable, outcomeUnavailable, err)
		return
	}
	if stored.Duplicate {
		h.requests.WithLabelValues(outcomeDuplicate).Inc()
	} else {
		h.requests.WithLabelValues(outcomeStored).Inc()
	}
	h.log.Debug("ingest: stored", "event", evt.GetEvent(), "id", stored.ID, "seq", stored.Seq, "duplicate", stored.Duplicate)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(stored) // the event is stored; a failed write changes nothing
}

// readBody reads at most maxBytes; one byte more is ErrTooLarge.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > int64(h.maxBytes) {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, r.ContentLength, h.maxBytes)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(h.maxBytes)))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, fmt.Errorf("%w: at most %d bytes", ErrTooLarge, h.maxBytes)
	case err != nil:
		return nil, fmt.Errorf("reading body: %w", err)
	}
	return body, nil
}

// checkContentType accepts what plugNmeet sends: application/webhook+json
// before v1.5.0, application/json since; and no Content-Type at all, which
// says nothing against the body.
func checkContentType(value string) error {
	if value == "" {
		return nil
	}
	mediaType, _, err := mime.ParseMediaType(value)
	if err != nil {
		return fmt.Errorf("content type %q: %w", value, err)
	}
	switch mediaType {
	case signature.DefaultContentType, "application/json":
		return nil
	}
	return fmt.Errorf("content type %q, want %s or application/json", mediaType, signature.DefaultContentType)
}

// parseEvent reads the body and checks what the contract asks of an event
// before it gets a subject.
func parseEvent(body []byte) (*roomhookv1.Event, error) {
	evt, err := schema.ParseBody(body)
	if err != nil {
		// protojson quotes the offending token (a webhook URL with its ?token=,
		// say), and the reason is logged and answered: say only where it is.
		return nil, fmt.Errorf("%w: %w: the body is not a valid plugNmeet webhook JSON%s", ErrNotEvent, schema.ErrParseBody, parsePosition(err))
	}
	name := strings.ToLower(evt.GetEvent())
	switch {
	case name == "":
		return nil, fmt.Errorf("%w: no event name", ErrNotEvent)
	case evt.GetRoom().GetRoomId() == "":
		return nil, fmt.Errorf("%w: no room id", ErrNotEvent)
	}
	if err := schema.ValidateEvent(name); err != nil {
		// ValidateEvent's text quotes the name, which is the sender's text.
		return nil, fmt.Errorf("%w: %w: %d bytes, want [a-z0-9_]", ErrNotEvent, schema.ErrInvalidEvent, len(name))
	}
	// A NATS server closes the connection of a client whose publish line is
	// over its max_control_line (4096 bytes by default), which would cut off
	// every request this replica serves; refuse such a room id here instead.
	if n := len(schema.EncodeRoomToken(evt.GetRoom().GetRoomId())); n > maxRoomTokenBytes {
		return nil, fmt.Errorf("%w: room id takes %d bytes as a subject token, at most %d", ErrNotEvent, n, maxRoomTokenBytes)
	}
	if len(evt.GetWebhookUrls()) > 0 && name != schema.EventRoomCreated {
		return nil, fmt.Errorf("%w: %s has webhook_urls", ErrRoutingField, name)
	}
	if evt.GetId() == "" {
		// plugNmeet always sends an id. For a sender that does not, the id is
		// derived from the body so that its retry of the same bytes is still
		// stored once.
		evt.Id = proto.String(uuid.NewSHA1(bodyIDNamespace(), body).String())
	}
	return evt, nil
}

// protojsonPosition finds the "(line L:C)" protojson puts in its errors.
var protojsonPosition = regexp.MustCompile(`\(line \d+:\d+\)`)

// parsePosition is " at line L:C" where the decoder's error gives one, else "":
// the position and nothing of the decoder's text, which quotes the body.
func parsePosition(err error) string {
	m := protojsonPosition.FindString(err.Error())
	if m == "" {
		return ""
	}
	return " at " + strings.Trim(m, "()")
}

// maxRoomTokenBytes leaves room, under the default max_control_line of 4096,
// for the rest of the publish line (prefix, region, event, reply inbox, sizes).
const maxRoomTokenBytes = 3500

// bodyIDNamespace is the UUID namespace of ids derived from a body:
// uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/roomhook/roomhook#ingest-body-id")).
func bodyIDNamespace() uuid.UUID {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/roomhook/roomhook#ingest-body-id"))
}

// publish stores evt and waits, up to publishTimeout, for JetStream's
// acknowledgement.
func (h *Handler) publish(ctx context.Context, evt *roomhookv1.Event) (Stored, error) {
	payload, err := proto.Marshal(evt)
	if err != nil {
		return Stored{}, fmt.Errorf("%w: %w", ErrNotEvent, err)
	}
	if len(payload) > h.maxBytes {
		return Stored{}, fmt.Errorf("%w: the event is %d bytes as protobuf, at most %d", ErrTooLarge, len(payload), h.maxBytes)
	}
	// The request's context is not the bound: plugNmeet may hang up, but an
	// event JetStream is storing should still get its answer logged.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.publishTimeout)
	defer cancel()
	ack, err := schema.Publish(ctx, h.js, h.region, evt)
	switch {
	case errors.Is(err, schema.ErrInvalidEvent), errors.Is(err, schema.ErrEmptyRoom), errors.Is(err, schema.ErrInvalidRegion):
		return Stored{}, fmt.Errorf("%w: %w", ErrNotEvent, err)
	case errors.Is(err, nats.ErrMaxPayload):
		return Stored{}, fmt.Errorf("%w: over the NATS server's max payload: %w", ErrTooLarge, err)
	case err != nil:
		return Stored{}, fmt.Errorf("%w within %s: %w", ErrUnavailable, h.publishTimeout, err)
	}
	subject, _ := schema.Address{Region: h.region, Room: evt.GetRoom().GetRoomId(), Event: strings.ToLower(evt.GetEvent())}.Subject()
	return Stored{ID: evt.GetId(), Subject: subject, Stream: ack.Stream, Seq: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

// refuse answers status with the reason as plain text and counts it. The
// reason never holds a token or a secret (signature's errors do not) nor the
// body's text (parseEvent names only positions and sizes).
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, status int, outcome string, reason error) {
	h.requests.WithLabelValues(outcome).Inc()
	level := slog.LevelWarn
	if status == http.StatusServiceUnavailable {
		level = slog.LevelError
	}
	h.log.Log(r.Context(), level, "ingest: refused", "status", status, "reason", reason.Error(), "remote", r.RemoteAddr)
	http.Error(w, reason.Error(), status)
}
