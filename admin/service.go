package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/subscriber"
)

// Config is what the admin service of one replica needs.
type Config struct {
	Region     string
	Partitions int    // dispatcher.Config.Partitions: replays are queued on the room's partition
	ReplicaID  string // reported in Status and in the service metadata
	Version    string // roomhook's version; a version that is not SemVer is reported as 0.0.0-dev
	Logger     *slog.Logger
	// RequestTimeout bounds the work of one request (a replay or purge of a large selection
	// included); 0 means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// Delivers reports whether the replicas deliver to an endpoint (the dispatcher's
	// Directory knows it). A replay or resend to an endpoint they do not deliver to, such as a
	// global endpoint since removed from the configuration, would only be dead-lettered again
	// (gone) by the drainer of its spill queue, so it is skipped. nil: every endpoint in the
	// endpoints bucket counts as delivered to.
	Delivers func(endpointID string) bool
	// EventFilter returns the event filter the replicas apply to an endpoint (a global
	// endpoint's comes from the configuration, which only the replicas hold), so that a
	// resend queues only the events the endpoint subscribes to. nil, or false for an
	// endpoint: none is known here; the replicas still skip what an endpoint's filter refuses
	// when they deliver, but the resend's Matched count then includes those events.
	EventFilter func(endpointID string) (endpoint.EventFilter, bool)
	// MaxEventBytes is the replicas' ROOMHOOK_MAX_EVENT_BYTES: they dead-letter a larger event
	// as invalid, so a resend skips it too (counted Invalid) rather than deliver what the
	// replicas refused. 0: no limit but the NATS server's max payload.
	MaxEventBytes int
}

// DefaultRequestTimeout bounds one request when Config.RequestTimeout is 0.
const DefaultRequestTimeout = 2 * time.Minute

// queueGroup makes one replica of a region answer each request.
const queueGroup = "roomhook-admin"

var semVer = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$`)

// Service is one replica's admin service.
type Service struct {
	svc     micro.Service
	js      jetstream.JetStream
	cfg     Config
	names   subscriber.Names
	log     *slog.Logger
	timeout time.Duration

	// mu guards stopping; a handler joins handlers only while stopping is false, so that
	// every Add comes before the Wait in stop.
	mu       sync.Mutex
	stopping bool
	handlers sync.WaitGroup
	quit     context.CancelFunc // Stop's way to end the wait in Start's goroutine
	done     chan struct{}      // closed when the service is stopped and no handler runs
	stopErr  error              // svc.Stop's, read after done
}

// Start registers the admin service on nc. Requests are answered until ctx ends or Stop is
// called; each one runs with a context derived from ctx. The caller owns the service: it calls
// Stop (or Wait, once ctx has ended) before closing nc, so that no handler runs after.
func Start(ctx context.Context, nc *nats.Conn, cfg Config) (*Service, error) {
	if err := schema.ValidateRegion(cfg.Region); err != nil {
		return nil, fmt.Errorf("admin service: %w", err)
	}
	if cfg.Partitions < 1 {
		return nil, fmt.Errorf("admin service: partitions must be at least 1, got %d", cfg.Partitions)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("admin service: %w", err)
	}
	s := &Service{js: js, cfg: cfg, names: subscriber.Names{Region: cfg.Region}, log: cfg.Logger, timeout: cfg.RequestTimeout,
		done: make(chan struct{})}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.timeout <= 0 {
		s.timeout = DefaultRequestTimeout
	}
	version := cfg.Version
	if !semVer.MatchString(version) {
		version = "0.0.0-dev"
	}
	s.svc, err = micro.AddService(nc, micro.Config{
		Name:        ServiceName,
		Version:     version,
		Description: "roomhook operator API for region " + cfg.Region,
		Metadata:    map[string]string{"region": cfg.Region, "replica": cfg.ReplicaID, "roomhook_version": cfg.Version},
		QueueGroup:  queueGroup,
	})
	if err != nil {
		return nil, fmt.Errorf("admin service: %w", err)
	}
	// Two groups, so that NATS permissions on roomhook.admin.<region>.read.> alone make a
	// read-only operator.
	groups := map[string]micro.Group{
		AccessRead:  s.svc.AddGroup(SubjectPrefix(cfg.Region) + "." + AccessRead),
		AccessWrite: s.svc.AddGroup(SubjectPrefix(cfg.Region) + "." + AccessWrite),
	}
	handlers := []struct {
		op      string
		handler func(context.Context, micro.Request) (any, error)
	}{
		{OpEndpointsList, s.endpointsList},
		{OpEndpointsPause, s.endpointsPause},
		{OpEndpointsResume, s.endpointsResume},
		{OpStatus, s.status},
		{OpDLQList, s.dlqList},
		{OpDLQShow, s.dlqShow},
		{OpDLQReplay, s.dlqReplay},
		{OpDLQPurge, s.dlqPurge},
		{OpEventsResend, s.eventsResend},
	}
	for _, h := range handlers {
		name := endpointName(h.op)
		group := groups[AccessRead]
		if IsWrite(h.op) {
			group = groups[AccessWrite]
		}
		if err := group.AddEndpoint(name, s.handle(ctx, h.op, h.handler), micro.WithEndpointSubject(h.op)); err != nil {
			_ = s.svc.Stop()
			return nil, fmt.Errorf("admin service: endpoint %s: %w", h.op, err)
		}
	}
	// Once Start returns, the server knows the subscriptions, so a request cannot miss them.
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		_ = s.svc.Stop()
		return nil, fmt.Errorf("admin service: %w", err)
	}
	// Handlers keep ctx: Stop lets those in flight finish rather than cancelling them.
	stopCtx, quit := context.WithCancel(ctx)
	s.quit = quit
	go func() { // joined by Stop and Wait
		defer close(s.done)
		<-stopCtx.Done()
		s.stop()
	}()
	return s, nil
}

// Stop stops answering and returns once the requests being handled have finished.
func (s *Service) Stop() error {
	s.quit()
	return s.Wait()
}

// Wait returns once the service has stopped (ctx ended or Stop was called) and the requests
// being handled have finished.
func (s *Service) Wait() error {
	<-s.done
	return s.stopErr
}

// stop drains the subscriptions and waits for the handlers. A request the drain still hands
// over is answered with an error rather than handled.
func (s *Service) stop() {
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	s.stopErr = s.svc.Stop()
	s.handlers.Wait()
}

// endpointName turns "dlq.list" into a micro endpoint name, "dlq_list".
func endpointName(op string) string {
	b := []byte(op)
	for i, c := range b {
		if c == '.' {
			b[i] = '_'
		}
	}
	return string(b)
}

// Kinds of errors a handler answers with their own code; anything else is an internal error.
var (
	errBadRequest = errors.New("bad request")
	errNotFound   = errors.New("not found")
)

// requestError is an error of a kind whose text is only its message, so that the operator
// reads "no dead letter 3 (…)" rather than "not found: no dead letter 3 (…)".
type requestError struct {
	kind error
	msg  string
}

func (e *requestError) Error() string { return e.msg }
func (e *requestError) Unwrap() error { return e.kind }

func badRequest(format string, args ...any) error {
	return &requestError{kind: errBadRequest, msg: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &requestError{kind: errNotFound, msg: fmt.Sprintf(format, args...)}
}

func (s *Service) handle(base context.Context, op string, h func(context.Context, micro.Request) (any, error)) micro.Handler {
	return micro.HandlerFunc(func(req micro.Request) {
		s.mu.Lock()
		if s.stopping {
			s.mu.Unlock()
			_ = req.Error(CodeInternal, "the replica's admin service is stopping", nil)
			return
		}
		s.handlers.Add(1)
		s.mu.Unlock()
		defer s.handlers.Done()
		ctx, cancel := context.WithTimeout(base, s.timeout)
		defer cancel()
		resp, err := h(ctx, req)
		if err != nil {
			code := CodeInternal
			switch {
			case errors.Is(err, errBadRequest):
				code = CodeBadRequest
			case errors.Is(err, errNotFound):
				code = CodeNotFound
			default:
				s.log.Warn("admin request failed", "op", op, "error", err)
			}
			_ = req.Error(code, err.Error(), nil)
			return
		}
		if err := req.RespondJSON(resp); err != nil {
			s.log.Warn("admin response not sent", "op", op, "error", err)
		}
	})
}

// decode reads a request body; an empty body is the zero request.
func decode(req micro.Request, v any) error {
	if len(req.Data()) == 0 {
		return nil
	}
	if err := json.Unmarshal(req.Data(), v); err != nil {
		return badRequest("request is not the JSON expected: %v", err)
	}
	return nil
}

func (s *Service) endpointsBucket(ctx context.Context) (jetstream.KeyValue, error) {
	kv, err := s.js.KeyValue(ctx, s.names.EndpointsBucket())
	if err != nil {
		return nil, fmt.Errorf("endpoints bucket %s: %w", s.names.EndpointsBucket(), err)
	}
	return kv, nil
}

func (s *Service) dlqStream(ctx context.Context) (jetstream.Stream, error) {
	st, err := s.js.Stream(ctx, s.names.DLQStream())
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream %s: %w", s.names.DLQStream(), err)
	}
	return st, nil
}
