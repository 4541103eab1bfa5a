package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/ingest"
	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/signature"
)

// A plugNmeet server's webhook request, stored on its subject. In roomhook
// the dispatcher provisions the events stream; here the example makes it.
func ExampleNewHandler() {
	dir, err := os.MkdirTemp("", "roomhook-ingest-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		panic(err)
	}
	go ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		panic("nats-server did not start")
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: schema.EventsStreamName("default"), Subjects: []string{schema.EventsSubjects("default")},
		Duplicates: 2 * time.Minute,
	}); err != nil {
		panic(err)
	}

	creds := signature.Credentials{APIKey: "plugnmeet", APISecret: "the-secret-plugnmeet-signs-with-0123456789"}
	h, err := ingest.NewHandler(js, "default", creds)
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+ingest.PathPlugNmeet, h)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// What plugNmeet sends: the body, and its token in Authorization.
	body := []byte(`{"event":"room_started","room":{"sid":"RM_xK2pQ7vT9bLm","room_id":"weekly sync"},"id":"EV_t9Gd2KvR6mXy","created_at":"1761814950"}`)
	token, err := signature.Token(creds, body, time.Now())
	if err != nil {
		panic(err)
	}
	req, err := http.NewRequest(http.MethodPost, srv.URL+ingest.PathPlugNmeet, bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Authorization", token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	fmt.Print(string(answer))
	// Output:
	// 200
	// {"id":"EV_t9Gd2KvR6mXy","subject":"roomhook.events.default.weekly%20sync.room_started","stream":"ROOMHOOK_EVENTS_DEFAULT","seq":1}
}
