package rooms

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/internal/natstest"
)

// newBucket starts an embedded server and returns a connection to it with an empty rooms
// bucket.
func newBucket(t testing.TB) (jetstream.JetStream, jetstream.KeyValue) {
	t.Helper()
	_, js := natstest.Connect(t, natstest.NewServer(t).ClientURL())
	return js, createBucket(t, js, 1)
}

// createBucket creates the rooms bucket with the given replicas.
func createBucket(t testing.TB, js jetstream.JetStream, replicas int) jetstream.KeyValue {
	t.Helper()
	kv, err := js.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "ROOMS", Replicas: replicas})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// apiRequestsOf is how many JetStream API requests f made, beyond what counting them costs.
func apiRequestsOf(t testing.TB, js jetstream.JetStream, f func()) uint64 {
	t.Helper()
	count := func() uint64 {
		info, err := js.AccountInfo(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return info.API.Total
	}
	first := count()
	counting := count() - first // the AccountInfo request itself
	before := count()
	f()
	return count() - before - counting
}
