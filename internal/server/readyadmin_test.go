package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/roomhook/roomhook/admin"
	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/internal/server"
	"github.com/roomhook/roomhook/internal/server/servertest"
)

// TestReadyReplicaAnswersAdmin: the moment /readyz first says 200, the replica's admin service
// answers; `roomhook status` run by a deploy script right after a rollout must not find no
// replica. (The admin service used to start up to 100 ms after the replica was ready; CI caught
// it once.) /readyz is polled every millisecond, so that the first 200 is seen at once.
func TestReadyReplicaAnswersAdmin(t *testing.T) {
	t.Parallel()
	for i := range 5 {
		ns := natstest.NewRestartable(t, "", "")
		rc := newReceiver(t, nil)
		c := servertest.Config(t, ns.URL(), rc.URL())
		nc, _ := natstest.Connect(t, ns.URL())
		client := admin.NewClient(nc, c.Region, admin.WithTimeout(5*time.Second))

		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- server.Serve(ctx, c, server.NewLogger(c, &lockedBuffer{}), "test") }()
		ready := waitFirstReady(t, "http://"+c.HTTPAddr+"/readyz", done)
		var err error
		if ready {
			_, err = client.Status(context.Background())
		}
		cancel()
		if serr := <-done; serr != nil {
			t.Fatalf("start %d: serve: %v", i+1, serr)
		}
		if err != nil {
			t.Fatalf("start %d: the first admin request after /readyz said 200: %v", i+1, err)
		}
	}
}

// waitFirstReady polls url every millisecond until it answers 200 (true), or serve ends or 20 s
// pass (the test fails).
func waitFirstReady(t *testing.T, url string, done chan error) bool {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("serve returned before it was ready: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	t.Fatal("/readyz did not answer 200 within 20s")
	return false
}
