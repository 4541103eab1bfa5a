package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/roomhook/roomhook/admin"
)

const statusUsage = `roomhook status [flags]

  every endpoint's backlog, deliveries in flight, last success and last error, and the
  dead letters by reason`

// Status is `roomhook status`: every endpoint's backlog and health, and the dead letters, from a
// running replica.
func Status(ctx context.Context, args []string) error {
	return statusCommand(ctx, args, os.Stdout, os.Stderr)
}

func statusCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, o := newAdminFlags("status", statusUsage, stderr)
	rest, help, err := parseArgs(fs, args)
	if help || err != nil {
		return err
	}
	if len(rest) > 0 {
		fs.Usage()
		return fmt.Errorf("status: unexpected argument %q", rest[0])
	}
	return query(o, stdout, func(c *admin.Client) (admin.Status, error) { return c.Status(ctx) }, printStatus)
}

func printStatus(w io.Writer, st admin.Status) {
	fmt.Fprintf(w, "region %s, answered by replica %s at %s\n\n", st.Region, st.Replica, clock(st.At))
	if len(st.Endpoints) > 0 {
		t := newTable(w)
		row(t, "ENDPOINT", "URL", "STATE", "BREAKER", "BACKLOG", "IN FLIGHT", "DEAD LETTERS", "LAST SUCCESS", "LAST ERROR")
		for _, es := range st.Endpoints {
			lastErr := "-"
			if es.LastError != "" {
				lastErr = ago(es.LastErrorAt, st.At) + ": " + shorten(es.LastError, 60)
			}
			row(t, es.ID, shorten(es.URL, 60), es.State(), es.Breaker, es.Backlog, es.InFlight, es.DeadLetters,
				ago(es.LastSuccess, st.At), lastErr)
		}
		t.Flush()
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "endpoints: %d, backlog: %d, in flight: %d\n", st.Totals.Endpoints, st.Totals.Backlog, st.Totals.InFlight)
	fmt.Fprintf(w, "dead letters: %d", st.DeadLetters.Total)
	if len(st.DeadLetters.ByReason) > 0 {
		reasons := make([]string, 0, len(st.DeadLetters.ByReason))
		for r := range st.DeadLetters.ByReason {
			reasons = append(reasons, r)
		}
		slices.Sort(reasons)
		parts := make([]string, len(reasons))
		for i, r := range reasons {
			parts[i] = fmt.Sprintf("%s %d", r, st.DeadLetters.ByReason[r])
		}
		fmt.Fprintf(w, " (%s)", strings.Join(parts, ", "))
	}
	fmt.Fprintln(w)
	if st.Unrouted > 0 {
		fmt.Fprintf(w, "events without an event token in their subject (stored, never delivered or dead-lettered): %d\n", st.Unrouted)
	}
}
