//go:build unix

package rooms

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/schema/signature"
)

// BenchmarkRegisterRoom is what a room_created with a new per-room URL costs the partition
// that registers it, as the perroom scenario of `roomhook bench` does 10,000 times: the
// endpoint made in the endpoints bucket (which a replica's directory, watching, then reads
// back) and the room's record in the rooms bucket. It reports the CPU of the whole process
// (client, directory watch and embedded server) per room as cpu-µs/room, beside one bare
// key-value put for scale: the share of the perroom figure "B - A" that registering takes.
// The two writes are timed one after the other and at once.
func BenchmarkRegisterRoom(b *testing.B) {
	js, roomsKV := newBucket(b)
	ctx := context.Background()
	endpointsKV, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "ENDPOINTS"})
	if err != nil {
		b.Fatal(err)
	}
	dir := endpoint.NewDirectory(endpointsKV, signature.Credentials{}, nil, natstest.Logger())
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = dir.Watch(wctx)
	}()
	b.Cleanup(func() { stop(); wg.Wait() })
	<-dir.Ready()
	reg := New(roomsKV, time.Minute, 0)

	b.Run("one put", func(b *testing.B) {
		start, i := natstest.ProcessCPU(b), 0
		for b.Loop() {
			i++
			if _, err := roomsKV.Put(ctx, fmt.Sprintf("put-%d", i), []byte(`{"room":"r"}`)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64((natstest.ProcessCPU(b)-start).Microseconds())/float64(b.N), "cpu-µs/op")
	})
	// The partition writes them one after the other. At once is an alternative that was
	// measured and not kept (docs/architecture.md, "Alternatives we rejected"). ns/op is the
	// time the partition waits.
	for _, together := range []bool{false, true} {
		name := "endpoint then room"
		if together {
			name = "endpoint and room at once"
		}
		b.Run(name, func(b *testing.B) {
			start, i := natstest.ProcessCPU(b), 0
			for b.Loop() {
				i++
				room := fmt.Sprintf("room-%v-%d", together, i)
				url := "http://127.0.0.1:9/room/" + room + "?token=t"
				var recorded error
				var wg sync.WaitGroup
				record := func() { recorded = reg.Register(ctx, room, []string{url}, uint64(i)) }
				if together {
					wg.Add(1)
					go func() { defer wg.Done(); record() }()
				}
				_, err := dir.EnsurePerRoom(ctx, url, 0)
				if !together {
					record()
				}
				wg.Wait()
				if err != nil || recorded != nil {
					b.Fatal(err, recorded)
				}
			}
			b.ReportMetric(float64((natstest.ProcessCPU(b)-start).Microseconds())/float64(b.N), "cpu-µs/room")
		})
	}
}

// BenchmarkFirstLookup is what a room's first event costs its partition to learn the room's
// endpoints when the room registered none, the common case: a direct get of the bucket
// without Load, nothing but memory after it (a partition's owner loads its share when it
// starts the partition). ns/op is the partition's wait; cpu-µs/room the whole process's CPU.
func BenchmarkFirstLookup(b *testing.B) {
	_, kv := newBucket(b)
	ctx := context.Background()
	for _, loaded := range []bool{false, true} {
		name := "without Load"
		if loaded {
			name = "after Load"
		}
		b.Run(name, func(b *testing.B) {
			reg := New(kv, time.Minute, 0)
			if loaded {
				if err := reg.Load(ctx); err != nil {
					b.Fatal(err)
				}
			}
			start, i := natstest.ProcessCPU(b), 0
			for b.Loop() {
				i++
				ids, err := reg.Endpoints(ctx, fmt.Sprintf("room-%v-%d", loaded, i), time.Now())
				if err != nil || len(ids) != 0 {
					b.Fatal(ids, err)
				}
			}
			b.ReportMetric(float64((natstest.ProcessCPU(b)-start).Nanoseconds())/1e3/float64(b.N), "cpu-µs/room")
		})
	}
}

// BenchmarkLoad is what Load adds to the start of a partition with 10,000 registered rooms:
// one read of its share of the bucket (ns/op), before the partition takes its first event.
func BenchmarkLoad(b *testing.B) {
	_, kv := newBucket(b)
	ctx := context.Background()
	const rooms = 10_000
	owner := New(kv, time.Minute, 0)
	for i := range rooms {
		room := fmt.Sprintf("room-%05d", i)
		if err := owner.Register(ctx, room, []string{"https://lms.example/" + room}, uint64(i+1)); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		reg := New(kv, time.Minute, 0)
		if err := reg.Load(ctx); err != nil {
			b.Fatal(err)
		}
		if len(reg.cache) != rooms || !reg.complete {
			b.Fatalf("loaded %d rooms (complete %v), want %d", len(reg.cache), reg.complete, rooms)
		}
	}
}
