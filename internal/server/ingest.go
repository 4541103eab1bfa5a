package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomhook/roomhook/ingest"
	"github.com/roomhook/roomhook/schema/signature"
)

// DevIngestAddr is where the embedded development mode serves the ingest when
// ROOMHOOK_INGEST_ADDR is empty: loopback only, like the embedded NATS server.
const DevIngestAddr = "127.0.0.1:8090"

// IngestListen is the address POST /ingest/plugnmeet is served on, "" when it is off:
// ROOMHOOK_INGEST_ADDR; when that is empty, DevIngestAddr in the embedded development mode
// (ROOMHOOK_NATS_URL empty) and off otherwise; "off" turns it off in both.
func (c Config) IngestListen() string {
	switch {
	case c.IngestAddr == "off":
		return ""
	case c.IngestAddr != "":
		return c.IngestAddr
	case c.NATSURL == "":
		return DevIngestAddr
	}
	return ""
}

// IngestCredentials is the pair the ingest verifies plugNmeet's tokens with:
// ROOMHOOK_INGEST_API_KEY/SECRET, else the signing pair (Credentials).
func (c Config) IngestCredentials() signature.Credentials {
	if c.IngestAPIKey != "" || c.IngestAPISecret != "" {
		return signature.Credentials{APIKey: c.IngestAPIKey, APISecret: c.IngestAPISecret}
	}
	creds, _ := c.Credentials()
	return creds
}

// ingestShutdownWait bounds how long requests in progress may finish at shutdown: a little
// over the ingest's publish timeout, so each gets JetStream's answer or its 503.
const ingestShutdownWait = ingest.DefaultPublishTimeout + time.Second

// startIngest serves the ingest on c.IngestListen() until ctx ends, when it is on; wg holds
// its goroutines. It returns once the listener is bound, so a bad address fails the start.
func startIngest(ctx context.Context, wg *sync.WaitGroup, c Config, js jetstream.JetStream, reg prometheus.Registerer, log *slog.Logger) error {
	addr := c.IngestListen()
	if addr == "" {
		return nil
	}
	h, err := ingest.NewHandler(js, c.Region, c.IngestCredentials(),
		ingest.WithLogger(log), ingest.WithMaxEventBytes(c.MaxEventBytes), ingest.WithRegisterer(reg))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("ROOMHOOK_INGEST_ADDR: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(ingest.PathPlugNmeet, h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second}
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("ingest server stopped", "error", err)
		}
	})
	wg.Go(func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ingestShutdownWait)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx) // past the wait, Close below cuts what is left; plugNmeet retries it
		_ = srv.Close()
	})
	url := "http://" + ln.Addr().String() + ingest.PathPlugNmeet
	creds := c.IngestCredentials()
	if c.IngestAddr == "" {
		log.Info("ingest on (embedded development mode; ROOMHOOK_INGEST_ADDR=off turns it off): in plugNmeet's config.yaml set "+
			"client.webhook_conf.enable: true and client.webhook_conf.url: "+url+", and plugNmeet's API key/secret to roomhook's", "url", url, "api_key", creds.APIKey)
	} else {
		log.Info("ingest on: point plugNmeet's webhook URL (config.yaml client.webhook_conf.url) at "+url, "url", url, "api_key", creds.APIKey)
	}
	return nil
}
