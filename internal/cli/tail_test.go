package cli

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/roomhookv1"
)

// lockedBuffer is a bytes.Buffer the command writes to while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestTailCommand runs `roomhook tail` against a real stream: --since and --room select the
// stored events of one room, printed as webhook bodies; events stored later arrive live, and a
// barrier of the room shows the other room's event was left out. Ctrl-C ends it without error.
func TestTailCommand(t *testing.T) {
	ns := natstest.NewServer(t)
	_, js := natstest.Connect(t, ns.ClientURL())
	t.Setenv("ROOMHOOK_NATS_URL", ns.ClientURL())
	t.Setenv("ROOMHOOK_REGION", "default")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: schema.EventsStreamName("default"), Subjects: []string{schema.EventsSubjects("default")}, Duplicates: 2 * time.Minute,
	}); err != nil {
		t.Fatal(err)
	}
	publish := func(room, id string) {
		t.Helper()
		evt := &roomhookv1.Event{Event: proto.String("room_started"), Room: &roomhookv1.NotifyEventRoom{RoomId: proto.String(room)}, Id: proto.String(id), CreatedAt: proto.Int64(1761815000)}
		if _, err := schema.Publish(ctx, js, "default", evt); err != nil {
			t.Fatal(err)
		}
	}
	publish("a", "EV_stored")
	publish("b", "EV_other_room")

	tests := []struct {
		name string
		args []string
		want func(id string) string
	}{
		{name: "json", args: []string{"--json"}, want: func(id string) string {
			return `{"event":"room_started","room":{"room_id":"a"},"id":"` + id + `","created_at":"1761815000"}` + "\n"
		}},
		{name: "text", args: nil, want: func(id string) string {
			return `  a  room_started  #`
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr lockedBuffer
			runCtx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() {
				done <- tailCommand(runCtx, append([]string{"--since", "1h", "--room", "a"}, tt.args...), &stdout, &stderr)
			}()
			waitForOutput(t, &stdout, "EV_stored")
			barrier := "EV_barrier_" + tt.name
			publish("b", "EV_later_other_"+tt.name)
			publish("a", barrier)
			waitForOutput(t, &stdout, barrier)
			stop()
			if err := <-done; err != nil {
				t.Fatalf("tail: %v (stderr %q)", err, stderr.String())
			}
			out := stdout.String()
			if strings.Contains(out, "EV_other") || strings.Contains(out, "EV_later_other") {
				t.Fatalf("another room's event was printed:\n%s", out)
			}
			lines := strings.SplitAfter(strings.TrimSuffix(out, "\n"), "\n")
			if len(lines) < 2 {
				t.Fatalf("output:\n%s", out)
			}
			if !strings.Contains(lines[0], tt.want("EV_stored")) {
				t.Fatalf("first line %q, want %q", lines[0], tt.want("EV_stored"))
			}
		})
	}
}

func waitForOutput(t *testing.T, out *lockedBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the output:\n%s", want, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
