package subscriber_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/subscriber"
)

var testUsers = []subscriber.User{
	{Name: "media", Password: "media-pw", Role: subscriber.RoleMediaNode},
	{Name: "roomhook", Password: "roomhook-pw", Role: subscriber.RoleDispatcher},
	{Name: "viewer", Password: "viewer-pw", Role: subscriber.RoleReadOnlyOperator},
	{Name: "ops", Password: "ops-pw", Role: subscriber.RoleOperator},
	{Name: "analytics", Password: "analytics-pw", Role: subscriber.RoleReader},
}

// withAuthorization loads the rendered authorization block the way nats-server loads its
// configuration file, so the test proves the text an operator pastes, not only the lists.
func withAuthorization(t *testing.T, names subscriber.Names, users []subscriber.User) natstest.Option {
	t.Helper()
	conf, err := names.AuthorizationConfig(users)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	parsed, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server refuses the rendered configuration: %v\n%s", err, conf)
	}
	if len(parsed.Users) != len(users) {
		t.Fatalf("rendered configuration has %d users, want %d", len(parsed.Users), len(users))
	}
	return func(o *server.Options) { o.Users = parsed.Users }
}

// denied reports whether the server refuses nc's publish on subject: it answers a refused
// publish with a permissions error before the flush's pong.
func denied(t *testing.T, nc *nats.Conn, subject string) bool {
	t.Helper()
	if err := nc.Publish(subject, []byte("probe")); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	last := nc.LastError()
	return errors.Is(last, nats.ErrPermissionViolation) && strings.Contains(last.Error(), `"`+subject+`"`)
}

func connectAs(t *testing.T, ns *server.Server, user string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	for _, u := range testUsers {
		if u.Name == user {
			return natstest.Connect(t, ns.ClientURL(), nats.UserInfo(u.Name, u.Password), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
		}
	}
	t.Fatalf("no test user %s", user)
	return nil, nil
}

func TestPermissionsRoles(t *testing.T) {
	names := subscriber.Names{Region: "eu-1"}
	ns := natstest.NewServer(t, withAuthorization(t, names, testUsers))
	ctx := context.Background()

	// The dispatcher makes what roomhook makes.
	_, rjs := connectAs(t, ns, "roomhook")
	if _, err := rjs.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: names.EventsStream(), Subjects: []string{names.EventsSubjects()}}); err != nil {
		t.Fatalf("dispatcher creates the events stream: %v", err)
	}
	dlq, err := rjs.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: names.DLQStream(), Subjects: []string{names.DLQSubjects()}})
	if err != nil {
		t.Fatalf("dispatcher creates the dead-letter stream: %v", err)
	}
	if _, err := rjs.Publish(ctx, names.DLQSubject("invalid"), []byte("dead letter")); err != nil {
		t.Fatalf("dispatcher dead-letters: %v", err)
	}
	kv, err := rjs.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: names.RoomsBucket()})
	if err != nil {
		t.Fatalf("dispatcher creates a bucket: %v", err)
	}
	if _, err := kv.Put(ctx, "room-a", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(ctx, "room-a"); err != nil || string(e.Value()) != "{}" {
		t.Fatalf("dispatcher reads its bucket: %v", err)
	}
	if _, err := dlq.GetMsg(ctx, 1); err != nil {
		t.Fatalf("dispatcher reads its dead letters: %v", err)
	}

	// A media node publishes events with a JetStream ack.
	_, mjs := connectAs(t, ns, "media")
	if _, err := mjs.Publish(ctx, "roomhook.events.eu-1.room-a.room_started", []byte("event")); err != nil {
		t.Fatalf("media node publishes an event: %v", err)
	}

	// A reader consumes the events with a consumer of its own.
	_, ajs := connectAs(t, ns, "analytics")
	cons, err := ajs.CreateOrUpdateConsumer(ctx, names.EventsStream(), jetstream.ConsumerConfig{Durable: "analytics"})
	if err != nil {
		t.Fatalf("reader creates its consumer: %v", err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if err := m.Ack(); err != nil || string(m.Data()) != "event" {
			t.Errorf("reader got %q, ack %v", m.Data(), err)
		}
	}

	tests := []struct {
		user, subject string
		allowed       bool
	}{
		{"media", "roomhook.events.eu-1.room-b.participant_joined", true},
		{"media", "roomhook.events.us.room-b.participant_joined", false},         // another region
		{"media", "roomhook.events.eu-1.room-b", false},                          // no event token
		{"media", "roomhook.events.eu-1.room-b.participant_joined.extra", false}, // a token too many
		{"media", "roomhook.admin.eu-1.read.status", false},
		{"media", "roomhook.admin.eu-1.write.dlq.purge", false},
		{"media", "$JS.API.STREAM.MSG.GET." + names.DLQStream(), false},
		{"media", "$JS.API.CONSUMER.CREATE." + names.DLQStream(), false},
		{"media", "$JS.API.DIRECT.GET." + names.DLQStream(), false},
		{"media", names.DLQSubject("invalid"), false},
		{"media", "$KV." + names.RoomsBucket() + ".room-a", false},
		{"viewer", "roomhook.admin.eu-1.read.status", true},
		{"viewer", "roomhook.admin.eu-1.read.dlq.list", true},
		{"viewer", "roomhook.admin.eu-1.write.dlq.purge", false},
		{"viewer", "roomhook.admin.eu-1.write.endpoints.pause", false},
		{"viewer", "$JS.API.STREAM.PURGE." + names.DLQStream(), false},
		{"viewer", "roomhook.events.eu-1.room-a.room_created", false},
		{"ops", "roomhook.admin.eu-1.write.dlq.purge", true},
		{"ops", "roomhook.admin.eu-1.read.status", true},
		{"ops", "$JS.API.STREAM.PURGE." + names.DLQStream(), false},
		{"ops", "roomhook.events.eu-1.room-a.room_created", false},
		{"analytics", "roomhook.events.eu-1.room-a.room_created", false},
		{"analytics", "$JS.API.STREAM.PURGE." + names.EventsStream(), false},
		{"analytics", "$JS.API.STREAM.MSG.GET." + names.DLQStream(), false},
		{"analytics", "roomhook.admin.eu-1.read.status", false},
		{"roomhook", "$JS.API.STREAM.PURGE." + names.EventsStream(), false},
		{"roomhook", "$JS.API.STREAM.DELETE." + names.EventsStream(), false},
		{"roomhook", "roomhook.events.eu-1.room-a.room_created", false}, // no ingest
		{"roomhook", names.SpillSubject("0123456789abcdef", 3, 1), true},
		{"roomhook", names.NotifySubject(3), true},
	}
	for _, tt := range tests {
		t.Run(tt.user+" "+tt.subject, func(t *testing.T) {
			nc, _ := connectAs(t, ns, tt.user)
			if got := !denied(t, nc, tt.subject); got != tt.allowed {
				t.Errorf("%s publishing on %s: allowed %v, want %v", tt.user, tt.subject, got, tt.allowed)
			}
		})
	}
}

func TestPermissionsIngestAndErrors(t *testing.T) {
	names := subscriber.Names{Region: "default"}
	p, err := names.Permissions(subscriber.RoleDispatcher, subscriber.PermissionOptions{Ingest: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(p.Publish, " "), names.EventsPublishSubjects()) {
		t.Errorf("a dispatcher serving the ingest may not publish events: %v", p.Publish)
	}
	if _, err := names.Permissions("admin", subscriber.PermissionOptions{}); !errors.Is(err, subscriber.ErrUnknownRole) {
		t.Errorf("unknown role: %v", err)
	}
	if _, err := names.AuthorizationConfig([]subscriber.User{{Role: subscriber.RoleOperator}}); err == nil {
		t.Error("a user without a name was rendered")
	}
	for _, role := range subscriber.Roles() {
		if _, err := names.Permissions(role, subscriber.PermissionOptions{}); err != nil {
			t.Errorf("role %s: %v", role, err)
		}
	}
}
