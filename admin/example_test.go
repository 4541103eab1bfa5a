package admin_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/admin"
	"github.com/roomhook/roomhook/dispatcher"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/schema/signature"
	"github.com/roomhook/roomhook/sender"
)

// A replica runs the dispatcher and, once it is running, the admin service on the same
// connection; an operator's program asks it with a Client.
func Example() {
	dir, _ := os.MkdirTemp("", "roomhook-admin")
	defer os.RemoveAll(dir)
	ns, _ := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	go ns.Start()
	ns.ReadyForConnections(5 * time.Second)
	defer ns.Shutdown()

	// The replica.
	nc, _ := nats.Connect(ns.ClientURL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	creds := signature.Credentials{APIKey: "key", APISecret: "secret"}
	url := "https://lms.example.com/roomhook?token=abc"
	d, err := dispatcher.New(js, dispatcher.Config{
		Region: "default", Partitions: 4, MaxInFlight: 16, Takeover: 2 * time.Second, MaxEventBytes: 1 << 20,
		RoomGrace: time.Minute, RoomTTL: time.Hour, StreamReplicas: 1,
		Retry: sender.RetrySchedule{Steps: []time.Duration{0}}, Credentials: creds, ReplicaID: "replica-1",
		Endpoints: []endpoint.Endpoint{{ID: endpoint.ID(url), URL: url, Credentials: creds, Global: true}},
	}, dispatcher.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		fmt.Println(err)
		return
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan struct{})
	defer func() { stop(); <-ran }() // the dispatcher stops before the server and the store go
	go func() {
		defer close(ran)
		d.Run(ctx)
	}()
	for !d.Ready() {
		time.Sleep(10 * time.Millisecond)
	}
	svc, err := admin.Start(ctx, nc, admin.Config{Region: "default", Partitions: 4, ReplicaID: "replica-1", Logger: quiet})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer svc.Stop() // before nc closes: no handler runs after

	// The operator, on a connection of its own.
	onc, _ := nats.Connect(ns.ClientURL())
	defer onc.Close()
	c := admin.NewClient(onc, "default")
	ep, err := c.PauseEndpoint(ctx, url)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ep.ID, ep.URL, ep.State())
	_, err = c.ShowDeadLetter(ctx, 1)
	fmt.Println(errors.Is(err, admin.ErrNotFound), err)
	_, err = admin.NewClient(onc, "eu").Status(ctx)
	fmt.Println(errors.Is(err, admin.ErrNoReplica), err)
	// Output:
	// c955b26afc659a7c https://lms.example.com/roomhook paused
	// true no dead letter 1 (replayed and delivered, purged, or expired)
	// true no roomhook replica answered on roomhook.admin.eu.>: is it running?
}

func ExampleRedactURL() {
	fmt.Println(admin.RedactURL("https://user:pw@lms.example.com/hook?token=abc&tenant=7#top"))
	// Output: https://lms.example.com/hook
}
