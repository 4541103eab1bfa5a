package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/roomhook/roomhook/admin"
)

const dlqUsage = `roomhook dlq list|show <seq>|replay|purge [filter flags] [flags]

  list        dead letters, oldest first (100 unless --limit)
  show <seq>  one dead letter with its body
  replay      deliver the selected dead letters again, in event order, with their ids;
              each leaves the DLQ once delivered (a new dead letter replaces it if it fails)
  purge       delete the selected dead letters

  replay and purge need a filter, or --all for every dead letter.`

// dlqFilter is the filter flags of `roomhook dlq`.
type dlqFilter struct {
	endpoint, room, event, reason, since, until string
	limit                                       int
	all                                         bool
}

func (f *dlqFilter) register(fs *flag.FlagSet) {
	fs.StringVar(&f.endpoint, "endpoint", "", "endpoint id or URL (\"invalid\" for invalid events)")
	fs.StringVar(&f.room, "room", "", "room id")
	fs.StringVar(&f.event, "event", "", "event name, e.g. room_finished")
	fs.StringVar(&f.reason, "reason", "", "invalid, rejected, gone, exhausted or forbidden")
	fs.StringVar(&f.since, "since", "", "dead-lettered at or after: RFC 3339 time, date, or a time ago (90m, 12h, 7d)")
	fs.StringVar(&f.until, "until", "", "dead-lettered at or before: same forms as --since")
	fs.IntVar(&f.limit, "limit", 0, "select at most this many, oldest first (list: default 100, at most 1000)")
	fs.BoolVar(&f.all, "all", false, "replay or purge every dead letter when no filter is given")
}

func (f *dlqFilter) filter(now time.Time) (admin.Filter, error) {
	out := admin.Filter{Endpoint: f.endpoint, Room: f.room, Event: f.event, Reason: f.reason, Limit: f.limit}
	var err error
	if f.since != "" {
		if out.Since, err = parseWhen(f.since, now); err != nil {
			return out, fmt.Errorf("--since %w", err)
		}
	}
	if f.until != "" {
		if out.Until, err = parseWhen(f.until, now); err != nil {
			return out, fmt.Errorf("--until %w", err)
		}
	}
	return out, nil
}

// DLQ is `roomhook dlq`: list, show, replay and purge dead letters, through a running replica.
func DLQ(ctx context.Context, args []string) error {
	return dlqCommand(ctx, args, os.Stdout, os.Stderr)
}

func dlqCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, o := newAdminFlags("dlq", dlqUsage, stderr)
	var ff dlqFilter
	ff.register(fs)
	rest, help, err := parseArgs(fs, args)
	if help || err != nil {
		return err
	}
	f, err := ff.filter(time.Now())
	if err != nil {
		return fmt.Errorf("dlq: %w", err)
	}
	op := ""
	if len(rest) > 0 {
		op = rest[0]
	}
	switch {
	case op == "list" && len(rest) == 1:
		return query(o, stdout, func(c *admin.Client) (admin.DeadLetterList, error) { return c.ListDeadLetters(ctx, f) }, printDeadLetters)
	case op == "show" && len(rest) == 2:
		seq, err := strconv.ParseUint(rest[1], 10, 64)
		if err != nil || seq == 0 {
			return fmt.Errorf("dlq show: %q is not a dead letter's sequence (dlq list shows them)", rest[1])
		}
		return query(o, stdout, func(c *admin.Client) (admin.DeadLetterDetail, error) { return c.ShowDeadLetter(ctx, seq) }, printDeadLetter)
	case (op == "replay" || op == "purge") && len(rest) == 1:
		if f.Empty() && !ff.all {
			return fmt.Errorf("dlq %s: give a filter (--endpoint, --room, --event, --reason, --since, --until, --limit), or --all for every dead letter", op)
		}
		if op == "replay" {
			return query(o, stdout, func(c *admin.Client) (admin.ReplayResult, error) { return c.ReplayDeadLetters(ctx, f) }, printReplay)
		}
		return query(o, stdout, func(c *admin.Client) (admin.PurgeResult, error) {
			return c.PurgeDeadLetters(ctx, admin.PurgeRequest{Filter: f, All: ff.all})
		}, func(w io.Writer, res admin.PurgeResult) {
			fmt.Fprintf(w, "purged %s\n", count(res.Purged, "dead letter"))
		})
	}
	fs.Usage()
	return fmt.Errorf("dlq: %w", errUsage)
}

func printDeadLetters(w io.Writer, list admin.DeadLetterList) {
	if list.Matched == 0 {
		fmt.Fprintln(w, "no dead letters match")
		return
	}
	t := newTable(w)
	row(t, "SEQ", "DEAD-LETTERED", "REASON", "ENDPOINT", "ROOM", "EVENT", "EVENT ID", "ATTEMPTS", "DETAIL")
	for _, dl := range list.DeadLetters {
		row(t, dl.Seq, clock(dl.Time), dl.Reason, dl.EndpointID, orDash(shorten(dl.Room, 32)), orDash(dl.Event),
			orDash(dl.EventID), dl.Attempts, orDash(shorten(dl.Detail, 60)))
	}
	t.Flush()
	if n := len(list.DeadLetters); n < list.Matched {
		fmt.Fprintf(w, "showing the oldest %d of %d; narrow the filter or raise --limit (at most %d)\n", n, list.Matched, admin.MaxListLimit)
	}
}

func printDeadLetter(w io.Writer, dl admin.DeadLetterDetail) {
	t := newTable(w)
	field := func(name string, v any) { row(t, name+":", v) }
	field("seq", dl.Seq)
	field("dead-lettered", clock(dl.Time))
	field("reason", dl.Reason)
	field("detail", orDash(dl.Detail))
	field("endpoint", dl.EndpointID)
	field("endpoint url", orDash(dl.EndpointURL))
	field("room", orDash(dl.Room))
	field("event", orDash(dl.Event))
	field("event id", orDash(dl.EventID))
	field("event seq", dl.EventSeq)
	field("event stored", clock(dl.EventStored))
	if dl.Subject != "" {
		field("subject", dl.Subject)
	}
	field("attempts", dl.Attempts)
	field("first attempt", clock(dl.FirstAttempt))
	field("last attempt", clock(dl.LastAttempt))
	if dl.LastStatus != 0 {
		field("last status", dl.LastStatus)
	}
	if dl.LastError != "" {
		field("last error", dl.LastError)
	}
	size := strconv.Itoa(dl.BodyBytes) + " bytes"
	if dl.Truncated {
		size += " (truncated)"
	}
	field("body", size)
	t.Flush()
	fmt.Fprintln(w)
	if dl.BodyBase64 != "" {
		fmt.Fprintln(w, "body is not UTF-8; base64:")
		fmt.Fprintln(w, dl.BodyBase64)
		return
	}
	fmt.Fprintln(w, dl.Body)
}

func printReplay(w io.Writer, res admin.ReplayResult) {
	fmt.Fprintf(w, "replayed %d of %s selected; each leaves the DLQ once delivered\n", res.Replayed, count(uint64(res.Matched), "dead letter"))
	if res.SkippedTotal == 0 {
		return
	}
	fmt.Fprintf(w, "skipped %d:\n", res.SkippedTotal)
	for _, s := range res.Skipped {
		fmt.Fprintf(w, "  %d  %s\n", s.Seq, s.Reason)
	}
	if n := res.SkippedTotal - len(res.Skipped); n > 0 {
		fmt.Fprintf(w, "  … and %d more\n", n)
	}
}
