package natstest

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestServerStoresAndComesBackWithItsStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ns := NewServer(t, WithStoreDir(dir))
	port := ns.Addr().(*net.TCPAddr).Port
	nc, js := Connect(t, ns.ClientURL())
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "s.1", []byte("before")); err != nil {
		t.Fatal(err)
	}

	ns.Shutdown()
	ns.WaitForShutdown()
	NewServer(t, WithStoreDir(dir), WithPort(port))
	deadline := time.Now().Add(10 * time.Second)
	for !nc.IsConnected() {
		if time.Now().After(deadline) {
			t.Fatal("the connection did not come back to the server started again")
		}
		time.Sleep(20 * time.Millisecond)
	}
	st, err := js.Stream(ctx, "S")
	if err != nil {
		t.Fatalf("stream after the restart: %v", err)
	}
	m, err := st.GetMsg(ctx, 1)
	if err != nil || string(m.Data) != "before" {
		t.Fatalf("message after the restart: %v, %v; want \"before\"", m, err)
	}
}

func TestWithUserRefusesOthers(t *testing.T) {
	ns := NewServer(t, WithUser("u", "p"))
	nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(0))
	if err == nil {
		nc.Close()
		t.Fatal("connected without credentials")
	}
	if !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("without credentials: %v, want nats.ErrAuthorization", err)
	}
	_, js := Connect(t, ns.ClientURL(), nats.UserInfo("u", "p"))
	if _, err := js.AccountInfo(context.Background()); err != nil {
		t.Errorf("JetStream as the user: %v", err)
	}
}
