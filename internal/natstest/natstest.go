// Package natstest runs an embedded NATS server with JetStream for tests, like net/http/httptest
// does for HTTP.
package natstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Option changes how NewServer configures the server.
type Option func(*server.Options)

// WithStoreDir keeps JetStream's files in dir instead of a new t.TempDir(), so that a server
// started again on the same dir still has its streams and buckets.
func WithStoreDir(dir string) Option {
	return func(o *server.Options) { o.StoreDir = dir }
}

// WithPort listens on port instead of one the system picks, so that clients find a server
// started again where the last one was.
func WithPort(port int) Option {
	return func(o *server.Options) { o.Port = port }
}

// WithUser lets only clients that authenticate as user with password connect.
func WithUser(user, password string) Option {
	return func(o *server.Options) {
		o.Users = append(o.Users, &server.User{Username: user, Password: password})
	}
}

// NewServer starts a NATS server with JetStream on loopback, waits until it accepts clients,
// and shuts it down when the test ends. Its URL is ClientURL().
func NewServer(t testing.TB, opts ...Option) *server.Server {
	t.Helper()
	o := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, NoLog: true, NoSigs: true}
	for _, opt := range opts {
		opt(o)
	}
	if o.StoreDir == "" {
		o.StoreDir = t.TempDir()
	}
	ns, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	// Waiting for the shutdown keeps the store in use until the server has let go of it,
	// before t.TempDir's cleanup removes it or a test starts another server on it.
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	if !ns.ReadyForConnections(30 * time.Second) {
		t.Fatalf("NATS server on port %d did not start: %s", o.Port, portsHeld(o.Port))
	}
	return ns
}

// Connect connects to the server at url and returns the connection and JetStream on it; the
// connection closes when the test ends. It reconnects without limit every 100ms, so that it
// lives through a test that stops the server and starts it again; opts come after these
// defaults and so can change them.
func Connect(t testing.TB, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond)}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}
