// Package servertest runs server.Serve inside a test the way `roomhook` runs it: a Config
// built from the defaults (Config), the health and metrics server on a real loopback port, and
// the wait and request helpers around it (Start). NATS comes from internal/natstest, webhook
// endpoints from internal/webhooktest.
package servertest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/internal/server"
	"github.com/roomhook/roomhook/schema/signature"
)

// The signing credentials of a Config.
const (
	APIKey    = "obs-api-key"
	APISecret = "obs-api-secret-7d1f0c9b2a8e4f3c6b5a"
)

// Credentials are APIKey and APISecret, for a webhooktest.Receiver that verifies what a Config
// signs.
func Credentials() signature.Credentials {
	return signature.Credentials{APIKey: APIKey, APISecret: APISecret}
}

// FastRetrySchedule is ROOMHOOK_RETRY_SCHEDULE for tests: retries within a second.
const FastRetrySchedule = "0s,50ms,100ms,200ms"

// Config is the default configuration, not read from the environment (so tests may run in
// parallel), with short retry steps and timeouts, debug logs in JSON, a free loopback HTTP
// port, Credentials, loopback allowed by the egress guard, and natsURL and the global webhook
// URLs given.
func Config(t testing.TB, natsURL string, webhookURLs ...string) server.Config {
	t.Helper()
	c, err := server.DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	c.NATSURL, c.DataDir = natsURL, t.TempDir()
	c.APIKey, c.APISecret = APIKey, APISecret
	c.WebhookURLs = webhookURLs
	c.RetrySchedule = FastRetrySchedule
	c.HTTPTimeout, c.Partitions, c.MaxInFlight, c.Takeover = 2*time.Second, 2, 16, 2*time.Second
	c.ShutdownGrace, c.ReplicaID = 15*time.Second, "obs-test"
	c.HTTPAddr = "127.0.0.1:" + strconv.Itoa(natstest.FreePort(t))
	c.LogFormat, c.LogLevel = "json", "debug"
	// Test receivers listen on loopback, which the egress guard refuses for per-room URLs
	// outside the embedded mode; a test of the guard sets AllowedTargets back to nil.
	c.AllowedTargets = []string{"127.0.0.0/8"}
	return c
}

// Replica is one server.Serve running in the test.
type Replica struct {
	base   string
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// Start runs server.Serve with c, its logger writing to logs, until the test ends (a Serve
// error then fails the test); it returns once /readyz answers 200.
func Start(t testing.TB, c server.Config, logs io.Writer) *Replica {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Replica{base: "http://" + c.HTTPAddr, cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- server.Serve(ctx, c, server.NewLogger(c, logs), "test") }()
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	p.WaitStatus(t, "/readyz", http.StatusOK, 20*time.Second)
	return p
}

// Base is the replica's HTTP address, http://host:port.
func (p *Replica) Base() string { return p.base }

// Stop ends Serve as SIGTERM does and returns what it returned; later calls return the same.
func (p *Replica) Stop() error {
	p.once.Do(func() {
		p.cancel()
		select {
		case p.err = <-p.done:
		case <-time.After(30 * time.Second):
			p.err = errors.New("serve did not return within 30s of its context ending")
		}
	})
	return p.err
}

// Get requests path and returns the status and body; status 0 and the error text when the
// request fails.
func (p *Replica) Get(t testing.TB, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(p.base + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err.Error()
	}
	return resp.StatusCode, string(body)
}

// WaitStatus waits until path answers status and returns the body; it fails the test at once
// if Serve returns.
func (p *Replica) WaitStatus(t testing.TB, path string, status int, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, body := p.Get(t, path)
		if got == status {
			return body
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("serve returned while waiting for %s to answer %d: %v", path, status, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s answered %d (%q), not %d, for %s", path, got, strings.TrimSpace(body), status, timeout)
		}
		time.Sleep(statusPoll)
	}
}

// statusPoll is how often WaitStatus asks again.
const statusPoll = 50 * time.Millisecond
