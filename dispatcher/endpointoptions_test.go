package dispatcher

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/webhook"

	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/schema/signature"
)

func TestEndpointFilterCredentialsAndStandardWebhooksRotation(t *testing.T) {
	ns := startServer(t, t.TempDir())
	own := signature.Credentials{APIKey: "lms-key", APISecret: "lms-secret-with-enough-length-0123456789"}
	oldSecret, newSecret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_dGhpcyBpcyBhIG5ldyBzZWNyZXQgb2Yga2V5cw=="
	var mu sync.Mutex
	var events []string
	var problems []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := webhook.Receive(r, auth.NewSimpleKeyProvider(own.APIKey, own.APISecret))
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			problems = append(problems, "own credentials: "+err.Error())
		}
		// Each secret of the rotation verifies on its own.
		for _, s := range []string{oldSecret, newSecret} {
			if err := signature.VerifyStandard([]string{s}, r.Header, body, time.Minute, time.Now()); err != nil {
				problems = append(problems, "standard webhooks "+s[:10]+": "+err.Error())
			}
		}
		if n := len(strings.Fields(r.Header.Get("webhook-signature"))); n != 2 {
			problems = append(problems, "want two signatures during rotation")
		}
		evt, _ := decodeBody(body)
		events = append(events, evt.Event)
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	everything := newReceiver(t)

	cfg := testConfig("r1", everything.URL())
	cfg.Endpoints = append(cfg.Endpoints, endpoint.Endpoint{
		ID: endpoint.ID(srv.URL), URL: srv.URL, Global: true, Credentials: own,
		StandardSecrets: []string{oldSecret, newSecret},
		Filter:          endpoint.EventFilter{Include: []string{"room_started", "room_finished", "participant_joined"}, Exclude: []string{"participant_joined"}},
	})
	startReplica(t, ns, cfg)
	_, js := connect(t, ns)
	p := publisher{t, js}
	for i, name := range []string{"room_started", "participant_joined", "track_published", "room_finished"} {
		p.publish(newEvent("r", name, "ev-r-"+string(rune('0'+i)), 0))
	}
	waitFor(t, 10*time.Second, "all events at the unfiltered endpoint", func() bool { return everything.count() == 4 })
	// room_finished is the room's last event: a filtered-out event delivered by mistake would
	// have come before it, in the room's order.
	waitFor(t, 10*time.Second, "room_finished at the filtered endpoint", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(events, "room_finished")
	})
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(events, ",") != "room_started,room_finished" {
		t.Errorf("filtered endpoint got %v, want room_started,room_finished", events)
	}
	for _, p := range problems {
		t.Error(p)
	}
}
