package sender

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/roomhook/roomhook/egress"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/schema/signature"
)

// MaxResponseBodyBytes is how much of a receiver's response body is read. The body is only
// drained so the connection can be reused; a receiver that sends more loses its connection.
const MaxResponseBodyBytes = 64 << 10

// DefaultTimeout is the per-attempt time limit: connecting, sending, the response headers and
// reading the (limited) response body.
const DefaultTimeout = 10 * time.Second

// DefaultContentType is the Content-Type of webhook requests unless configured otherwise:
// signature.DefaultContentType, the one definition.
const DefaultContentType = signature.DefaultContentType

// Errors an Attempt's Err can wrap besides the network's own, for errors.Is.
var (
	// ErrTimeout: the receiver did not answer within the per-attempt timeout, or no
	// connection to it was free in that time (WithMaxConnsPerHost, WithMaxConns).
	ErrTimeout = errors.New("no response within the timeout")
	// ErrSigning: the request could not be signed, for example because credentials are missing.
	ErrSigning = errors.New("signing the webhook failed")
)

// Verdict is what an attempt's outcome means for the delivery.
type Verdict int

const (
	// Delivered: the receiver answered 2xx.
	Delivered Verdict = iota
	// Retry: network error, timeout, 408, 425, 429 or 5xx, or the sender was shut down;
	// try again later following the retry schedule.
	Retry
	// Reject: the receiver refused the event (3xx or 4xx other than 408, 410, 425, 429) or it
	// cannot be sent at all; dead-letter it without retrying.
	Reject
	// Gone: the receiver answered 410; dead-letter and remove (per room) or disable (global)
	// the endpoint.
	Gone
	// Forbidden: the egress guard refused every address the endpoint's host resolved to (or
	// the one it names), so no connection was made. Dead-letter it with reason forbidden;
	// retrying cannot help and the endpoint's health is not to blame, so it is neither retried
	// nor counted by the breaker. Err wraps egress.ErrForbidden and an *egress.ForbiddenError
	// with the refused address, which Reason shows.
	Forbidden
)

// String returns the verdict's lower-case name, as used in logs and metric labels.
func (v Verdict) String() string {
	switch v {
	case Delivered:
		return "delivered"
	case Retry:
		return "retry"
	case Reject:
		return "reject"
	case Gone:
		return "gone"
	case Forbidden:
		return "forbidden"
	}
	return "verdict(" + strconv.Itoa(int(v)) + ")"
}

// Attempt is the outcome of one POST to one endpoint.
type Attempt struct {
	Status     int           // HTTP status, 0 when no response arrived
	Err        error         // why no response arrived; nil when Status is set
	RetryAfter time.Duration // the receiver's Retry-After on a retryable status, else 0
	Duration   time.Duration // wall time of the attempt, response body drain included
	Verdict    Verdict
	// NotSent: no request was made, because no connection to the receiver was free within
	// the timeout (this replica is at WithMaxConnsPerHost or WithMaxConns). It says nothing
	// of the receiver's health, so breakers leave it out.
	NotSent bool
}

// Reason is a short text for dead letters, logs and metrics: "status 503", "timeout",
// "connection refused", "status 302, redirect not followed" and so on. It is built from the
// status or the kind of error only, never from the URL or headers, so it holds no secret.
func (a Attempt) Reason() string {
	if a.Err != nil {
		return errorReason(a.Err)
	}
	if a.Status == 0 {
		return ""
	}
	if a.Status >= 300 && a.Status < 400 {
		return "status " + strconv.Itoa(a.Status) + ", redirect not followed"
	}
	return "status " + strconv.Itoa(a.Status)
}

func errorReason(err error) string {
	var (
		forbidden *egress.ForbiddenError
		dnsErr    *net.DNSError
		netErr    net.Error
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		certErr   x509.CertificateInvalidError
		recordErr tls.RecordHeaderError
		alertErr  tls.AlertError
	)
	switch {
	case errors.As(err, &forbidden):
		// "forbidden: refused 10.0.0.7:443: private address (10.0.0.0/8)": the address, never the URL.
		return "forbidden: " + forbidden.Error()
	case errors.Is(err, egress.ErrForbidden):
		return "forbidden"
	case errors.Is(err, ErrSigning):
		return "signing failed"
	case errors.Is(err, endpoint.ErrInvalidURL):
		return "invalid URL"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable"
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return "dns: no such host"
		}
		return "dns lookup failed"
	case errors.As(err, &unknownCA):
		return "tls: certificate signed by unknown authority"
	case errors.As(err, &hostErr):
		return "tls: certificate is not valid for the host"
	case errors.As(err, &certErr):
		return "tls: invalid certificate"
	case errors.As(err, &recordErr):
		return "tls: server did not answer TLS"
	case errors.As(err, &alertErr):
		return "tls: handshake refused"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	}
	// The innermost error names the failure without the wrapping context; the Sender calls
	// the transport directly, so no url.Error (which would repeat the URL) is in the chain.
	for {
		inner := errors.Unwrap(err)
		if inner == nil {
			break
		}
		err = inner
	}
	const maxLen = 120
	text := err.Error()
	if len(text) > maxLen {
		text = text[:maxLen]
	}
	return "network error: " + text
}

// Delivery is what is sent: the exact body bytes and the event id, which becomes webhook-id.
type Delivery struct {
	Body    []byte
	EventID string
}

// Sender POSTs signed webhooks. One Sender, and its one connection pool, serves every endpoint
// and is safe for concurrent use.
type Sender struct {
	transport   http.RoundTripper // for endpoints the guard does not apply to
	guard       *egress.Guard
	guarded     http.RoundTripper // the pool whose dialer refuses what guard forbids; nil when it guards nothing
	dialer      *net.Dialer
	timeout     time.Duration
	maxPerHost  int
	maxConns    int
	limit       *connLimiter // attempts in flight, per receiver host and replica-wide
	contentType string
	userAgent   string
	now         func() time.Time
	drainBufs   sync.Pool            // *[]byte of drainBufSize, reused across attempts
	tokens      signature.TokenCache // one event fanned out to many endpoints is signed once
}

// Option configures a Sender.
type Option func(*Sender)

// WithTimeout sets the per-attempt time limit (default 10s); non-positive values are ignored.
func WithTimeout(d time.Duration) Option {
	return func(s *Sender) {
		if d > 0 {
			s.timeout = d
		}
	}
}

// WithMaxConnsPerHost bounds the attempts in flight to one receiver host (scheme, host and
// port), and so the connections the Sender opens to it (default 256); the pools keep as many
// idle. Attempts past the bound wait, without holding a WithMaxConns slot, for one to finish,
// within the attempt's timeout. A value above WithMaxConns's is lowered to it; non-positive
// values are ignored.
func WithMaxConnsPerHost(n int) Option {
	return func(s *Sender) {
		if n > 0 {
			s.maxPerHost = n
		}
	}
}

// WithMaxConns bounds the attempts in flight to all receivers together, and so the Sender's
// connections in use (default 4096); each pool keeps at most as many idle. An attempt takes its
// host's slot (WithMaxConnsPerHost) before one of these, so a hanging host holds at most its
// own share. Non-positive values are ignored.
func WithMaxConns(n int) Option {
	return func(s *Sender) {
		if n > 0 {
			s.maxConns = n
		}
	}
}

// WithContentType sets the Content-Type header (default application/webhook+json).
func WithContentType(ct string) Option {
	return func(s *Sender) {
		if ct != "" {
			s.contentType = ct
		}
	}
}

// WithUserAgent sets the User-Agent header (default roomhook/<module version>).
func WithUserAgent(ua string) Option {
	return func(s *Sender) {
		if ua != "" {
			s.userAgent = ua
		}
	}
}

// WithTransport replaces the Sender's own connection pool, for example to add a proxy or
// custom TLS roots. Redirects are never followed whatever the transport.
func WithTransport(rt http.RoundTripper) Option {
	return func(s *Sender) {
		if rt != nil {
			s.transport = rt
		}
	}
}

// WithGuard makes the Sender refuse, at dial time, connections to addresses g forbids: for
// per-room endpoints always, for global ones (Endpoint.Global) when g says so. Guarded
// requests go through a pool of their own that dials directly, never through a proxy from
// the environment or WithTransport's transport: behind a proxy the proxy would resolve and
// connect, and the check on the dialled address would see only the proxy. A nil or disabled
// guard guards nothing (the default).
func WithGuard(g *egress.Guard) Option {
	return func(s *Sender) { s.guard = g }
}

// WithDialer sets the dialer under the Sender's own pools (its timeouts, keep-alive, resolver
// and Control hook); the guard's check runs before d's Control. The default connects within
// 5s with 30s keep-alive.
func WithDialer(d *net.Dialer) Option {
	return func(s *Sender) {
		if d != nil {
			s.dialer = d
		}
	}
}

// WithClock sets the clock for signature timestamps and Retry-After dates (default time.Now).
// Attempt.Duration is always measured with the real monotonic clock.
func WithClock(now func() time.Time) Option {
	return func(s *Sender) {
		if now != nil {
			s.now = now
		}
	}
}

const drainBufSize = 8 << 10

// New returns a Sender with its own keep-alive connection pool, tuned for many receivers.
func New(opts ...Option) *Sender {
	s := &Sender{
		timeout:     DefaultTimeout,
		maxPerHost:  DefaultMaxConnsPerHost,
		maxConns:    DefaultMaxConns,
		contentType: DefaultContentType,
		userAgent:   defaultUserAgent(),
		now:         time.Now,
		dialer:      &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second},
	}
	s.drainBufs.New = func() any {
		b := make([]byte, drainBufSize)
		return &b
	}
	for _, opt := range opts {
		opt(s)
	}
	s.maxPerHost = min(s.maxPerHost, s.maxConns)
	s.limit = newConnLimiter(s.maxPerHost, s.maxConns)
	if s.transport == nil {
		t := s.newTransport(s.dialer.DialContext)
		t.Proxy = http.ProxyFromEnvironment
		s.transport = t
	}
	if s.guard.Enabled() {
		s.guarded = s.newTransport(s.guard.DialContext(s.dialer))
	}
	return s
}

func (s *Sender) newTransport(dial func(ctx context.Context, network, address string) (net.Conn, error)) *http.Transport {
	return &http.Transport{
		DialContext:       dial,
		ForceAttemptHTTP2: true,
		// Send's limiter bounds the attempts in flight per host and in all; these caps keep
		// the pool itself in step (connections still closing after a cancelled attempt, the
		// idle ones), so that a fan-out to many endpoints over many rooms cannot run out of
		// file descriptors.
		MaxConnsPerHost:     s.maxPerHost,
		MaxIdleConnsPerHost: s.maxPerHost,
		MaxIdleConns:        s.maxConns,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second,
		// The body is discarded; negotiating gzip would only cost CPU.
		DisableCompression: true,
	}
}

func defaultUserAgent() string {
	version := "dev"
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		version = info.Main.Version
	}
	return "roomhook/" + version
}

// CloseIdleConnections closes the pool's idle keep-alive connections, for shutdown.
func (s *Sender) CloseIdleConnections() {
	for _, t := range []http.RoundTripper{s.transport, s.guarded} {
		if c, ok := t.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
	}
}

// Send makes one attempt to deliver d to ep: a signed POST, redirects not followed, bounded by
// the per-attempt timeout, at most MaxResponseBodyBytes of the answer read. When the guard
// (WithGuard) applies to ep and refuses its address, no connection is made and the verdict is
// Forbidden. It never panics on
// a receiver's behaviour and always returns a Verdict. When ctx ends (shutdown) the verdict is
// Retry and Err wraps ctx's error, so the caller can hand the message back.
//
// The attempt first waits for a slot of ep's host (WithMaxConnsPerHost), then for a
// replica-wide one (WithMaxConns), and holds both until its response is drained. The wait is
// bounded by the per-attempt timeout too, and the request gets its whole timeout once it has
// its slots: when no slot frees in time the verdict is Retry, NotSent is set and Err wraps
// ErrTimeout and says no connection was free.
func (s *Sender) Send(ctx context.Context, ep endpoint.Endpoint, d Delivery) Attempt {
	start := time.Now()
	if err := ctx.Err(); err != nil {
		return Attempt{Err: fmt.Errorf("delivery not started: %w", err), Verdict: Retry}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(d.Body))
	if err != nil || (req.URL.Scheme != "http" && req.URL.Scheme != "https") || req.URL.Host == "" {
		// A parse error repeats the URL, which may hold a token; keep it out of Err.
		return Attempt{Err: endpoint.ErrInvalidURL, Verdict: Reject, Duration: time.Since(start)}
	}
	// A nil Idempotency-Key is not written to the wire but lets the transport resend the
	// request on a fresh connection when a pooled keep-alive connection turns out to have been
	// closed by the receiver; without it such races would cost a failed attempt and a retry
	// delay. Receivers deduplicate on webhook-id / id anyway (delivery is at least once).
	req.Header["Idempotency-Key"] = nil
	signer := signature.Signer{
		Credentials:     ep.Credentials,
		StandardSecrets: ep.StandardSecrets,
		ContentType:     s.contentType,
		UserAgent:       s.userAgent,
		Tokens:          &s.tokens,
	}
	if err := signer.Sign(req.Header, d.Body, d.EventID, s.now()); err != nil {
		return Attempt{Err: fmt.Errorf("%w: %w", ErrSigning, err), Verdict: Reject, Duration: time.Since(start)}
	}

	// Host slot first, then the replica-wide one: see connLimiter. Released after the drain.
	key := hostKeyOf(req.URL)
	slots, err := s.limit.acquire(ctx, key, s.timeout)
	if err != nil {
		return Attempt{Err: s.waitError(ctx, err), Verdict: Retry, Duration: time.Since(start), NotSent: ctx.Err() == nil}
	}
	defer s.limit.release(key, slots)
	actx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req = req.WithContext(actx)

	// The transport, not an http.Client, so redirects are never followed and no url.Error
	// carrying the URL wraps the errors.
	transport := s.transport
	if s.guarded != nil && s.guard.Applies(ep.Global) {
		transport = s.guarded
	}
	resp, err := transport.RoundTrip(req)
	if err != nil {
		verdict := Retry
		if errors.Is(err, egress.ErrForbidden) {
			verdict = Forbidden
		}
		return Attempt{Err: s.roundTripError(ctx, actx, err), Verdict: verdict, Duration: time.Since(start)}
	}
	a := Attempt{Status: resp.StatusCode, Verdict: statusVerdict(resp.StatusCode)}
	if a.Verdict == Retry {
		a.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), s.now())
	}
	s.drain(resp.Body)
	a.Duration = time.Since(start)
	return a
}

// waitError is Err for an attempt that got no slot: ctx ended (shutdown), or the attempt's
// timeout passed while every connection it may use was busy.
func (s *Sender) waitError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("delivery not started: %w", ctx.Err())
	}
	return fmt.Errorf("%w (%s): no connection to the receiver was free: %w", ErrTimeout, s.timeout, err)
}

func (s *Sender) roundTripError(ctx, actx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("delivery interrupted: %w", ctx.Err())
	case errors.Is(actx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%w (%s): %w", ErrTimeout, s.timeout, context.DeadlineExceeded)
	}
	return err
}

// drain reads what is left of the response, up to the limit, so a well-behaved receiver's
// connection goes back to the pool; a longer body is cut off by closing, which drops that
// connection rather than reading a receiver's arbitrary output.
func (s *Sender) drain(body io.ReadCloser) {
	bp := s.drainBufs.Get().(*[]byte)
	buf := *bp
	for left := MaxResponseBodyBytes; left > 0; {
		n, err := body.Read(buf[:min(left, len(buf))])
		left -= n
		if err != nil {
			break
		}
	}
	s.drainBufs.Put(bp)
	body.Close()
}

func statusVerdict(status int) Verdict {
	switch {
	case status >= 200 && status < 300:
		return Delivered
	case status == http.StatusGone:
		return Gone
	case status == http.StatusRequestTimeout, status == http.StatusTooEarly,
		status == http.StatusTooManyRequests, status >= 500 && status < 600:
		return Retry
	}
	// 1xx that reach here, 3xx (redirects are not followed), other 4xx and non-standard codes.
	return Reject
}

// maxRetryAfter keeps a huge Retry-After from overflowing time.Duration; the retry schedule
// caps it far lower anyway.
const maxRetryAfter = 100 * 365 * 24 * time.Hour

// parseRetryAfter reads Retry-After as delay-seconds or an HTTP-date (RFC 9110 10.2.3); an
// absent, malformed or past value gives 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	secs, err := strconv.ParseUint(v, 10, 64)
	switch {
	case err == nil && secs <= uint64(maxRetryAfter/time.Second):
		return time.Duration(secs) * time.Second
	case err == nil, errors.Is(err, strconv.ErrRange):
		return maxRetryAfter
	}
	if at, err := http.ParseTime(v); err == nil {
		return min(max(at.Sub(now), 0), maxRetryAfter)
	}
	return 0
}

// Timeout is the per-attempt timeout.
func (s *Sender) Timeout() time.Duration { return s.timeout }
