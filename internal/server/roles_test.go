package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/roomhook/roomhook/admin"
	"github.com/roomhook/roomhook/deadletter"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/internal/server/servertest"
	"github.com/roomhook/roomhook/internal/webhooktest"
	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/roomhookv1"
	"github.com/roomhook/roomhook/subscriber"
)

const roleRegion = "default"

var roleUsers = []subscriber.User{
	{Name: "media", Password: "media-pw-1", Role: subscriber.RoleMediaNode},
	{Name: "roomhook", Password: "roomhook-pw-1", Role: subscriber.RoleDispatcher},
	{Name: "viewer", Password: "viewer-pw-1", Role: subscriber.RoleReadOnlyOperator},
	{Name: "ops", Password: "ops-pw-1", Role: subscriber.RoleOperator},
	{Name: "analytics", Password: "analytics-pw-1", Role: subscriber.RoleReader},
}

// violations records what the NATS server refused, from its own log.
type violations struct {
	mu    sync.Mutex
	lines []string
}

func (v *violations) record(format string, args []any) {
	line := fmt.Sprintf(format, args...)
	if strings.Contains(strings.ToLower(line), "violation") {
		v.mu.Lock()
		v.lines = append(v.lines, line)
		v.mu.Unlock()
	}
}

func (v *violations) Noticef(f string, a ...any) { v.record(f, a) }
func (v *violations) Warnf(f string, a ...any)   { v.record(f, a) }
func (v *violations) Fatalf(f string, a ...any)  { v.record(f, a) }
func (v *violations) Errorf(f string, a ...any)  { v.record(f, a) }
func (v *violations) Debugf(f string, a ...any)  {}
func (v *violations) Tracef(f string, a ...any)  {}

func (v *violations) of(user string) []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for _, l := range v.lines {
		if strings.Contains(l, "/user:"+user+`"`) {
			out = append(out, l)
		}
	}
	return out
}

func (v *violations) all() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.lines...)
}

// rolesServer runs nats-server with the rendered authorization configuration of every role,
// loaded as nats-server loads its configuration file.
func rolesServer(t *testing.T) (*natsserver.Server, *violations) {
	t.Helper()
	conf, err := subscriber.Names{Region: roleRegion}.AuthorizationConfig(roleUsers)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	parsed, err := natsserver.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server refuses the rendered configuration: %v", err)
	}
	ns := natstest.NewServer(t, func(o *natsserver.Options) { o.Users = parsed.Users })
	v := &violations{}
	ns.SetLoggerV2(v, false, false, false)
	return ns, v
}

func connectAs(t *testing.T, ns *natsserver.Server, name string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	for _, u := range roleUsers {
		if u.Name == name {
			return natstest.Connect(t, ns.ClientURL(), nats.UserInfo(u.Name, u.Password),
				nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
		}
	}
	t.Fatalf("no user %s", name)
	return nil, nil
}

// refused reports whether the server refuses nc's publish on subject; it answers a refused
// publish with a permissions error before the flush's pong.
func refused(t *testing.T, nc *nats.Conn, subject string) bool {
	t.Helper()
	if err := nc.Publish(subject, nil); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	last := nc.LastError()
	return errors.Is(last, nats.ErrPermissionViolation) && strings.Contains(last.Error(), `"`+subject+`"`)
}

func publishEvent(t *testing.T, js jetstream.JetStream, evt *roomhookv1.Event) {
	t.Helper()
	if _, err := schema.Publish(context.Background(), js, roleRegion, evt); err != nil {
		t.Fatal(err)
	}
}

func event(room, name, id string, urls ...string) *roomhookv1.Event {
	return &roomhookv1.Event{
		Id: proto.String(id), Event: proto.String(name), WebhookUrls: urls,
		Room: &roomhookv1.NotifyEventRoom{Sid: proto.String("RM_" + room), RoomId: proto.String(room)},
	}
}

// roomhook runs with the dispatcher role alone: it provisions, delivers to a global and a
// per-room endpoint (one delivery retried through the spill queue), dead-letters, and serves
// the admin API, with no permission refused. The media node can publish events but neither call
// the admin API nor read dead letters; the read-only operator lists but cannot purge; the full
// operator purges; a reader consumes the events with a consumer of its own.
func TestRolesWithNATSServer(t *testing.T) {
	ns, refusals := rolesServer(t)
	ctx := context.Background()
	creds := servertest.Credentials()
	global := webhooktest.New(t, webhooktest.Options{Credentials: creds})
	perRoom := webhooktest.New(t, webhooktest.Options{Credentials: creds, Answer: func(id string, attempt int) int {
		if id == "ev-retry" && attempt == 1 {
			return 503
		}
		return 200
	}})
	c := servertest.Config(t, ns.ClientURL(), global.URL())
	c.NATSUser, c.NATSPassword = "roomhook", "roomhook-pw-1"
	c.AllowedTargets = []string{"127.0.0.1/32"} // the per-room receiver is on loopback; only it
	servertest.Start(t, c, io.Discard)

	_, media := connectAs(t, ns, "media")
	publishEvent(t, media, event("room-a", "room_created", "ev-created", perRoom.URL()+"?token=room-secret"))
	publishEvent(t, media, event("room-a", "participant_joined", "ev-retry"))
	publishEvent(t, media, event("room-a", "room_started", "ev-last"))
	subject, _ := schema.Address{Region: roleRegion, Room: "room-z", Event: "room_started"}.Subject()
	if _, err := media.Publish(ctx, subject, []byte{0xff, 0xff}); err != nil {
		t.Fatalf("media node publishes: %v", err)
	}
	natstest.WaitFor(t, 20*time.Second, "every event at both endpoints", func() bool {
		return global.Has("ev-last") && perRoom.Has("ev-last")
	})
	if !perRoom.Has("ev-retry") || perRoom.Attempts("ev-retry") < 2 {
		t.Errorf("per-room endpoint: ev-retry answered %v after %d attempts, want delivered on a retry", perRoom.Has("ev-retry"), perRoom.Attempts("ev-retry"))
	}

	viewerNC, _ := connectAs(t, ns, "viewer")
	viewer := admin.NewClient(viewerNC, roleRegion, admin.WithTimeout(10*time.Second))
	var invalid admin.DeadLetterList
	natstest.WaitFor(t, 20*time.Second, "the invalid event's dead letter", func() bool {
		var err error
		invalid, err = viewer.ListDeadLetters(ctx, admin.Filter{Reason: deadletter.ReasonInvalid})
		return err == nil && invalid.Matched == 1
	})
	if _, err := viewer.Status(ctx); err != nil {
		t.Errorf("read-only operator: status: %v", err)
	}
	eps, err := viewer.ListEndpoints(ctx)
	if err != nil || len(eps) != 2 {
		t.Errorf("read-only operator: endpoints list: %d, %v", len(eps), err)
	}
	for _, ep := range eps {
		if strings.Contains(ep.URL, "room-secret") {
			t.Errorf("endpoints list shows %q", ep.URL)
		}
	}
	if _, err := viewer.ShowDeadLetter(ctx, invalid.DeadLetters[0].Seq); err != nil {
		t.Errorf("read-only operator: dlq show: %v", err)
	}
	if _, err := viewer.PurgeDeadLetters(ctx, admin.PurgeRequest{All: true}); !errors.Is(err, admin.ErrNotPermitted) {
		t.Errorf("read-only operator: purge answered %v, want ErrNotPermitted", err)
	}
	if _, err := viewer.PauseEndpoint(ctx, global.URL()); !errors.Is(err, admin.ErrNotPermitted) {
		t.Errorf("read-only operator: pause answered %v, want ErrNotPermitted", err)
	}

	mediaNC, _ := connectAs(t, ns, "media")
	mediaAdmin := admin.NewClient(mediaNC, roleRegion, admin.WithTimeout(10*time.Second))
	if _, err := mediaAdmin.ListDeadLetters(ctx, admin.Filter{}); !errors.Is(err, admin.ErrNotPermitted) {
		t.Errorf("media node: dlq list answered %v, want ErrNotPermitted", err)
	}
	for _, subject := range []string{
		"$JS.API.STREAM.MSG.GET.ROOMHOOK_DLQ_DEFAULT", "$JS.API.DIRECT.GET.ROOMHOOK_DLQ_DEFAULT",
		"$JS.API.CONSUMER.CREATE.ROOMHOOK_DLQ_DEFAULT", "$JS.API.STREAM.INFO.ROOMHOOK_DLQ_DEFAULT",
	} {
		if !refused(t, mediaNC, subject) {
			t.Errorf("media node may publish on %s", subject)
		}
	}

	opsNC, _ := connectAs(t, ns, "ops")
	ops := admin.NewClient(opsNC, roleRegion, admin.WithTimeout(10*time.Second))
	if res, err := ops.PurgeDeadLetters(ctx, admin.PurgeRequest{Filter: admin.Filter{Reason: deadletter.ReasonInvalid}}); err != nil || res.Purged != 1 {
		t.Errorf("operator: purge answered %+v, %v; want 1 purged", res, err)
	}

	_, reader := connectAs(t, ns, "analytics")
	cons, err := reader.CreateOrUpdateConsumer(ctx, "ROOMHOOK_EVENTS_DEFAULT", jetstream.ConsumerConfig{Durable: "analytics"})
	if err != nil {
		t.Fatalf("reader: own consumer: %v", err)
	}
	batch, err := cons.Fetch(4, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for m := range batch.Messages() {
		n++
		_ = m.Ack()
	}
	if n != 4 {
		t.Errorf("reader fetched %d events, want 4", n)
	}

	if got := refusals.of("roomhook"); len(got) != 0 {
		t.Errorf("the dispatcher role was refused: %q", got)
	}
	if len(refusals.of("viewer")) == 0 || len(refusals.of("media")) == 0 {
		t.Errorf("the server's refusals were not seen (%q), so the dispatcher's check above proves nothing", refusals.all())
	}
}

// With the guard on (the default outside the embedded mode), a per-room URL on loopback gets
// no connection and its deliveries are dead-lettered forbidden, with the address and a
// redacted URL; a global endpoint on loopback still gets everything (the barrier).
func TestServeGuardsPerRoomURLs(t *testing.T) {
	ns := natstest.NewServer(t)
	ctx := context.Background()
	creds := servertest.Credentials()
	global := webhooktest.New(t, webhooktest.Options{Credentials: creds})
	perRoom := webhooktest.New(t, webhooktest.Options{Credentials: creds})
	c := servertest.Config(t, ns.ClientURL(), global.URL())
	c.AllowedTargets = nil // the production default: loopback refused
	servertest.Start(t, c, io.Discard)
	nc, js := natstest.Connect(t, ns.ClientURL())

	publishEvent(t, js, event("room-a", "room_created", "ev-1", perRoom.URL()+"?token=room-secret"))
	publishEvent(t, js, event("room-a", "room_started", "ev-2"))
	client := admin.NewClient(nc, roleRegion, admin.WithTimeout(10*time.Second))
	var forbidden admin.DeadLetterList
	natstest.WaitFor(t, 20*time.Second, "forbidden dead letters for both events", func() bool {
		var err error
		forbidden, err = client.ListDeadLetters(ctx, admin.Filter{Reason: deadletter.ReasonForbidden})
		return err == nil && forbidden.Matched == 2
	})
	natstest.WaitFor(t, 20*time.Second, "the global endpoint's deliveries", func() bool { return global.Has("ev-2") })
	if n := perRoom.AnsweredCount(); n != 0 || perRoom.Attempts("ev-1") != 0 {
		t.Errorf("the per-room receiver on loopback got %d requests", n)
	}
	for _, dl := range forbidden.DeadLetters {
		if !strings.Contains(dl.LastError, "127.0.0.1") || strings.Contains(dl.EndpointURL, "room-secret") ||
			dl.EndpointID != endpoint.ID(perRoom.URL()+"?token=room-secret") || dl.Attempts > 1 {
			t.Errorf("dead letter %+v: want the refused address, a redacted URL and one attempt", dl)
		}
	}
}
