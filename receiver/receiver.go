package receiver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/roomhook/roomhook/schema/signature"
	"github.com/roomhook/roomhook/traffic"
)

// DefaultMaxBodyBytes is the largest body read when Options.MaxBodyBytes is zero: the JSON of
// an event at roomhook's 1 MiB protobuf limit fits with room to spare.
const DefaultMaxBodyBytes = 4 << 20

// ErrOptions marks unusable Options.
var ErrOptions = errors.New("invalid receiver options")

// Options configure a Receiver.
type Options struct {
	// Credentials verify the JWT in Authorization or Hash-Token. Required.
	Credentials signature.Credentials
	// StandardSecrets, when set, also require a valid Standard Webhooks signature made with any
	// of them (whsec_...).
	StandardSecrets []string
	// Leeway is the clock skew allowed on the token's times (see signature.Verifier).
	Leeway time.Duration
	// Latency delays every verified request before it is answered, like a slow endpoint.
	Latency time.Duration
	// FailRate is the fraction, in [0,1], of verified requests answered with FailStatus instead
	// of 200. Failed requests are not counted as deliveries: the dispatcher retries them.
	FailRate float64
	// FailStatus is the status of injected failures (default 503).
	FailStatus int
	// MaxBodyBytes bounds the body read (default DefaultMaxBodyBytes); larger bodies get 413.
	MaxBodyBytes int64
	// Log, when set, gets one line per request: time, room, event, id and path for an accepted
	// event, the same and the status for an injected failure, the reason for a refusal.
	Log io.Writer
	// OnEvent, when set, is called for every accepted delivery, before the response is written.
	// It runs on the request's goroutine and must be quick.
	OnEvent func(Delivery)
}

// Delivery is one accepted webhook as OnEvent sees it.
type Delivery struct {
	ID    string    // the body's id (rh-<run>-<room>-<seq> for traffic events)
	Room  string    // room.room_id
	Event string    // event name
	Path  string    // request path: one Receiver can serve many endpoints
	At    time.Time // when the request was read and verified, before Latency
	Body  []byte    // the body as received
}

// Receiver is an http.Handler that verifies and counts webhooks. It is safe for concurrent use.
type Receiver struct {
	opts     Options
	verifier signature.Verifier

	logMu sync.Mutex

	mu      sync.Mutex
	stats   Stats
	seen    map[string]struct{} // path + "\x00" + id of every accepted event
	lastSeq map[string]uint64   // path + "\x00" + room key -> highest seq accepted
}

// New checks opts and returns a Receiver with zeroed statistics.
func New(opts Options) (*Receiver, error) {
	if opts.Credentials.APIKey == "" || opts.Credentials.APISecret == "" {
		return nil, fmt.Errorf("%w: API key and secret are required", ErrOptions)
	}
	for i, s := range opts.StandardSecrets {
		if _, err := signature.SignStandard(s, "probe", time.Unix(0, 0), nil); err != nil {
			return nil, fmt.Errorf("%w: Standard Webhooks secret %d: %w", ErrOptions, i+1, err)
		}
	}
	if !(opts.FailRate >= 0 && opts.FailRate <= 1) {
		return nil, fmt.Errorf("%w: fail rate %v is outside [0,1]", ErrOptions, opts.FailRate)
	}
	if opts.FailStatus == 0 {
		opts.FailStatus = http.StatusServiceUnavailable
	}
	if opts.FailStatus < 100 || opts.FailStatus > 599 {
		return nil, fmt.Errorf("%w: status %d is not an HTTP status", ErrOptions, opts.FailStatus)
	}
	if opts.Latency < 0 {
		return nil, fmt.Errorf("%w: latency must not be negative", ErrOptions)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	opts.StandardSecrets = append([]string(nil), opts.StandardSecrets...)
	return &Receiver{
		opts:     opts,
		verifier: signature.Verifier{Credentials: opts.Credentials, Leeway: opts.Leeway},
		stats:    Stats{Reasons: map[string]uint64{}, Paths: map[string]uint64{}},
		seen:     map[string]struct{}{},
		lastSeq:  map[string]uint64{},
	}, nil
}

// webhookBody is what the receiver reads of a body.
type webhookBody struct {
	Event string `json:"event"`
	ID    string `json:"id"`
	Room  struct {
		RoomID string `json:"room_id"`
	} `json:"room"`
}

// ServeHTTP verifies one webhook request and answers 200, an injected failure status, or the
// refusal: 401 for a failed signature check, 400 for a body that is not a webhook, 413 for
// one too large, 405 for anything but POST (not counted).
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "webhooks are POSTed", http.StatusMethodNotAllowed)
		return
	}
	r.count(func(s *Stats) { s.Received++ })
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, r.opts.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			r.refuse(w, req, http.StatusRequestEntityTooLarge, ReasonBodyTooLarge)
		} else {
			r.refuse(w, req, http.StatusBadRequest, ReasonBodyUnreadable)
		}
		return
	}
	now := time.Now()
	if err := r.verifier.Verify(req.Header, body, now); err != nil {
		r.refuse(w, req, http.StatusUnauthorized, reasonOf(err))
		return
	}
	if len(r.opts.StandardSecrets) > 0 {
		if err := signature.VerifyStandard(r.opts.StandardSecrets, req.Header, body, 0, now); err != nil {
			r.refuse(w, req, http.StatusUnauthorized, reasonOf(err))
			return
		}
	}
	var wb webhookBody
	if err := json.Unmarshal(body, &wb); err != nil || wb.ID == "" || wb.Event == "" {
		r.refuse(w, req, http.StatusBadRequest, ReasonNotWebhook)
		return
	}
	r.count(func(s *Stats) { s.Verified++ })

	if r.opts.Latency > 0 {
		t := time.NewTimer(r.opts.Latency)
		select {
		case <-t.C:
		case <-req.Context().Done():
			t.Stop()
			return // the sender gave up; it will retry
		}
	}
	if r.opts.FailRate > 0 && rand.Float64() < r.opts.FailRate {
		r.count(func(s *Stats) { s.Failed++ })
		r.logf("%s %s %s %s %s -> %d (injected)\n", now.Format(timeFormat), wb.Room.RoomID, wb.Event, wb.ID, req.URL.Path, r.opts.FailStatus)
		w.WriteHeader(r.opts.FailStatus)
		return
	}
	d := Delivery{ID: wb.ID, Room: wb.Room.RoomID, Event: wb.Event, Path: req.URL.Path, At: now, Body: body}
	r.accept(d)
	if r.opts.OnEvent != nil {
		r.opts.OnEvent(d)
	}
	r.logf("%s %s %s %s %s\n", now.Format(timeFormat), d.Room, d.Event, d.ID, d.Path)
	w.WriteHeader(http.StatusOK)
}

const timeFormat = "15:04:05.000"

func (r *Receiver) refuse(w http.ResponseWriter, req *http.Request, status int, reason string) {
	r.count(func(s *Stats) {
		s.Rejected++
		s.Reasons[reason]++
	})
	r.logf("%s REJECTED %s: %s (%s)\n", time.Now().Format(timeFormat), req.URL.Path, reason, http.StatusText(status))
	// The reason helps whoever debugs the sender; it names no secret.
	http.Error(w, reason, status)
}

// accept records a delivered event: per endpoint path, whether its id was seen before and
// whether it came after a later event of its room.
func (r *Receiver) accept(d Delivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.Accepted++
	r.stats.Paths[d.Path]++
	key := d.Path + "\x00" + d.ID
	if _, dup := r.seen[key]; dup {
		r.stats.Duplicates++
		return
	}
	r.seen[key] = struct{}{}
	id, err := traffic.ParseEventID(d.ID)
	if err != nil {
		return
	}
	room := d.Path + "\x00" + id.RoomKey()
	if last := r.lastSeq[room]; id.Seq < last {
		r.stats.OutOfOrder++
		return
	}
	r.lastSeq[room] = id.Seq
}

func (r *Receiver) count(f func(*Stats)) {
	r.mu.Lock()
	f(&r.stats)
	r.mu.Unlock()
}

func (r *Receiver) logf(format string, args ...any) {
	if r.opts.Log == nil {
		return
	}
	r.logMu.Lock()
	fmt.Fprintf(r.opts.Log, format, args...)
	r.logMu.Unlock()
}

// Stats returns a copy of the counts so far.
func (r *Receiver) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	s.Reasons = make(map[string]uint64, len(r.stats.Reasons))
	for k, v := range r.stats.Reasons {
		s.Reasons[k] = v
	}
	s.Paths = make(map[string]uint64, len(r.stats.Paths))
	for k, v := range r.stats.Paths {
		s.Paths[k] = v
	}
	return s
}
