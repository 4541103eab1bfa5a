package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestSuperClusterKeepsMetaQuorumWithTieBreakerAndRestartsARegion(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a JetStream super-cluster")
	}
	start := time.Now()
	sc := NewSuperCluster(t, LightRegionsWithTieBreaker)
	t.Logf("super-cluster ready in %s, meta leader %s", time.Since(start).Round(time.Millisecond), sc.MetaLeader())

	// A stream placed in eu, created and written through us.
	_, jsUS := Connect(t, sc.URLs("us"))
	ctx := context.Background()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := jsUS.CreateStream(cctx, jetstream.StreamConfig{Name: "EU", Subjects: []string{"eu.>"},
		Storage: jetstream.FileStorage, Placement: &jetstream.Placement{Cluster: "eu"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := jsUS.Publish(cctx, "eu.x", []byte("1")); err != nil {
		t.Fatal(err)
	}
	sc.WaitStreamReady(t, "eu", "EU")

	stopped := time.Now()
	sc.StopCluster("eu")
	sc.WaitJetStreamReady(t) // us and tie: 2 of 3 meta peers
	t.Logf("meta leader %s %s after eu stopped", sc.MetaLeader(), time.Since(stopped).Round(time.Millisecond))
	// The meta group still creates streams in the clusters left.
	if _, err := jsUS.CreateStream(cctx, jetstream.StreamConfig{Name: "US", Subjects: []string{"us.>"},
		Storage: jetstream.FileStorage, Placement: &jetstream.Placement{Cluster: "us"}}); err != nil {
		t.Fatalf("creating a stream in us while eu is down: %v", err)
	}

	sc.RestartCluster("eu")
	sc.WaitJetStreamReady(t)
	sc.WaitStreamReady(t, "eu", "EU")
	si, err := sc.StreamInfo("eu", "EU")
	if err != nil {
		t.Fatal(err)
	}
	if si.State.Msgs != 1 {
		t.Errorf("EU holds %d messages after its cluster restarted, want 1", si.State.Msgs)
	}
}
