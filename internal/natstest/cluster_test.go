package natstest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestClusterKeepsR3StreamThroughKillRestartAndStepDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node JetStream cluster")
	}
	start := time.Now()
	c := NewCluster(t)
	t.Logf("cluster ready in %s", time.Since(start).Round(time.Millisecond))
	_, js := Connect(t, c.ClientURLs())
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Replicas: 3, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	publish := func(n int) {
		t.Helper()
		WaitFor(t, 30*time.Second, fmt.Sprintf("publish %d", n), func() bool {
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			_, err := js.Publish(pctx, "s.x", []byte(fmt.Sprint(n)))
			return err == nil
		})
	}
	publish(1)
	leader := c.WaitStreamReady(t, "", "S")
	if leader < 0 {
		t.Fatal("no stream leader")
	}

	c.Kill(leader)
	killed := time.Now()
	publish(2) // waits for the remaining two to elect a leader
	if l := c.StreamLeader("", "S"); l == leader || l < 0 {
		t.Fatalf("leader after the kill is node %d; killed %d", l, leader)
	}
	t.Logf("new leader in %s", time.Since(killed).Round(time.Millisecond))
	c.Restart(leader)
	c.WaitJetStreamReady(t)
	c.WaitStreamReady(t, "", "S")

	before := c.StreamLeader("", "S")
	if err := c.StepDown("S"); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 30*time.Second, "another leader after the step-down", func() bool {
		l := c.StreamLeader("", "S")
		return l >= 0 && l != before
	})
	publish(3)
	c.WaitStreamReady(t, "", "S")
	st, err := js.Stream(ctx, "S")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Errorf("stream holds %d messages, want 3", info.State.Msgs)
	}

	// Every node down at once, then back on its store.
	c.KillAll()
	restarted := time.Now()
	c.RestartAll()
	c.WaitJetStreamReady(t)
	c.WaitStreamReady(t, "", "S")
	t.Logf("whole cluster healthy again %s after the restart", time.Since(restarted).Round(time.Millisecond))
	publish(4)
	if info, err = st.Info(ctx); err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 4 {
		t.Errorf("stream holds %d messages after the whole cluster restarted, want 4", info.State.Msgs)
	}
}
