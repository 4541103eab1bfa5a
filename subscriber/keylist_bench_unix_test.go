//go:build unix

package subscriber

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/internal/natstest"
)

// BenchmarkListKeys compares KeyValue.Keys (an ordered consumer per listing) with KeyList (one
// direct get) on a 3-node cluster, 3 keys, as the members listing runs: CPU per listing
// (client and the three servers share this process) is reported as cpu-ns/op.
func BenchmarkListKeys(b *testing.B) {
	c := natstest.NewCluster(b)
	c.WaitJetStreamReady(b)
	ctx := context.Background()
	nc, js := natstest.Connect(b, c.ClientURLs())
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "BENCH", Replicas: 3})
	if err != nil {
		b.Fatal(err)
	}
	for _, k := range []string{"r-a", "r-b", "r-c"} {
		if _, err := kv.PutString(ctx, k, "beat"); err != nil {
			b.Fatal(err)
		}
	}
	l := newKeyList(b, nc, "BENCH")
	for _, bc := range []struct {
		name string
		list func(context.Context) ([]string, error)
	}{
		{"KeyValue.Keys", func(ctx context.Context) ([]string, error) { return kv.Keys(ctx) }},
		{"KeyList", l.LiveKeys},
	} {
		b.Run(bc.name, func(b *testing.B) {
			start := natstest.ProcessCPU(b)
			for b.Loop() {
				keys, err := bc.list(ctx)
				if err != nil || len(keys) != 3 {
					b.Fatal(keys, err)
				}
			}
			b.ReportMetric(float64(natstest.ProcessCPU(b)-start)/float64(b.N), "cpu-ns/op")
		})
	}
}
