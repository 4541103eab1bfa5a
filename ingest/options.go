package ingest

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of the Handler's options.
const (
	// DefaultMaxEventBytes is the largest body accepted without WithMaxEventBytes,
	// ROOMHOOK_MAX_EVENT_BYTES's default.
	DefaultMaxEventBytes = 1 << 20
	// DefaultPublishTimeout bounds the wait for JetStream's acknowledgement. It
	// is well under plugNmeet's own retry pace, so a stalled JetStream answers
	// 503 before plugNmeet gives up on the attempt.
	DefaultPublishTimeout = 5 * time.Second
	// DefaultLeeway is the clock skew allowed on the token's exp, nbf and iat.
	// plugNmeet sets nbf = iat = now without backdating, so a roomhook whose
	// clock lags plugNmeet's by a few seconds would refuse every event with
	// less; LiveKit's Go receiver allows the same minute.
	DefaultLeeway = time.Minute
)

// Option configures a Handler.
type Option func(*Handler)

// WithLogger sets the logger for refused and failed requests. It never
// receives a token or a secret.
func WithLogger(l *slog.Logger) Option { return func(h *Handler) { h.log = l } }

// WithMaxEventBytes sets the largest body accepted; larger ones are answered
// 413. Zero or less keeps DefaultMaxEventBytes.
func WithMaxEventBytes(n int) Option {
	return func(h *Handler) {
		if n > 0 {
			h.maxBytes = n
		}
	}
}

// WithPublishTimeout sets how long the Handler waits for JetStream to store an
// event before answering 503. Zero or less keeps DefaultPublishTimeout.
func WithPublishTimeout(d time.Duration) Option {
	return func(h *Handler) {
		if d > 0 {
			h.publishTimeout = d
		}
	}
}

// WithLeeway sets the clock skew allowed on the token's times. Zero keeps
// DefaultLeeway; a negative value allows none.
func WithLeeway(d time.Duration) Option {
	return func(h *Handler) {
		if d != 0 {
			h.leeway = d
		}
	}
}

// WithRegisterer registers the Handler's metrics (roomhook_ingest_requests_total
// by outcome) with reg. Without it the metrics are kept but not exported.
func WithRegisterer(reg prometheus.Registerer) Option { return func(h *Handler) { h.reg = reg } }
