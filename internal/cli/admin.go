package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/roomhook/roomhook/admin"
	"github.com/roomhook/roomhook/internal/server"
	"github.com/roomhook/roomhook/schema"
)

// The operator subcommands (endpoints, status, dlq) talk to the replicas' admin service over
// NATS with the dispatcher's own connection settings (ROOMHOOK_NATS_URL, _CREDS_FILE,
// _NKEY_FILE, _USER/_PASSWORD, _TLS_*) and ROOMHOOK_REGION.

// adminOptions are the flags every operator subcommand takes.
type adminOptions struct {
	natsURL string
	region  string
	json    bool
	timeout time.Duration
}

// newAdminFlags makes the flag set of an operator subcommand; usage is its synopsis.
func newAdminFlags(name, usage string, stderr io.Writer) (*flag.FlagSet, *adminOptions) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s\n\nFlags:\n", usage)
		fs.PrintDefaults()
	}
	o := &adminOptions{}
	fs.StringVar(&o.natsURL, "nats", "", "NATS server URL (default: ROOMHOOK_NATS_URL, else nats://<ROOMHOOK_EMBEDDED_LISTEN>, i.e. nats://127.0.0.1:4222)")
	fs.StringVar(&o.region, "region", "", "region (default: ROOMHOOK_REGION, else default)")
	fs.BoolVar(&o.json, "json", false, "print the answer as JSON, for scripts")
	fs.DurationVar(&o.timeout, "timeout", admin.DefaultClientTimeout, "how long to wait for a replica's answer")
	return fs, o
}

// errUsage reports a command line that names no known operation; the usage is already printed.
var errUsage = errors.New("see the usage above")

// adminClient connects to NATS as the dispatcher would and returns a client for the region's
// admin service, and a function that closes the connection.
func (o *adminOptions) adminClient() (*admin.Client, func(), error) {
	c, err := server.LoadConfig(server.ScopeClient)
	if err != nil {
		return nil, nil, err
	}
	region := o.region
	if region == "" {
		region = c.Region
	}
	if err := schema.ValidateRegion(region); err != nil {
		return nil, nil, fmt.Errorf("region: %w", err)
	}
	url := o.natsURL
	if url == "" {
		url = c.NATSURL
	}
	if url == "" {
		url = "nats://" + c.EmbeddedListen
	}
	// The CLI is short-lived: it reports a lost connection as an error, it does not log it.
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	nc, err := server.ConnectNATS(c, url, quiet)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (is NATS at %s? set ROOMHOOK_NATS_URL or --nats)", err, server.RedactNATSURL(url))
	}
	return admin.NewClient(nc, region, admin.WithTimeout(o.timeout)), nc.Close, nil
}

// printJSON writes v indented, for --json.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newTable writes aligned columns; Flush it when done.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// row writes one table row.
func row(w io.Writer, cells ...any) {
	for i, c := range cells {
		if i > 0 {
			fmt.Fprint(w, "\t")
		}
		fmt.Fprint(w, c)
	}
	fmt.Fprintln(w)
}

// orDash shows an empty value as "-".
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// clock shows a time in UTC to the second, or "-" for none.
func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// ago shows how long before now t was, or "-" for never.
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h ago"
	default:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d ago"
	}
}

// count writes n with its noun, "1 dead letter", "3 dead letters".
func count(n uint64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.FormatUint(n, 10) + " " + noun + "s"
}

// shorten cuts s to n runes for a table cell.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// parseWhen reads --since/--until: an RFC 3339 time, a date (midnight UTC), or a duration
// before now such as 90m, 12h or 7d.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time (2025-05-01T10:00:00Z), a date (2025-05-01) or a time ago (90m, 12h, 7d)", s)
}

// query runs one operator request with a connected client and prints its answer: as JSON with
// --json, else as text with printText.
func query[T any](o *adminOptions, stdout io.Writer, ask func(c *admin.Client) (T, error), printText func(w io.Writer, v T)) error {
	c, closeConn, err := o.adminClient()
	if err != nil {
		return err
	}
	defer closeConn()
	v, err := ask(c)
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(stdout, v)
	}
	printText(stdout, v)
	return nil
}
