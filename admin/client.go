package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// Error codes the service answers with (in the Nats-Service-Error-Code header).
const (
	CodeBadRequest = "400"
	CodeNotFound   = "404"
	CodeInternal   = "500"
)

// Sentinel errors of the client; check them with errors.Is.
var (
	// ErrNoReplica: no replica of the region runs the admin service.
	ErrNoReplica = errors.New("no roomhook replica answered")
	// ErrTimeout: a replica took the request but did not answer in time.
	ErrTimeout = errors.New("no answer in time")
	// ErrBadRequest: the service refused the request as malformed (a bad filter, a missing id).
	ErrBadRequest = errors.New("bad request")
	// ErrNotFound: the endpoint or dead letter named does not exist.
	ErrNotFound = errors.New("not found")
	// ErrNotPermitted: the NATS server refused the request because the connection's user
	// may not publish on the operation's subject (a read-only operator asking for a purge).
	ErrNotPermitted = errors.New("not permitted")
)

// Error is an error answered by the service.
type Error struct {
	Code        string // CodeBadRequest, CodeNotFound or CodeInternal
	Description string
}

func (e *Error) Error() string { return e.Description }

// Is makes errors.Is(err, ErrBadRequest) and errors.Is(err, ErrNotFound) work on answers.
func (e *Error) Is(target error) bool {
	return (target == ErrBadRequest && e.Code == CodeBadRequest) || (target == ErrNotFound && e.Code == CodeNotFound)
}

// DefaultClientTimeout bounds a request whose context has no deadline.
const DefaultClientTimeout = 30 * time.Second

// Client calls the admin service of one region.
type Client struct {
	nc      *nats.Conn
	region  string
	timeout time.Duration
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithTimeout sets how long a request whose context has no deadline waits for its answer.
func WithTimeout(d time.Duration) ClientOption { return func(c *Client) { c.timeout = d } }

// NewClient returns a client for region's admin service over nc.
func NewClient(nc *nats.Conn, region string, opts ...ClientOption) *Client {
	c := &Client{nc: nc, region: region, timeout: DefaultClientTimeout}
	for _, o := range opts {
		o(c)
	}
	return c
}

// ListEndpoints lists every endpoint, global and per room.
func (c *Client) ListEndpoints(ctx context.Context) ([]Endpoint, error) {
	out, err := request[EndpointList](ctx, c, OpEndpointsList, nil)
	return out.Endpoints, err
}

// PauseEndpoint pauses the endpoint with id or URL ref: no deliveries until it is resumed; its
// backlog waits in JetStream.
func (c *Client) PauseEndpoint(ctx context.Context, ref string) (Endpoint, error) {
	return request[Endpoint](ctx, c, OpEndpointsPause, EndpointRequest{Endpoint: ref})
}

// ResumeEndpoint resumes a paused endpoint, or one disabled by 410 Gone.
func (c *Client) ResumeEndpoint(ctx context.Context, ref string) (Endpoint, error) {
	return request[Endpoint](ctx, c, OpEndpointsResume, EndpointRequest{Endpoint: ref})
}

// Status reports every endpoint's backlog and health and the dead letters by reason.
func (c *Client) Status(ctx context.Context) (Status, error) {
	return request[Status](ctx, c, OpStatus, nil)
}

// ListDeadLetters lists the dead letters f selects, oldest first.
func (c *Client) ListDeadLetters(ctx context.Context, f Filter) (DeadLetterList, error) {
	return request[DeadLetterList](ctx, c, OpDLQList, f)
}

// ShowDeadLetter returns one dead letter with its body.
func (c *Client) ShowDeadLetter(ctx context.Context, seq uint64) (DeadLetterDetail, error) {
	return request[DeadLetterDetail](ctx, c, OpDLQShow, ShowRequest{Seq: seq})
}

// ReplayDeadLetters queues the dead letters f selects for delivery again, in the order their
// events were stored, with their original ids. Each leaves the dead-letter stream once it is
// delivered; one that fails again is replaced by a new dead letter.
func (c *Client) ReplayDeadLetters(ctx context.Context, f Filter) (ReplayResult, error) {
	return request[ReplayResult](ctx, c, OpDLQReplay, f)
}

// PurgeDeadLetters deletes the dead letters r selects; with an empty filter, only when r.All.
func (c *Client) PurgeDeadLetters(ctx context.Context, r PurgeRequest) (PurgeResult, error) {
	return request[PurgeResult](ctx, c, OpDLQPurge, r)
}

// Resend queues the events still in the events stream that r selects for one endpoint again,
// in stream order per room, with their original ids and bodies (or, with r.DryRun, only
// counts them). r.Since is required. When r.Nonce is empty a random one is used; set one to be
// able to send the same request again (after ErrTimeout, say) without queueing an event twice.
func (c *Client) Resend(ctx context.Context, r ResendRequest) (ResendResult, error) {
	if r.Nonce == "" {
		r.Nonce = NewNonce()
	}
	return request[ResendResult](ctx, c, OpEventsResend, r)
}

// request calls op with req (nil sends no body) and decodes the answer as a Resp.
func request[Resp any](ctx context.Context, c *Client, op string, req any) (Resp, error) {
	var out Resp
	var data []byte
	if req != nil {
		var err error
		if data, err = json.Marshal(req); err != nil {
			return out, err
		}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	subject := Subject(c.region, op)
	msg, err := c.exchange(ctx, subject, data)
	switch {
	case errors.Is(err, ErrNotPermitted):
		return out, fmt.Errorf("%s: %w", subject, err)
	case errors.Is(err, nats.ErrNoResponders):
		return out, fmt.Errorf("%w on %s.>: is it running?", ErrNoReplica, SubjectPrefix(c.region))
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		return out, fmt.Errorf("%s: %w (the replica may still be working on it)", subject, ErrTimeout)
	case err != nil:
		return out, fmt.Errorf("%s: %w", subject, err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		return out, &Error{Code: code, Description: msg.Header.Get(micro.ErrorHeader)}
	}
	if err := json.Unmarshal(msg.Data, &out); err != nil {
		return out, fmt.Errorf("%s: unreadable answer: %w", subject, err)
	}
	return out, nil
}

// exchange sends one request and waits for its answer. Unlike nc.Request it learns at once
// when the server refuses the publish: a refused publish reaches no one, so the request would
// otherwise wait out its whole timeout. The server handles the request before the flush's
// ping, so its permissions error, if any, has arrived once the flush returns.
func (c *Client) exchange(ctx context.Context, subject string, data []byte) (*nats.Msg, error) {
	reply := c.nc.NewInbox()
	sub, err := c.nc.SubscribeSync(reply)
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	if err := c.nc.PublishRequest(subject, reply, data); err != nil {
		return nil, err
	}
	if err := c.nc.FlushWithContext(ctx); err != nil {
		return nil, err
	}
	if last := c.nc.LastError(); errors.Is(last, nats.ErrPermissionViolation) && strings.Contains(last.Error(), `"`+subject+`"`) {
		return nil, ErrNotPermitted
	}
	msg, err := sub.NextMsgWithContext(ctx)
	if err != nil {
		return nil, err
	}
	if len(msg.Data) == 0 && msg.Header.Get("Status") == "503" {
		return nil, nats.ErrNoResponders
	}
	return msg, nil
}
