package server_test

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/internal/server"
	"github.com/roomhook/roomhook/internal/server/servertest"
	"github.com/roomhook/roomhook/internal/webhooktest"
	"github.com/roomhook/roomhook/schema/signature"
)

// These tests run server.Serve the way `roomhook` runs it (servertest): a Config in, the
// health and metrics server on a real port, a NATS server with JetStream in the test process
// (natstest.Restartable, which the tests stop and start again), and webhook receivers on
// loopback that verify every request (webhooktest).

// newReceiver is a verifying endpoint for what servertest.Config signs.
func newReceiver(t *testing.T, answer func(id string, attempt int) int) *webhooktest.Receiver {
	return webhooktest.New(t, webhooktest.Options{Credentials: servertest.Credentials(), Answer: answer})
}

// endpointLabel is the endpoint label of a global endpoint's series: its id.
func endpointLabel(t testing.TB, rawURL string) string {
	t.Helper()
	urls, err := endpoint.ParseWebhookURLs([]string{rawURL})
	if err != nil {
		t.Fatal(err)
	}
	return endpoint.ID(urls[0])
}

// scrape reads /metrics with Prometheus' own text parser.
func scrape(t testing.TB, p *servertest.Replica) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(p.Base() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics answered %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not valid Prometheus text: %v", err)
	}
	return fams
}

// labelKey names a series within its family: "k=v,k=v" with the label names sorted.
func labelKey(pairs ...string) string {
	var kv []string
	for i := 0; i+1 < len(pairs); i += 2 {
		kv = append(kv, pairs[i]+"="+pairs[i+1])
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

// seriesValues lists a family's series by labelKey: the value of counters and gauges, the
// observation count of histograms.
func seriesValues(fams map[string]*dto.MetricFamily, family string) map[string]float64 {
	out := map[string]float64{}
	f := fams[family]
	if f == nil {
		return out
	}
	for _, m := range f.GetMetric() {
		var pairs []string
		for _, l := range m.GetLabel() {
			pairs = append(pairs, l.GetName(), l.GetValue())
		}
		var v float64
		switch {
		case m.Counter != nil:
			v = m.GetCounter().GetValue()
		case m.Gauge != nil:
			v = m.GetGauge().GetValue()
		case m.Histogram != nil:
			v = float64(m.GetHistogram().GetSampleCount())
		case m.Untyped != nil:
			v = m.GetUntyped().GetValue()
		}
		out[labelKey(pairs...)] = v
	}
	return out
}

// metricsDiff lists where the scraped families differ from want, which holds every series
// each family must have, and no other.
func metricsDiff(fams map[string]*dto.MetricFamily, want map[string]map[string]float64) string {
	var diffs []string
	for family, series := range want {
		got := seriesValues(fams, family)
		for key, v := range series {
			if g, ok := got[key]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s{%s} missing, want %g", family, key, v))
			} else if g != v {
				diffs = append(diffs, fmt.Sprintf("%s{%s} = %g, want %g", family, key, g, v))
			}
		}
		for key, g := range got {
			// Zero series of label values nothing used are Metrics.Preset's, there from the start.
			if _, ok := series[key]; !ok && g != 0 {
				diffs = append(diffs, fmt.Sprintf("%s{%s} = %g, not expected", family, key, g))
			}
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, "\n")
}

// waitMetrics waits until /metrics holds exactly want (see metricsDiff), and returns that scrape.
func waitMetrics(t *testing.T, p *servertest.Replica, want map[string]map[string]float64, what string) map[string]*dto.MetricFamily {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		fams := scrape(t, p)
		diff := metricsDiff(fams, want)
		if diff == "" {
			return fams
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s:\n%s", what, diff)
		}
		time.Sleep(50 * time.Millisecond) // polling for counters to arrive, not waiting for nothing
	}
}

// TestServeMetricsCountWhatARunDid runs a known set of events through serve and finds exactly
// their counts on /metrics: 5 events (one of an unknown name) to 2 global endpoints, 3 of them
// also to a per-room endpoint, one 500 answered once, and one undecodable event.
func TestServeMetricsCountWhatARunDid(t *testing.T) {
	t.Parallel()
	ns := natstest.NewRestartable(t, "", "")
	steady := newReceiver(t, nil)
	flaky := newReceiver(t, func(id string, n int) int {
		if id == "ev-r2-1" && n == 1 {
			return http.StatusInternalServerError
		}
		return 0
	})
	perRoom := newReceiver(t, nil)
	c := servertest.Config(t, ns.URL(), steady.URL(), flaky.URL())
	p := servertest.Start(t, c, io.Discard)

	js := ns.JetStream()
	servertest.Publish(t, js,
		servertest.RoomEvent("r1", "room_created", "ev-r1-0", perRoom.URL()),
		servertest.RoomEvent("r1", "participant_joined", "ev-r1-1"),
		servertest.RoomEvent("r1", "participant_joined", "ev-r1-2"),
		servertest.RoomEvent("r2", "participant_joined", "ev-r2-1"),
		servertest.RoomEvent("r2", "made_up_event", "ev-r2-2"), // not a known name: labelled "other"
	)
	servertest.PublishGarbage(t, js, "r3")
	natstest.WaitFor(t, 15*time.Second, "every delivery", func() bool {
		return steady.AnsweredCount() == 5 && flaky.AnsweredCount() == 5 && perRoom.AnsweredCount() == 3
	})

	a, b := endpointLabel(t, steady.URL()), endpointLabel(t, flaky.URL())
	ep := func(id string) string { return labelKey("endpoint", id) }
	delivery := func(id, outcome, class string) string {
		return labelKey("endpoint", id, "outcome", outcome, "status_class", class)
	}
	want := map[string]map[string]float64{
		"roomhook_events_consumed_total": {
			labelKey("event", "room_created"): 1, labelKey("event", "participant_joined"): 3, labelKey("event", "other"): 1,
		},
		"roomhook_deliveries_total": {
			delivery(a, "delivered", "2xx"): 5,
			delivery(b, "delivered", "2xx"): 5, delivery(b, "retry", "5xx"): 1,
			delivery("per_room", "delivered", "2xx"): 3,
		},
		"roomhook_retries_total":            {ep(b): 1},
		"roomhook_invalid_events_total":     {"": 1},
		"roomhook_dead_letters_total":       {labelKey("reason", "invalid"): 1},
		"roomhook_attempt_duration_seconds": {ep(a): 5, ep(b): 6, ep("per_room"): 3},
		"roomhook_end_to_end_seconds":       {ep(a): 5, ep(b): 5, ep("per_room"): 3},
		"roomhook_units_owned":              {"": float64(c.Partitions)},
		"roomhook_in_flight":                {ep(a): 0, ep(b): 0, ep("per_room"): 0},
		"roomhook_held_deliveries":          {ep(a): 0, ep(b): 0, ep("per_room"): 0},
	}
	// Counters are recorded just after the receiver answers, so wait for them to arrive.
	waitMetrics(t, p, want, "/metrics after the run")
	// Then a barrier: one more event of r2, behind ev-r2-1's retry in that room's order. Once
	// it is counted, the counts must be exactly the run's plus the barrier's: nothing of the
	// run counted twice or late.
	servertest.Publish(t, js, servertest.RoomEvent("r2", "participant_left", "ev-r2-barrier"))
	natstest.WaitFor(t, 15*time.Second, "the barrier", func() bool { return steady.Has("ev-r2-barrier") && flaky.Has("ev-r2-barrier") })
	want["roomhook_events_consumed_total"][labelKey("event", "participant_left")] = 1
	for _, id := range []string{a, b} {
		want["roomhook_deliveries_total"][delivery(id, "delivered", "2xx")]++
		want["roomhook_attempt_duration_seconds"][ep(id)]++
		want["roomhook_end_to_end_seconds"][ep(id)]++
	}
	fams := waitMetrics(t, p, want, "/metrics after the barrier")

	for _, name := range []string{"roomhook_attempt_duration_seconds", "roomhook_end_to_end_seconds"} {
		for _, m := range fams[name].GetMetric() {
			if h := m.GetHistogram(); h.GetSampleSum() <= 0 {
				t.Errorf("%s %v: sum %g, want a positive duration", name, m.GetLabel(), h.GetSampleSum())
			}
		}
	}
	for key, v := range seriesValues(fams, "roomhook_breakers_open") {
		if v != 0 {
			t.Errorf("roomhook_breakers_open{%s} = %g; one 500 must not open a breaker", key, v)
		}
	}
	for _, name := range []string{"roomhook_backlog", "go_goroutines", "process_start_time_seconds"} {
		if fams[name] == nil {
			t.Errorf("/metrics has no %s", name)
		}
	}
	for key, v := range seriesValues(fams, "roomhook_backlog") {
		if v < 0 {
			t.Errorf("roomhook_backlog{%s} = %g", key, v)
		}
	}
	// Bounded cardinality: no label value is a URL or a room.
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if v := l.GetValue(); strings.Contains(v, "://") || strings.Contains(v, "127.0.0.1") || v == "r1" || v == "r2" {
					t.Errorf("%s has label %s=%q", name, l.GetName(), v)
				}
			}
		}
	}
}

// TestReadyzFollowsNATS stops the NATS server under a running serve and starts it again on the
// same port with the same store: /readyz must turn 503 and come back to 200 by itself, /healthz
// stays 200 throughout, and deliveries go on afterwards.
func TestReadyzFollowsNATS(t *testing.T) {
	t.Parallel()
	ns := natstest.NewRestartable(t, "", "")
	rc := newReceiver(t, nil)
	c := servertest.Config(t, ns.URL(), rc.URL())
	logs := &lockedBuffer{}
	p := servertest.Start(t, c, logs)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("serve's log:\n%s", logs.String())
		}
	})
	js := ns.JetStream()
	servertest.Publish(t, js, servertest.RoomEvent("before", "room_started", "ev-before"))
	natstest.WaitFor(t, 10*time.Second, "delivery before the outage", func() bool { return rc.AnsweredCount() == 1 })

	ns.Stop()
	body := p.WaitStatus(t, "/readyz", http.StatusServiceUnavailable, 5*time.Second)
	if !strings.Contains(body, "NATS") {
		t.Errorf("/readyz during the outage says %q; want the reason", strings.TrimSpace(body))
	}
	if status, _ := p.Get(t, "/healthz"); status != http.StatusOK {
		t.Errorf("/healthz during the outage answered %d; a NATS outage must not get the process restarted", status)
	}
	if status, _ := p.Get(t, "/metrics"); status != http.StatusOK {
		t.Errorf("/metrics during the outage answered %d", status)
	}

	ns.Start()
	p.WaitStatus(t, "/readyz", http.StatusOK, 15*time.Second)
	// An event published after the restart is delivered: the replica works again, and it is
	// not work left over from before (that one was answered already).
	servertest.Publish(t, ns.JetStream(), servertest.RoomEvent("after", "room_started", "ev-after"))
	natstest.WaitFor(t, 20*time.Second, "delivery after NATS came back", func() bool { return rc.Has("ev-after") })
	if got := rc.Answered(); len(got) != 2 || got[0] != "ev-before" {
		t.Errorf("answered %v, want ev-before then ev-after, each once", got)
	}
	if status, body := p.Get(t, "/readyz"); status != http.StatusOK {
		t.Errorf("/readyz after NATS settled: %d %q", status, strings.TrimSpace(body))
	}
	p.Stop() // while NATS still runs: the restarted server's cleanup would stop it first; startServe's cleanup reports the error
}

// lockedBuffer collects log output written from many goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// parseLogLine reads one record of either format into its attributes.
func parseLogLine(format, line string) (map[string]string, error) {
	out := map[string]string{}
	if format == "json" {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			return nil, err
		}
		for k, v := range rec {
			out[k] = fmt.Sprint(v)
		}
		return out, nil
	}
	for rest := line; rest != ""; {
		rest = strings.TrimLeft(rest, " ")
		key, after, ok := strings.Cut(rest, "=")
		if !ok || key == "" || strings.ContainsAny(key, " \"") {
			return nil, fmt.Errorf("not key=value at %q", rest)
		}
		var value string
		if strings.HasPrefix(after, `"`) {
			quoted, err := strconv.QuotedPrefix(after)
			if err != nil {
				return nil, err
			}
			value, _ = strconv.Unquote(quoted)
			rest = after[len(quoted):]
		} else {
			value, rest, _ = strings.Cut(after, " ")
		}
		out[key] = value
	}
	return out, nil
}

var endpointIDPattern = regexp.MustCompile(`^[0-9a-f]{16}$`)

// deliveryMessages are the records about one delivery to one endpoint.
var deliveryMessages = []string{"delivered", "delivery failed; will retry", "delivery dead-lettered"}

// TestLogsCarryDeliveriesButNoSecrets runs deliveries, a retry, a rejected delivery and an
// invalid event at debug level, in both formats, with every kind of secret configured: the API
// secret, a NATS password (in the URL, or in ROOMHOOK_NATS_PASSWORD), an endpoint's own API
// secret, its Standard Webhooks secret and a token in its URL. None of them, and none of the
// tokens the receivers got, may appear in what the logger wrote; every delivery record names
// the room, the event id and the endpoint.
func TestLogsCarryDeliveriesButNoSecrets(t *testing.T) {
	t.Parallel()
	const (
		natsUser     = "roomhook"
		natsPassword = "nats-pw-4b9e1d7c2f"
		ownKey       = "lms-key"
		ownSecret    = "lms-own-secret-0a8f3e6d5c"
		whsecBase64  = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		whsec        = "whsec_" + whsecBase64
		urlToken     = "url-token-e2c4a6b8d0"
	)
	for _, tc := range []struct {
		format    string
		natsInURL bool // credentials in ROOMHOOK_NATS_URL rather than USER/PASSWORD
	}{
		{format: "text", natsInURL: true},
		{format: "json"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			t.Parallel()
			ns := natstest.NewRestartable(t, natsUser, natsPassword)
			// The endpoint with its own credentials answers 500 once, then 200.
			own := webhooktest.New(t, webhooktest.Options{
				Credentials:     signature.Credentials{APIKey: ownKey, APISecret: ownSecret},
				StandardSecrets: []string{whsec},
				Answer: func(id string, n int) int {
					if id == "ev-2" && n == 1 {
						return http.StatusInternalServerError
					}
					return 0
				},
			})
			// The endpoint signed with the API secret refuses one event: a dead letter.
			plain := newReceiver(t, func(id string, _ int) int {
				if id == "ev-3" {
					return http.StatusBadRequest
				}
				return 0
			})
			file := filepath.Join(t.TempDir(), "endpoints.yaml")
			content := fmt.Sprintf("endpoints:\n  - url: %s?token=%s\n    api_key: %s\n    api_secret: %s\n    standard_webhooks_secrets: [%s]\n",
				own.URL(), urlToken, ownKey, ownSecret, whsec)
			if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}

			c := servertest.Config(t, ns.URL(), plain.URL())
			c.EndpointsFile, c.LogFormat, c.LogLevel = file, tc.format, "debug"
			if tc.natsInURL {
				c.NATSURL = fmt.Sprintf("nats://%s:%s@127.0.0.1:%d", natsUser, natsPassword, ns.Port())
			} else {
				c.NATSUser, c.NATSPassword = natsUser, natsPassword
			}
			logs := &lockedBuffer{}
			p := servertest.Start(t, c, logs)

			js := ns.JetStream()
			servertest.Publish(t, js,
				servertest.RoomEvent("log-room", "room_started", "ev-1"),
				servertest.RoomEvent("log-room", "participant_joined", "ev-2"),
				servertest.RoomEvent("log-room", "room_finished", "ev-3"),
			)
			servertest.PublishGarbage(t, js, "log-room")
			natstest.WaitFor(t, 15*time.Second, "deliveries, the retry and the dead letters in the log", func() bool {
				out := logs.String()
				return own.AnsweredCount() == 3 && plain.AnsweredCount() == 2 &&
					strings.Contains(out, "delivery dead-lettered") && strings.Contains(out, "invalid event dead-lettered")
			})
			if err := p.Stop(); err != nil {
				t.Fatalf("serve: %v", err)
			}
			out := logs.String()

			secrets := map[string]string{
				"ROOMHOOK_API_SECRET": servertest.APISecret, "NATS password": natsPassword,
				"endpoint api_secret": ownSecret, "whsec_ secret": whsecBase64, "token in the endpoint URL": urlToken,
			}
			tokens := append(own.Tokens(), plain.Tokens()...)
			// own: 4 requests with Authorization, Hash-Token and webhook-signature; plain: 3 with two.
			if len(tokens) != 4*3+3*2 {
				t.Fatalf("receivers kept %d tokens, want 18", len(tokens))
			}
			for i, tok := range tokens {
				secrets[fmt.Sprintf("token #%d a receiver got", i)] = tok
				// A JWT's signature part, or a Standard Webhooks signature, on its own.
				if j := strings.LastIndexAny(tok, ".,"); j >= 0 && len(tok)-j > 16 {
					secrets[fmt.Sprintf("signature of token #%d", i)] = tok[j+1:]
				}
			}
			for what, secret := range secrets {
				if strings.Contains(out, secret) {
					t.Errorf("the log contains the %s", what)
				}
			}

			seen := map[string]int{}
			sc := bufio.NewScanner(strings.NewReader(out))
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				rec, err := parseLogLine(tc.format, sc.Text())
				if err != nil {
					t.Errorf("log line is not %s: %v: %s", tc.format, err, sc.Text())
					continue
				}
				msg := rec["msg"]
				_, hasEventID := rec["event_id"]
				if !slices.Contains(deliveryMessages, msg) && !hasEventID {
					continue
				}
				seen[msg]++
				if rec["room"] != "log-room" || rec["event_id"] == "" || !endpointIDPattern.MatchString(rec["endpoint"]) {
					t.Errorf("delivery record without room, event_id and endpoint id: %s", sc.Text())
				}
			}
			for msg, want := range map[string]int{"delivered": 5, "delivery failed; will retry": 1, "delivery dead-lettered": 1} {
				if seen[msg] != want {
					t.Errorf("%d %q records, want %d", seen[msg], msg, want)
				}
			}
			if tc.natsInURL && !strings.Contains(out, fmt.Sprintf("127.0.0.1:%d", ns.Port())) {
				t.Errorf("the log does not say which NATS server it uses (redacted)")
			}
		})
	}
}

// TestLogsFormatAndLevel checks ROOMHOOK_LOG_FORMAT and ROOMHOOK_LOG_LEVEL.
func TestLogsFormatAndLevel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		format, level string
		want          []string // messages that must appear, the others must not
	}{
		{"json", "debug", []string{"d", "i", "w", "e"}},
		{"json", "warn", []string{"w", "e"}},
		{"text", "info", []string{"i", "w", "e"}},
		{"text", "error", []string{"e"}},
	} {
		t.Run(tc.format+"-"+tc.level, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			log := server.NewLogger(server.Config{LogFormat: tc.format, LogLevel: tc.level}, &buf)
			log.Debug("d", "room", "r")
			log.Info("i", "room", "r")
			log.Warn("w", "room", "r")
			log.Error("e", "room", "r")
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				rec, err := parseLogLine(tc.format, line)
				if err != nil {
					t.Fatalf("not %s: %v: %s", tc.format, err, line)
				}
				if rec["room"] != "r" {
					t.Errorf("attribute lost: %s", line)
				}
				got = append(got, rec["msg"])
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("logged %v, want %v", got, tc.want)
			}
		})
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	natstest.ClearRoomhookEnv(t)
	const secret = "config-test-secret-5e7a"
	natsURL := map[string]string{"ROOMHOOK_NATS_URL": "nats://nats.example:4222"}
	tests := []struct {
		env   map[string]string
		unset []string // of the credentials every case gets otherwise
		want  string   // the variable the error must name; "" for a valid configuration
	}{
		{env: map[string]string{}},
		{env: map[string]string{}, unset: []string{"ROOMHOOK_API_KEY", "ROOMHOOK_API_SECRET"}}, // development credentials
		{env: natsURL},
		{env: map[string]string{"ROOMHOOK_TAKEOVER": "abc"}, want: "ROOMHOOK_TAKEOVER"},
		{env: map[string]string{"ROOMHOOK_TAKEOVER": "500ms"}, want: "ROOMHOOK_TAKEOVER"},
		{env: map[string]string{"ROOMHOOK_PARTITIONS": "0"}, want: "ROOMHOOK_PARTITIONS"},
		{env: map[string]string{"ROOMHOOK_PARTITIONS": "eight"}, want: "ROOMHOOK_PARTITIONS"},
		{env: map[string]string{"ROOMHOOK_REGION": "EU"}, want: "ROOMHOOK_REGION"},
		{env: map[string]string{"ROOMHOOK_RETRY_SCHEDULE": "1s,-2s"}, want: "ROOMHOOK_RETRY_SCHEDULE"},
		{env: map[string]string{"ROOMHOOK_RETRY_JITTER": "1.5"}, want: "ROOMHOOK_RETRY_JITTER"},
		{env: map[string]string{"ROOMHOOK_WEBHOOK_URLS": "https://ok.example/hook,ftp://x"}, want: "ROOMHOOK_WEBHOOK_URLS"},
		{env: map[string]string{"ROOMHOOK_LOG_FORMAT": "xml"}, want: "ROOMHOOK_LOG_FORMAT"},
		{env: map[string]string{"ROOMHOOK_LOG_LEVEL": "loud"}, want: "ROOMHOOK_LOG_LEVEL"},
		{env: map[string]string{"ROOMHOOK_HTTP_ADDR": "8080"}, want: "ROOMHOOK_HTTP_ADDR"},
		{env: map[string]string{"ROOMHOOK_HTTP_TIMEOUT": "0s"}, want: "ROOMHOOK_HTTP_TIMEOUT"},
		{env: map[string]string{"ROOMHOOK_MAX_CONNS_PER_HOST": "0"}, want: "ROOMHOOK_MAX_CONNS_PER_HOST"},
		{env: map[string]string{"ROOMHOOK_MAX_CONNS_PER_HOST": "many"}, want: "ROOMHOOK_MAX_CONNS_PER_HOST"},
		{env: map[string]string{"ROOMHOOK_MAX_CONNS_PER_HOST": "65", "ROOMHOOK_MAX_CONNS": "64"}, want: "ROOMHOOK_MAX_CONNS_PER_HOST"},
		{env: map[string]string{"ROOMHOOK_MAX_CONNS": "0"}, want: "ROOMHOOK_MAX_CONNS:"},
		{env: map[string]string{"ROOMHOOK_MAX_CONNS": "32"}}, // below the default per-host bound, which follows it down
		{env: map[string]string{"ROOMHOOK_MAX_CONNS_PER_HOST": "8", "ROOMHOOK_MAX_CONNS": "8"}},
		{env: map[string]string{"ROOMHOOK_PER_ROOM_WEBHOOKS": "maybe"}, want: "ROOMHOOK_PER_ROOM_WEBHOOKS"},
		{env: map[string]string{"ROOMHOOK_STREAM_REPLICAS": "7"}, want: "ROOMHOOK_STREAM_REPLICAS"},
		{env: map[string]string{"ROOMHOOK_MAX_EVENT_BYTES": "-1"}, want: "ROOMHOOK_MAX_EVENT_BYTES"},
		{env: map[string]string{"ROOMHOOK_ENDPOINTS_FILE": "/nonexistent/endpoints.yaml"}, want: "ROOMHOOK_ENDPOINTS_FILE"},
		{env: natsURL, unset: []string{"ROOMHOOK_API_KEY"}, want: "ROOMHOOK_API_KEY"},
		{env: natsURL, unset: []string{"ROOMHOOK_API_SECRET"}, want: "ROOMHOOK_API_SECRET"},
	}
	for _, tc := range tests {
		name := cmp.Or(tc.want, "valid")
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"ROOMHOOK_API_KEY": "config-test-key", "ROOMHOOK_API_SECRET": secret}
			maps.Copy(env, tc.env)
			for _, k := range tc.unset {
				delete(env, k)
			}
			for k, v := range env {
				t.Setenv(k, v)
			}
			_, err := server.LoadConfig(server.ScopeServe)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("valid configuration %v refused: %v", env, err)
			case tc.want == "":
			case err == nil:
				t.Errorf("%v accepted", env)
			case !strings.Contains(err.Error(), tc.want):
				t.Errorf("error does not name %s: %v", tc.want, err)
			case strings.Contains(err.Error(), secret):
				t.Errorf("error repeats the API secret: %v", err)
			}
		})
	}
}
