package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/roomhook/roomhook/dispatcher"
	"github.com/roomhook/roomhook/schema/signature"
)

// newLogger builds the process logger from ROOMHOOK_LOG_FORMAT and ROOMHOOK_LOG_LEVEL.
func newLogger(c Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// connectNATS connects with whichever credentials are configured and reconnects forever:
// a NATS outage pauses delivery, it does not end the process.
func connectNATS(c Config, url string, log *slog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("roomhook"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: our own Close
				log.Warn("disconnected from NATS", "error", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("reconnected to NATS", "server", nc.ConnectedUrlRedacted()) }),
	}
	if c.NATSCredsFile != "" {
		opts = append(opts, nats.UserCredentials(c.NATSCredsFile))
	}
	if c.NATSNKeyFile != "" {
		o, err := nats.NkeyOptionFromSeed(c.NATSNKeyFile)
		if err != nil {
			return nil, fmt.Errorf("ROOMHOOK_NATS_NKEY_FILE: %w", err)
		}
		opts = append(opts, o)
	}
	if c.NATSUser != "" {
		opts = append(opts, nats.UserInfo(c.NATSUser, c.NATSPassword))
	}
	if c.NATSTLSCA != "" {
		opts = append(opts, nats.RootCAs(c.NATSTLSCA))
	}
	if c.NATSTLSCert != "" {
		opts = append(opts, nats.ClientCert(c.NATSTLSCert, c.NATSTLSKey))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	return nc, nil
}

func defaultReplicaID() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "roomhook"
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return host + "-" + hex.EncodeToString(b)
}

// serve runs the dispatcher until ctx ends, then shuts down within ROOMHOOK_SHUTDOWN_GRACE.
func serve(ctx context.Context, c Config, log *slog.Logger) error {
	creds, dev := c.credentials()
	natsURL := c.NATSURL
	if natsURL == "" {
		ns, err := startEmbeddedNATS(c.EmbeddedListen, c.DataDir)
		if err != nil {
			return err
		}
		defer ns.Shutdown()
		natsURL = ns.ClientURL()
		log.Warn("using an embedded NATS server: for development only; set ROOMHOOK_NATS_URL in production",
			"listen", c.EmbeddedListen, "data_dir", c.DataDir)
	}
	if dev {
		log.Warn("!!! NO ROOMHOOK_API_KEY / ROOMHOOK_API_SECRET SET: webhooks are signed with DEVELOPMENT credentials; receivers must not trust them !!!",
			"api_key", creds.APIKey)
	}
	nc, err := connectNATS(c, natsURL, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	endpoints, err := globalEndpoints(c, creds)
	if err != nil {
		return err
	}
	replicaID := c.ReplicaID
	if replicaID == "" {
		replicaID = defaultReplicaID()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := dispatcher.NewMetrics(reg)
	sender := dispatcher.NewSender(dispatcher.WithTimeout(c.HTTPTimeout), dispatcher.WithContentType(c.ContentType),
		dispatcher.WithUserAgent("roomhook/"+version))
	d, err := dispatcher.New(js, c.dispatcherConfig(replicaID, endpoints),
		dispatcher.WithLogger(log), dispatcher.WithMetrics(metrics), dispatcher.WithSender(sender))
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", c.HTTPAddr)
	if err != nil {
		return fmt.Errorf("ROOMHOOK_HTTP_ADDR: %w", err)
	}
	srv := &http.Server{Handler: healthHandler(newReadiness(nc, js, d.Names(), d.Ready), reg), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("health server stopped", "error", err)
		}
	}()
	defer srv.Close()

	log.Info("roomhook starting", "version", version, "region", c.Region, "http", ln.Addr().String(), "replica", replicaID)
	if len(endpoints) == 0 {
		log.Info("no ROOMHOOK_WEBHOOK_URLS set: events go only to per-room URLs given with room_created; " +
			"to see webhooks arrive, run `go run . receive --addr 127.0.0.1:9000` and restart with ROOMHOOK_WEBHOOK_URLS=http://127.0.0.1:9000/webhook")
	}
	for _, ep := range endpoints {
		log.Info("webhooks go to", "endpoint", ep.ID, "url_host", dispatcher.URLHost(ep.URL))
	}
	log.Info("publish events as protobuf roomhook.v1.Event on roomhook.events."+c.Region+".<room>.<event>; "+
		"for sample traffic run `go run . publish --nats "+redactNATSURL(natsURL)+" --rooms 3`", "nats", redactNATSURL(natsURL))

	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	go serveAdmin(ctx, nc, c, replicaID, d.Ready, d.Directory, log)
	select {
	case err := <-done:
		if ctx.Err() == nil {
			return err
		}
		log.Info("shutdown complete")
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: handing back in-flight deliveries", "grace", c.ShutdownGrace)
	select {
	case err := <-done:
		log.Info("shutdown complete")
		return err
	case <-time.After(c.ShutdownGrace):
		return fmt.Errorf("shutdown took longer than ROOMHOOK_SHUTDOWN_GRACE (%s); unsettled deliveries will be redelivered", c.ShutdownGrace)
	}
}

// redactNATSURL is what logs show of ROOMHOOK_NATS_URL, a comma-separated list of server
// URLs: user info is replaced whole, because nats://<token>@host carries a token where a user
// name would be.
func redactNATSURL(list string) string {
	parts := strings.Split(list, ",")
	for i, raw := range parts {
		u, err := url.Parse(strings.TrimSpace(raw))
		switch {
		case err != nil:
			parts[i] = "(unparsable URL)" // url.Error repeats the raw text
		case u.User != nil:
			u.User = url.User("redacted")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

// globalEndpoints builds the endpoints every event goes to: the enabled entries of
// ROOMHOOK_ENDPOINTS_FILE, then the URLs of ROOMHOOK_WEBHOOK_URLS the file does not list (for a
// URL in both, the file's entry, with its filter and credentials, wins).
func globalEndpoints(c Config, creds signature.Credentials) ([]dispatcher.Endpoint, error) {
	urls, err := dispatcher.ParseWebhookURLs(c.WebhookURLs)
	if err != nil {
		return nil, fmt.Errorf("ROOMHOOK_WEBHOOK_URLS: %w", err)
	}
	var out []dispatcher.Endpoint
	if c.EndpointsFile != "" {
		if out, err = dispatcher.LoadEndpointsFile(c.EndpointsFile, creds); err != nil {
			return nil, fmt.Errorf("ROOMHOOK_ENDPOINTS_FILE: %w", err)
		}
	}
	inFile := make(map[string]bool, len(out))
	for _, ep := range out {
		inFile[ep.ID] = true
	}
	for _, u := range urls {
		if id := dispatcher.EndpointID(u); !inFile[id] {
			out = append(out, dispatcher.Endpoint{ID: id, URL: u, Credentials: creds, Global: true})
		}
	}
	return out, nil
}
