package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomhook/roomhook/ingest"
	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/signature"
)

func TestIngestSettings(t *testing.T) {
	signing := signature.Credentials{APIKey: "sign-key", APISecret: "sign-secret"}
	tests := []struct {
		name       string
		c          Config
		wantListen string
		wantCreds  signature.Credentials
	}{
		{name: "cluster, unset: off", c: Config{NATSURL: "nats://n:4222", APIKey: "sign-key", APISecret: "sign-secret"}, wantListen: "", wantCreds: signing},
		{name: "cluster, set", c: Config{NATSURL: "nats://n:4222", IngestAddr: ":8090", APIKey: "sign-key", APISecret: "sign-secret", IngestAPIKey: "pnm", IngestAPISecret: "pnm-secret"},
			wantListen: ":8090", wantCreds: signature.Credentials{APIKey: "pnm", APISecret: "pnm-secret"}},
		{name: "embedded, unset: development default", c: Config{}, wantListen: DevIngestAddr, wantCreds: DevCredentials()},
		{name: "embedded, off", c: Config{IngestAddr: "off"}, wantListen: "", wantCreds: DevCredentials()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.IngestListen(); got != tt.wantListen {
				t.Errorf("IngestListen = %q, want %q", got, tt.wantListen)
			}
			if got := tt.c.IngestCredentials(); got != tt.wantCreds {
				t.Errorf("IngestCredentials = %+v, want %+v", got, tt.wantCreds)
			}
		})
	}
}

func TestIngestSettingsValidate(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{name: "bad address", env: map[string]string{"ROOMHOOK_INGEST_ADDR": "8090"}, want: "ROOMHOOK_INGEST_ADDR"},
		{name: "key without secret", env: map[string]string{"ROOMHOOK_INGEST_API_KEY": "pnm"}, want: "ROOMHOOK_INGEST_API_SECRET"},
		{name: "fine", env: map[string]string{"ROOMHOOK_INGEST_ADDR": "127.0.0.1:0", "ROOMHOOK_INGEST_API_KEY": "pnm", "ROOMHOOK_INGEST_API_SECRET": "s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, err := LoadConfig(ScopeServe)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("err = %v, want one naming %s", err, tt.want)
			}
		})
	}
}

// TestStartIngest: with ROOMHOOK_INGEST_ADDR set, the replica serves the ingest, which stores
// what plugNmeet sends, and stops serving when the replica stops.
func TestStartIngest(t *testing.T) {
	ns := natstest.NewServer(t)
	_, js := natstest.Connect(t, ns.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: schema.EventsStreamName("default"), Subjects: []string{schema.EventsSubjects("default")}, Duplicates: 2 * time.Minute,
	}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	c := Config{Region: "default", NATSURL: ns.ClientURL(), APIKey: "sign-key", APISecret: "sign-secret",
		IngestAddr: addr, IngestAPIKey: "pnm", IngestAPISecret: "pnm-secret", MaxEventBytes: 1 << 20}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if err := startIngest(runCtx, &wg, c, js, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}

	body := []byte(`{"event":"room_started","room":{"room_id":"r1"},"id":"EV_1","created_at":"1761815000"}`)
	token, err := signature.Token(c.IngestCredentials(), body, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+ingest.PathPlugNmeet, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}

	stop()
	wg.Wait()
	if conn, err := net.Dial("tcp", addr); err == nil {
		conn.Close()
		t.Fatal("the ingest still listens after the replica stopped")
	}
}
