package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roomhook/roomhook/admin"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/internal/server/servertest"
	"github.com/roomhook/roomhook/internal/webhooktest"
)

// cliRun runs one operator subcommand as `roomhook <name> args...` would, returning its stdout.
func cliRun(t *testing.T, cmd func(context.Context, []string, io.Writer, io.Writer) error, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := cmd(context.Background(), args, &stdout, &stderr)
	return stdout.String(), err
}

func cliMust(t *testing.T, cmd func(context.Context, []string, io.Writer, io.Writer) error, args ...string) string {
	t.Helper()
	out, err := cliRun(t, cmd, args...)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return out
}

// The operator CLI against serve(): the admin service runs in every replica serve starts, and
// the CLI reaches it with the dispatcher's own NATS settings (here a user and password).
func TestOperatorCLI(t *testing.T) {
	natstest.ClearRoomhookEnv(t) // the CLI reads ROOMHOOK_* as an operator's shell would set them
	ns := natstest.NewRestartable(t, "cli-user", "cli-password")
	var failing atomic.Bool
	failing.Store(true)
	good := webhooktest.New(t, webhooktest.Options{Credentials: servertest.Credentials()})
	flaky := webhooktest.New(t, webhooktest.Options{Credentials: servertest.Credentials(), Answer: func(string, int) int {
		if failing.Load() {
			return 400
		}
		return 0
	}})
	goodURL := good.URL() + "?token=cli-secret-token"
	path := filepath.Join(t.TempDir(), "endpoints.yaml")
	file := "endpoints:\n  - url: " + goodURL + "\n  - url: " + flaky.URL() + "\n    events:\n      exclude: [participant_left]\n"
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	c := servertest.Config(t, ns.URL())
	c.EndpointsFile, c.NATSUser, c.NATSPassword = path, "cli-user", "cli-password"
	servertest.Start(t, c, io.Discard)
	t.Setenv("ROOMHOOK_NATS_URL", ns.URL())
	t.Setenv("ROOMHOOK_NATS_USER", "cli-user")
	t.Setenv("ROOMHOOK_NATS_PASSWORD", "cli-password")
	goodID, flakyID := endpoint.ID(goodURL), endpoint.ID(flaky.URL())

	natstest.WaitFor(t, 10*time.Second, "the admin service", func() bool {
		_, err := cliRun(t, endpointsCommand, "list")
		return err == nil
	})
	out := cliMust(t, endpointsCommand, "list")
	for _, want := range []string{"ID", "URL", "KIND", "STATE", "BREAKER", goodID, flakyID, "global", "active", "closed"} {
		if !strings.Contains(out, want) {
			t.Errorf("endpoints list does not show %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "cli-secret-token") {
		t.Errorf("endpoints list shows the URL's token:\n%s", out)
	}

	js := ns.JetStream()
	servertest.Publish(t, js, servertest.RoomEvent("room-1", "room_started", "e-1"), servertest.RoomEvent("room-1", "participant_joined", "e-2"),
		servertest.RoomEvent("room-2", "room_started", "e-3"))
	servertest.PublishGarbage(t, js, "room-9")
	natstest.WaitFor(t, 10*time.Second, "dead letters", func() bool {
		out, err := cliRun(t, dlqCommand, "list", "--json")
		var l admin.DeadLetterList
		return err == nil && json.Unmarshal([]byte(out), &l) == nil && l.Matched == 4 && good.AnsweredCount() == 3
	})

	out = cliMust(t, dlqCommand, "list", "--endpoint", flaky.URL())
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 4 || !strings.HasPrefix(lines[0], "SEQ") {
		t.Errorf("dlq list --endpoint: want a header and 3 rows:\n%s", out)
	}
	for _, want := range []string{"rejected", flakyID, "room-1", "participant_joined", "e-2", "status 400"} {
		if !strings.Contains(out, want) {
			t.Errorf("dlq list does not show %q:\n%s", want, out)
		}
	}
	out = cliMust(t, dlqCommand, "list", "--limit", "1", "--reason", "rejected")
	if !strings.Contains(out, "showing the oldest 1 of 3") {
		t.Errorf("dlq list --limit 1: want the count of what is not shown:\n%s", out)
	}
	// Rooms are delivered in parallel, so which rejected event is oldest varies: show the one
	// the list names.
	seq := regexp.MustCompile(`(?m)^(\d+) .*\b(e-\d)\b`).FindStringSubmatch(out)
	if seq == nil {
		t.Fatalf("no sequence and event id in:\n%s", out)
	}
	out = cliMust(t, dlqCommand, "show", seq[1])
	for _, want := range []string{"seq:", "reason:", "rejected", "last status:", "400", `"id":"` + seq[2] + `"`} {
		if !strings.Contains(out, want) {
			t.Errorf("dlq show does not show %q:\n%s", want, out)
		}
	}

	out = cliMust(t, statusCommand)
	for _, want := range []string{"BACKLOG", "IN FLIGHT", "LAST SUCCESS", "endpoints: 2, backlog: 0", "dead letters: 4 (invalid 1, rejected 3)"} {
		if !strings.Contains(out, want) {
			t.Errorf("status does not show %q:\n%s", want, out)
		}
	}
	var st admin.Status
	if err := json.Unmarshal([]byte(cliMust(t, statusCommand, "--json")), &st); err != nil || st.DeadLetters.Total != 4 || st.Totals.Endpoints != 2 {
		t.Errorf("status --json: %+v (%v)", st, err)
	}

	// Pause with the flag after the argument; --json answers the endpoint.
	var ep admin.Endpoint
	if err := json.Unmarshal([]byte(cliMust(t, endpointsCommand, "pause", goodURL, "--json")), &ep); err != nil || !ep.Paused || ep.ID != goodID {
		t.Errorf("endpoints pause --json: %+v (%v)", ep, err)
	}
	if out = cliMust(t, endpointsCommand, "resume", goodID); !strings.HasPrefix(out, "resumed "+goodID) {
		t.Errorf("endpoints resume: %q", out)
	}

	if _, err := cliRun(t, dlqCommand, "replay"); err == nil || !strings.Contains(err.Error(), "--all") {
		t.Errorf("dlq replay without a filter: got %v, want it refused", err)
	}
	failing.Store(false)
	out = cliMust(t, dlqCommand, "replay", "--room", "room-1")
	if !strings.HasPrefix(out, "replayed 2 of 2 dead letters selected") {
		t.Errorf("dlq replay --room room-1: %q", out)
	}
	natstest.WaitFor(t, 10*time.Second, "the replayed deliveries", func() bool { return flaky.AnsweredCount() == 2 })
	out = cliMust(t, dlqCommand, "replay", "--reason", "invalid")
	if !strings.Contains(out, "replayed 0 of 1 dead letter selected") || !strings.Contains(out, "skipped 1:") {
		t.Errorf("dlq replay --reason invalid: want it skipped:\n%s", out)
	}
	natstest.WaitFor(t, 10*time.Second, "the replayed dead letters to leave", func() bool {
		out, err := cliRun(t, dlqCommand, "list", "--json", "--room", "room-1")
		var l admin.DeadLetterList
		return err == nil && json.Unmarshal([]byte(out), &l) == nil && l.Matched == 0
	})
	if out = cliMust(t, dlqCommand, "purge", "--event", "room_started", "--endpoint", flakyID); out != "purged 1 dead letter\n" {
		t.Errorf("dlq purge --event room_started: %q", out)
	}
	if out = cliMust(t, dlqCommand, "purge", "--all"); out != "purged 1 dead letter\n" {
		t.Errorf("dlq purge --all: %q", out)
	}
	if out = cliMust(t, dlqCommand, "list"); out != "no dead letters match\n" {
		t.Errorf("dlq list after purging: %q", out)
	}

	for _, tt := range []struct {
		cmd  func(context.Context, []string, io.Writer, io.Writer) error
		args []string
		want string
	}{
		{statusCommand, []string{"--region", "eu"}, "no roomhook replica answered on roomhook.admin.eu."},
		{endpointsCommand, []string{"pause", "0123456789abcdef"}, "no endpoint 0123456789abcdef"},
		{dlqCommand, []string{"show", "99999"}, "no dead letter 99999"},
		{dlqCommand, []string{"show", "x"}, "not a dead letter's sequence"},
		{dlqCommand, []string{"list", "--since", "yesterday"}, "--since"},
		{dlqCommand, []string{"list", "--reason", "lost"}, `reason "lost"`},
		{endpointsCommand, []string{"frobnicate"}, "see the usage above"},
	} {
		if _, err := cliRun(t, tt.cmd, tt.args...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want an error containing %q", tt.args, err, tt.want)
		}
	}
	t.Setenv("ROOMHOOK_NATS_PASSWORD", "wrong")
	if _, err := cliRun(t, statusCommand); err == nil || !strings.Contains(err.Error(), "connect to NATS") {
		t.Errorf("wrong NATS password: got %v", err)
	}
}

func TestParseWhen(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 5, 10, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2025-05-01T10:00:00Z":      time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC),
		"2025-05-01T10:00:00+02:00": time.Date(2025, 5, 1, 8, 0, 0, 0, time.UTC),
		"2025-05-01":                time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC),
		"90m":                       now.Add(-90 * time.Minute),
		"7d":                        now.Add(-7 * 24 * time.Hour),
		"0s":                        now,
	} {
		got, err := parseWhen(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "yesterday", "-5m", "5", "2025-13-01", "-1d"} {
		if _, err := parseWhen(in, now); err == nil {
			t.Errorf("parseWhen(%q) accepted", in)
		}
	}
}
