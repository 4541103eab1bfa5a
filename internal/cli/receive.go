package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/roomhook/roomhook/internal/server"
	"github.com/roomhook/roomhook/receiver"
	"github.com/roomhook/roomhook/schema/signature"
)

// Receive is `roomhook receive`: a webhook endpoint that verifies, prints and counts.
func Receive(ctx context.Context, args []string) error {
	c, err := server.LoadConfig(server.ScopeClient)
	if err != nil {
		return fmt.Errorf("receive: %w", err)
	}
	fs := flag.NewFlagSet("receive", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: roomhook receive [flags]\n\nReceives webhooks on any path, verifies each (JWT and body hash; Standard Webhooks with --whsec),\nprints one line per event (time room event id path) and counts duplicates and out-of-order events.\n\nFlags:")
		fs.PrintDefaults()
	}
	addr := fs.String("addr", "127.0.0.1:9000", "listen address")
	apiKey := fs.String("api-key", c.APIKey, "API key the tokens are issued by (default $ROOMHOOK_API_KEY, else the development key)")
	apiSecret := fs.String("api-secret", "", "API secret that signs the tokens (default $ROOMHOOK_API_SECRET, else the development secret)")
	var whsec repeatedFlag
	fs.Var(&whsec, "whsec", "Standard Webhooks secret (whsec_...) to require a valid signature with (repeatable, any one matches)")
	latency := fs.Duration("latency", 0, "answer every request this much later, e.g. 20ms")
	failRate := fs.Float64("fail-rate", 0, "fraction of requests answered with --status instead of 200, e.g. 0.1")
	status := fs.Int("status", http.StatusServiceUnavailable, "status of failed requests; given without --fail-rate, every request gets it")
	quiet := fs.Bool("quiet", false, "print only a summary line every --every instead of every event")
	every := fs.Duration("every", 5*time.Second, "summary interval with --quiet")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["status"] && !set["fail-rate"] {
		*failRate = 1
	}
	if *apiSecret == "" {
		// Read here rather than as the flag's default so that -h never prints it.
		*apiSecret = c.APISecret
	}
	dev := *apiKey == "" && *apiSecret == ""
	if dev {
		dc := server.DevCredentials()
		*apiKey, *apiSecret = dc.APIKey, dc.APISecret
	}
	if *every <= 0 {
		return errors.New("receive: --every must be positive")
	}

	var log io.Writer = os.Stdout
	if *quiet {
		log = nil
	}
	rc, err := receiver.New(receiver.Options{
		Credentials:     signature.Credentials{APIKey: *apiKey, APISecret: *apiSecret},
		StandardSecrets: whsec, Latency: *latency, FailRate: *failRate, FailStatus: *status, Log: log,
	})
	if err != nil {
		return fmt.Errorf("receive: %w", err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("receive: %w", err)
	}
	srv := &http.Server{Handler: rc, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }() // joined by both ways out of the loop below

	creds := "API key " + *apiKey
	if dev {
		creds += " (development credentials)"
	}
	if len(whsec) > 0 {
		creds += fmt.Sprintf(", %d Standard Webhooks secret(s)", len(whsec))
	}
	fmt.Fprintf(os.Stderr, "receiving webhooks at http://%s/<any path>, verifying with %s\n", ln.Addr(), creds)
	if *latency > 0 || *failRate > 0 {
		fmt.Fprintf(os.Stderr, "injecting: latency %s, %.0f%% answered %d\n", *latency, *failRate*100, *status)
	}

	var tick <-chan time.Time
	if *quiet {
		t := time.NewTicker(*every)
		defer t.Stop()
		tick = t.C
	}
	var last receiver.Stats
	for {
		select {
		case err := <-served:
			return fmt.Errorf("receive: %w", err)
		case <-tick:
			s := rc.Stats()
			fmt.Fprintf(os.Stderr, "%s %s (+%.0f/s)\n", time.Now().Format("15:04:05"), s, float64(s.Accepted-last.Accepted)/every.Seconds())
			last = s
		case <-ctx.Done():
			shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(shutdown)
			<-served // Serve returns ErrServerClosed as soon as Shutdown begins
			fmt.Fprintf(os.Stderr, "%s\n", rc.Stats())
			return nil
		}
	}
}
