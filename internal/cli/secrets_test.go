package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/roomhook/roomhook/admin"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/internal/server/servertest"
	"github.com/roomhook/roomhook/internal/webhooktest"
	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/signature"
	"github.com/roomhook/roomhook/subscriber"
)

// secretSet is every secret a test gave roomhook, by a name that says where it came from.
type secretSet map[string]string

// secretScanner collects the places where a secret was found.
type secretScanner struct {
	secrets secretSet
	names   []string // sorted, so that hits read the same every run
	hits    []string
	scanned int // texts looked at, so that a scan of nothing cannot pass unnoticed
}

func newSecretScanner(s secretSet) *secretScanner {
	names := make([]string, 0, len(s))
	for n := range s {
		names = append(names, n)
	}
	sort.Strings(names)
	return &secretScanner{secrets: s, names: names}
}

// scan looks for every secret in text (as it is, and JSON- and URL-escaped forms would not hide
// one: the secrets are plain [A-Za-z0-9_-] words) and records where: what is a short label
// such as "stream ROOMHOOK_DLQ_DEFAULT seq 3 header Roomhook-Endpoint-Url".
func (s *secretScanner) scan(where, text string) {
	s.scanned++
	for _, n := range s.names {
		if strings.Contains(text, s.secrets[n]) {
			s.hits = append(s.hits, fmt.Sprintf("%s (%s) in %s: %s", n, s.secrets[n], where, excerpt(text, s.secrets[n])))
		}
	}
}

// excerpt is the text around the first occurrence of secret, for the failure message.
func excerpt(text, secret string) string {
	i := strings.Index(text, secret)
	from, to := max(0, i-120), min(len(text), i+len(secret)+60)
	return strconv.Quote(text[from:to])
}

// scanMsg scans a stored message's subject, headers and data.
func (s *secretScanner) scanMsg(where string, m *jetstream.RawStreamMsg) {
	s.scan(where+" subject", m.Subject)
	for k, vs := range m.Header {
		for _, v := range vs {
			s.scan(where+" header "+k, k+": "+v)
		}
	}
	s.scan(where+" data", string(m.Data))
}

// scanStream scans every message of a stream (its config and consumers too); skipData, when
// set, says which message bodies to leave out.
func (s *secretScanner) scanStream(t *testing.T, js jetstream.JetStream, name string, skipData func([]byte) bool) {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	cfg, _ := json.Marshal(info.Config)
	s.scan("stream "+name+" config", string(cfg))
	for c := range st.ListConsumers(ctx).Info() {
		b, _ := json.Marshal(c.Config)
		s.scan("stream "+name+" consumer "+c.Name, string(b))
	}
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("stream %s seq %d: %v", name, seq, err)
		}
		where := fmt.Sprintf("stream %s seq %d (%s)", name, seq, m.Subject)
		if skipData != nil && skipData(m.Data) {
			m.Data = nil
		}
		s.scanMsg(where, m)
	}
}

// streamData returns the bodies of every message of a stream.
func streamData(t *testing.T, js jetstream.JetStream, name string) map[string]bool {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		if m, err := st.GetMsg(ctx, seq); err == nil {
			out[string(m.Data)] = true
		}
	}
	return out
}

// randomWord is a fresh secret: prefix, then 24 hex digits no other text of the test holds.
func randomWord(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

// randomWhsec is a Standard Webhooks secret, whsec_ and base64 of 24 random bytes; base64 with
// no '+' or '/' so that it is also found where it would be URL- or JSON-escaped.
func randomWhsec(t *testing.T) string {
	t.Helper()
	for {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		if s := base64.StdEncoding.EncodeToString(b); !strings.ContainsAny(s, "+/") {
			return "whsec_" + s
		}
	}
}

// roomhook runs with secrets everywhere: its signing secret, an endpoints file with an
// endpoint's own credentials and Standard Webhooks secrets, a NATS user's password, global and
// per-room URLs with ?token= queries and fragments, a per-room URL with user info, debug logs,
// failing deliveries that are retried and dead-lettered, a paused endpoint whose deliveries wait
// in the spill stream, and invalid events whose payloads carry webhook_urls with tokens. Then no
// secret may appear in any message or header of any stream or bucket except the two that are
// input (the events stream, as the media node published it, and the partition stream, the
// server's byte-for-byte copy of it, whose bodies are compared with the events') and the one
// allowed place (the endpoints bucket); nor in any log line, /metrics, /healthz, /readyz, the
// admin API's raw answers (status, endpoints list, dlq list, dlq show), or the output of the
// CLI's status, endpoints list, dlq list and dlq show, as text and as JSON. The positive
// controls show the scanner finds the tokens where they are allowed to be.
func TestSecretsEverywhere(t *testing.T) {
	natstest.ClearRoomhookEnv(t) // the CLI reads ROOMHOOK_* as an operator's shell would set them
	secrets := secretSet{
		"API secret":                    randomWord(t, "apisecret"),
		"endpoint api_secret":           randomWord(t, "epsecret"),
		"NATS password":                 randomWord(t, "natspw"),
		"global URL token":              randomWord(t, "globaltok"),
		"endpoints-file URL token":      randomWord(t, "filetok"),
		"per-room URL token":            randomWord(t, "roomtok"),
		"failing per-room URL token":    randomWord(t, "failtok"),
		"failing per-room URL fragment": randomWord(t, "failfrag"),
		"paused per-room URL token":     randomWord(t, "pausetok"),
		"per-room URL user-info":        randomWord(t, "userinfopw"),
		"invalid event URL token":       randomWord(t, "invalidtok"),
		"mismatched event URL token":    randomWord(t, "mismatchtok"),
	}
	whsec1, whsec2 := randomWhsec(t), randomWhsec(t)
	secrets["whsec secret"], secrets["whsec secret (rotated)"] = whsec1, whsec2
	secrets["whsec key"] = strings.TrimPrefix(whsec1, "whsec_")
	const region = "default"
	names := subscriber.Names{Region: region}

	ns := natstest.NewRestartable(t, "roomhook", secrets["NATS password"])
	creds := signature.Credentials{APIKey: "secrets-api-key", APISecret: secrets["API secret"]}
	fileCreds := signature.Credentials{APIKey: "secrets-file-key", APISecret: secrets["endpoint api_secret"]}
	envGlobal := webhooktest.New(t, webhooktest.Options{Credentials: creds})
	fileGlobal := webhooktest.New(t, webhooktest.Options{Credentials: fileCreds, StandardSecrets: []string{whsec1, whsec2},
		Answer: func(id string, _ int) int {
			if id == "ev-join" {
				return 500 // retried, then dead-lettered exhausted
			}
			return 0
		}})
	roomOK := webhooktest.New(t, webhooktest.Options{Credentials: creds})
	roomFail := webhooktest.New(t, webhooktest.Options{Credentials: creds, Answer: func(string, int) int { return 500 }})
	roomPaused := webhooktest.New(t, webhooktest.Options{Credentials: creds})

	envURL := envGlobal.URL() + "?token=" + secrets["global URL token"]
	fileURL := fileGlobal.URL() + "?token=" + secrets["endpoints-file URL token"]
	okURL := roomOK.URL() + "?token=" + secrets["per-room URL token"]
	failURL := roomFail.URL() + "?token=" + secrets["failing per-room URL token"] + "#" + secrets["failing per-room URL fragment"]
	pausedURL := roomPaused.URL() + "?token=" + secrets["paused per-room URL token"]
	userInfoURL := strings.Replace(roomOK.URL(), "http://", "http://hookuser:"+secrets["per-room URL user-info"]+"@", 1) + "?x=1"

	path := filepath.Join(t.TempDir(), "endpoints.yaml")
	file := fmt.Sprintf("endpoints:\n  - url: %s\n    api_key: %s\n    api_secret: %s\n    standard_webhooks_secrets: [%s, %s]\n",
		fileURL, fileCreds.APIKey, fileCreds.APISecret, whsec1, whsec2)
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	c := servertest.Config(t, ns.URL(), envURL)
	c.APIKey, c.APISecret = creds.APIKey, creds.APISecret
	c.EndpointsFile, c.NATSUser, c.NATSPassword = path, "roomhook", secrets["NATS password"]
	c.RetrySchedule = "0s,20ms,50ms"
	c.BreakerFailures = 1000 // every failure is retried on its schedule, none waits for a probe
	logs := &lockedBuffer{}  // tail_test.go
	replica := servertest.Start(t, c, logs)

	t.Setenv("ROOMHOOK_NATS_URL", ns.URL())
	t.Setenv("ROOMHOOK_NATS_USER", "roomhook")
	t.Setenv("ROOMHOOK_NATS_PASSWORD", secrets["NATS password"])
	ctx := context.Background()
	nc, js := natstest.Connect(t, ns.URL(), nats.UserInfo("roomhook", secrets["NATS password"]))
	client := admin.NewClient(nc, region, admin.WithTimeout(10*time.Second))

	// The room registers its URLs; the paused one is paused before the room's next events.
	servertest.Publish(t, js, servertest.RoomEvent("room-s", "room_created", "ev-created", okURL, failURL, pausedURL, userInfoURL))
	natstest.WaitFor(t, 20*time.Second, "room_created at every endpoint that takes it", func() bool {
		return roomOK.Has("ev-created") && roomPaused.Has("ev-created") && envGlobal.Has("ev-created") && fileGlobal.Has("ev-created")
	})
	pausedID := endpoint.ID(pausedURL)
	if _, err := client.PauseEndpoint(ctx, pausedID); err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, 10*time.Second, "the pause", func() bool {
		eps, err := client.ListEndpoints(ctx)
		for _, ep := range eps {
			if ep.ID == pausedID {
				return err == nil && ep.Paused
			}
		}
		return false
	})

	// Invalid events carrying tokens: webhook_urls on an event other than room_created, and a
	// room_created whose payload names another room than its subject.
	servertest.Publish(t, js, servertest.RoomEvent("room-s", "participant_joined", "ev-bad-urls",
		roomOK.URL()+"?token="+secrets["invalid event URL token"]))
	mismatch, err := proto.Marshal(servertest.RoomEvent("room-y", "room_created", "ev-bad-room",
		roomOK.URL()+"?token="+secrets["mismatched event URL token"]))
	if err != nil {
		t.Fatal(err)
	}
	subject, err := schema.Address{Region: region, Room: "room-x", Event: "room_created"}.Subject()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, subject, mismatch, jetstream.WithMsgID("ev-bad-room")); err != nil {
		t.Fatal(err)
	}
	servertest.Publish(t, js, servertest.RoomEvent("room-s", "participant_joined", "ev-join"),
		servertest.RoomEvent("room-s", "room_started", "ev-last"))

	// 3 exhausted for the failing per-room endpoint (each event of its room), 1 for the file's
	// endpoint (ev-join), 2 invalid; the paused endpoint's 2 deliveries wait in the spill stream.
	natstest.WaitFor(t, 30*time.Second, "the deliveries and dead letters", func() bool {
		l, err := client.ListDeadLetters(ctx, admin.Filter{})
		return err == nil && l.Matched == 6 && roomOK.Has("ev-last") && envGlobal.Has("ev-last") && fileGlobal.Has("ev-last")
	})
	natstest.WaitFor(t, 20*time.Second, "the paused endpoint's deliveries in the spill stream", func() bool {
		st, err := js.Stream(ctx, names.SpillStream())
		if err != nil {
			return false
		}
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(names.SpillSubjects()))
		if err != nil {
			return false
		}
		return subscriber.SpillTotal(info.State.Subjects) >= 2
	})
	if n := roomPaused.AnsweredCount(); n != 1 {
		t.Errorf("the paused endpoint got %d deliveries, want only room_created", n)
	}
	if n := roomFail.Attempts("ev-join"); n != 3 {
		t.Errorf("the failing endpoint got %d attempts of ev-join, want 3 (the schedule)", n)
	}
	// The signed tokens and signatures the receivers got are secrets too: valid for minutes.
	for _, r := range []*webhooktest.Receiver{envGlobal, fileGlobal, roomOK, roomFail} {
		for i, tok := range r.Tokens() {
			// A webhook-signature value is "v1,<base64>"; look for the signature itself.
			_, sig, _ := strings.Cut(tok, ",")
			if sig == "" {
				sig = tok
			}
			secrets[fmt.Sprintf("received signature %s#%d", r.URL(), i)] = sig
		}
	}

	scanner := newSecretScanner(secrets)

	// Positive controls: the scanner finds the tokens where they are allowed to be, so its
	// silence elsewhere means something.
	control := newSecretScanner(secrets)
	control.scanStream(t, js, "KV_"+names.EndpointsBucket(), nil)
	control.scanStream(t, js, names.EventsStream(), nil)
	for _, want := range []string{"per-room URL token", "failing per-room URL token", "paused per-room URL token",
		"global URL token", "endpoints-file URL token", "invalid event URL token", "mismatched event URL token"} {
		found := false
		for _, h := range control.hits {
			found = found || strings.HasPrefix(h, want+" (")
		}
		if !found {
			t.Errorf("positive control: the scanner does not find the %s in the endpoints bucket or the events stream; hits: %q", want, control.hits)
		}
	}

	// Every stream and bucket but the input and the endpoints bucket.
	events := streamData(t, js, names.EventsStream())
	scanned := map[string]bool{}
	for name := range js.StreamNames(ctx).Name() {
		switch name {
		case names.EventsStream(), "KV_" + names.EndpointsBucket():
			continue
		case names.PartStream():
			scanner.scanStream(t, js, name, func(data []byte) bool { return events[string(data)] })
		default:
			scanner.scanStream(t, js, name, nil)
		}
		scanned[name] = true
	}
	for _, want := range []string{names.PartStream(), names.SpillStream(), names.DLQStream(), "KV_" + names.RoomsBucket(),
		"KV_" + names.HealthBucket(), "KV_" + names.MembersBucket(), "KV_" + names.LeasesBucket()} {
		if !scanned[want] {
			t.Errorf("stream %s was not scanned (streams: %v)", want, scanned)
		}
	}

	// The HTTP server.
	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		_, body := replica.Get(t, path)
		scanner.scan("GET "+path, body)
	}
	_, metrics := replica.Get(t, "/metrics")
	if !strings.Contains(metrics, "roomhook_") {
		t.Errorf("/metrics shows no roomhook metric:\n%s", metrics)
	}

	// The admin API's raw answers, headers included.
	dls, err := client.ListDeadLetters(ctx, admin.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	rawAsk := func(op string, req any) {
		t.Helper()
		var data []byte
		if req != nil {
			data, _ = json.Marshal(req)
		}
		msg, err := nc.Request(admin.Subject(region, op), data, 10*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		if msg.Header.Get("Nats-Service-Error-Code") != "" {
			t.Errorf("%s answered an error: %v", op, msg.Header)
		}
		for k, vs := range msg.Header {
			scanner.scan("admin "+op+" header "+k, k+": "+strings.Join(vs, ","))
		}
		scanner.scan("admin "+op+" answer", string(msg.Data))
	}
	rawAsk(admin.OpStatus, nil)
	rawAsk(admin.OpEndpointsList, nil)
	rawAsk(admin.OpDLQList, admin.Filter{})
	seqs := make([]string, 0, len(dls.DeadLetters))
	for _, dl := range dls.DeadLetters {
		rawAsk(admin.OpDLQShow, admin.ShowRequest{Seq: dl.Seq})
		seqs = append(seqs, strconv.FormatUint(dl.Seq, 10))
	}

	// The CLI, in process, as an operator runs it with the dispatcher's NATS settings.
	type cliCall struct {
		cmd  func(context.Context, []string, io.Writer, io.Writer) error
		args []string
	}
	calls := []cliCall{
		{statusCommand, nil}, {statusCommand, []string{"--json"}},
		{endpointsCommand, []string{"list"}}, {endpointsCommand, []string{"list", "--json"}},
		{dlqCommand, []string{"list"}}, {dlqCommand, []string{"list", "--json"}},
	}
	for _, seq := range seqs {
		calls = append(calls, cliCall{dlqCommand, []string{"show", seq}}, cliCall{dlqCommand, []string{"show", seq, "--json"}})
	}
	for _, call := range calls {
		var stdout, stderr bytes.Buffer
		if err := call.cmd(ctx, call.args, &stdout, &stderr); err != nil {
			t.Errorf("cli %v: %v", call.args, err)
		}
		if stdout.Len() == 0 {
			t.Errorf("cli %v printed nothing", call.args)
		}
		scanner.scan(fmt.Sprintf("cli %v stdout", call.args), stdout.String())
		scanner.scan(fmt.Sprintf("cli %v stderr", call.args), stderr.String())
	}
	// A failing CLI call names the NATS server, not the password.
	t.Setenv("ROOMHOOK_NATS_URL", strings.Replace(ns.URL(), "nats://", "nats://roomhook:"+secrets["NATS password"]+"@", 1))
	t.Setenv("ROOMHOOK_NATS_PASSWORD", "")
	t.Setenv("ROOMHOOK_NATS_USER", "")
	var stdout, stderr bytes.Buffer
	if err := statusCommand(ctx, []string{"--timeout", "1ms", "--region", "nowhere"}, &stdout, &stderr); err != nil {
		scanner.scan("cli status error", err.Error())
	}

	// Every log line, last: everything above has been logged by now.
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) < 10 || !strings.Contains(logs.String(), `"level":"DEBUG"`) {
		t.Errorf("want debug logs, got %d lines", len(lines))
	}
	if !strings.Contains(logs.String(), endpoint.RedactURL(userInfoURL)) && !strings.Contains(logs.String(), "refused (invalid)") {
		t.Errorf("the per-room URL with user info was not logged as ignored:\n%s", logs.String())
	}
	for i, line := range lines {
		scanner.scan("log line "+strconv.Itoa(i+1), line)
	}

	if scanner.scanned < 50 {
		t.Errorf("only %d texts scanned", scanner.scanned)
	}
	for _, h := range scanner.hits {
		t.Errorf("secret found: %s", h)
	}
}
