package natstest

import (
	"strconv"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Restartable is an embedded JetStream server on a fixed loopback port with a fixed store, so
// that a test can stop it and start it again where its clients reconnect, with its streams and
// buckets. A server started again shuts down before whatever the test set up earlier is
// cleaned up.
type Restartable struct {
	t              testing.TB
	port           int
	storeDir       string
	user, password string
	ns             *server.Server
}

// NewRestartable starts a Restartable server; with a user it lets only that user connect.
func NewRestartable(t testing.TB, user, password string) *Restartable {
	t.Helper()
	s := &Restartable{t: t, port: FreePort(t), storeDir: t.TempDir(), user: user, password: password}
	s.Start()
	return s
}

// Start starts the server (again), on the same port and store.
func (s *Restartable) Start() {
	s.t.Helper()
	opts := []Option{WithPort(s.port), WithStoreDir(s.storeDir)}
	if s.user != "" {
		opts = append(opts, WithUser(s.user, s.password))
	}
	s.ns = NewServer(s.t, opts...)
}

// Stop shuts the server down and waits until it has let go of its store.
func (s *Restartable) Stop() {
	if s.ns != nil {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
		s.ns = nil
	}
}

// URL is the server's client URL, without credentials.
func (s *Restartable) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(s.port) }

// Port is the port the server listens on, every time it starts.
func (s *Restartable) Port() int { return s.port }

// JetStream connects as a media node would (with the server's user, if it has one) and returns
// JetStream on that connection, which lives through restarts.
func (s *Restartable) JetStream() jetstream.JetStream {
	s.t.Helper()
	var opts []nats.Option
	if s.user != "" {
		opts = append(opts, nats.UserInfo(s.user, s.password))
	}
	_, js := Connect(s.t, s.URL(), opts...)
	return js
}
