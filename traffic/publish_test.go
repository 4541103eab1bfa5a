package traffic

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/internal/natstest"
	"github.com/roomhook/roomhook/schema"
)

// newStream runs an embedded JetStream server with the events stream of region "default",
// as the dispatcher provisions it (limits retention, 2-minute duplicate window).
func newStream(t testing.TB) (jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	_, js := natstest.Connect(t, natstest.NewServer(t).ClientURL())
	stream, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: schema.EventsStreamName("default"), Subjects: []string{schema.EventsSubjects("default")},
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	return js, stream
}

func TestPublishStoresEveryEventInOrder(t *testing.T) {
	js, stream := newStream(t)
	ctx := context.Background()
	g, err := NewGenerator(Config{Run: "pub", Seed: 3, Rooms: 4, Participants: 3})
	if err != nil {
		t.Fatal(err)
	}
	var published []string
	st, err := Publish(ctx, js, g, PublishOptions{Window: 16, OnPublish: func(id string, _ time.Time) { published = append(published, id) }})
	if err != nil {
		t.Fatal(err)
	}
	if st.Published != len(published) || st.Duplicates != 0 || st.Published < 4*20 {
		t.Fatalf("stats %+v, OnPublish saw %d", st, len(published))
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(st.Published) {
		t.Fatalf("stream holds %d messages, published %d", info.State.Msgs, st.Published)
	}
	lastSeq := map[string]uint64{}
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		evt, err := schema.DecodeEvent(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if m.Header.Get(jetstream.MsgIDHeader) != evt.GetId() || evt.GetId() != published[seq-1] {
			t.Fatalf("message %d: Nats-Msg-Id %q, event id %q, published %q", seq, m.Header.Get(jetstream.MsgIDHeader), evt.GetId(), published[seq-1])
		}
		addr, err := schema.ParseSubject(m.Subject)
		if err != nil || addr.Room != evt.GetRoom().GetRoomId() || addr.Event != evt.GetEvent() {
			t.Fatalf("message %d on %s: %+v, %v", seq, m.Subject, addr, err)
		}
		id, _ := ParseEventID(evt.GetId())
		if id.Seq != lastSeq[id.RoomKey()]+1 {
			t.Fatalf("room %s: stored #%d after #%d", id.RoomKey(), id.Seq, lastSeq[id.RoomKey()])
		}
		lastSeq[id.RoomKey()] = id.Seq
	}

	// The same traffic again (same run, same seed) is stored once: ids are Nats-Msg-Ids.
	again, _ := NewGenerator(Config{Run: "pub", Seed: 3, Rooms: 4, Participants: 3})
	st2, err := Publish(ctx, js, again, PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st2.Duplicates != st.Published {
		t.Errorf("republishing: %d duplicates, want %d", st2.Duplicates, st.Published)
	}
}

func TestPublishRateAndLimit(t *testing.T) {
	js, _ := newStream(t)
	g, _ := NewGenerator(Config{Run: "rate", Rooms: 3, Continuous: true})
	const events, rate = 150, 500.0
	st, err := Publish(context.Background(), js, g, PublishOptions{Rate: rate, Events: events})
	if err != nil {
		t.Fatal(err)
	}
	if st.Published != events {
		t.Fatalf("published %d, want %d", st.Published, events)
	}
	// 150 events at 500/s take about 300ms: the schedule's last slot is at 298ms.
	if min := 280 * time.Millisecond; st.Elapsed < min || st.Elapsed > 3*time.Second {
		t.Errorf("took %s at %v ev/s for %d events", st.Elapsed, rate, events)
	}
}

func TestPublishStopsWithContext(t *testing.T) {
	js, _ := newStream(t)
	g, _ := NewGenerator(Config{Run: "ctx", Continuous: true})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	st, err := Publish(ctx, js, g, PublishOptions{Rate: 100})
	if err == nil || st.Published < 5 || st.Published > 40 {
		t.Errorf("Publish = %+v, %v; want it to stop with the context after about 20 events", st, err)
	}
}

func TestPublishNeedsStream(t *testing.T) {
	_, js := natstest.Connect(t, natstest.NewServer(t).ClientURL())
	g, _ := NewGenerator(Config{Run: "nostream"})
	if _, err := Publish(context.Background(), js, g, PublishOptions{}); !errors.Is(err, ErrNoStream) {
		t.Fatalf("Publish without a stream: %v, want ErrNoStream", err)
	}
	// With a wait, a stream created meanwhile (as a starting dispatcher does) is used.
	created := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		_, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "LATE", Subjects: []string{schema.EventsSubjects("default")}})
		created <- err
	}()
	st, err := Publish(context.Background(), js, g, PublishOptions{WaitForStream: 5 * time.Second})
	if err := <-created; err != nil {
		t.Fatalf("create the stream: %v", err)
	}
	if err != nil || st.Published == 0 || st.Retried != 0 {
		t.Fatalf("Publish waiting for the stream: %+v, %v", st, err)
	}
}

// losingJS is a JetStream that loses the acknowledgement of the first asynchronous publish:
// its future never resolves (the message is not sent either).
type losingJS struct {
	jetstream.JetStream
	lost bool
}

type lostFuture struct{ msg *nats.Msg }

func (f lostFuture) Ok() <-chan *jetstream.PubAck { return nil }
func (f lostFuture) Err() <-chan error            { return nil }
func (f lostFuture) Msg() *nats.Msg               { return f.msg }

func (js *losingJS) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if !js.lost {
		js.lost = true
		return lostFuture{msg: m}, nil
	}
	return js.JetStream.PublishMsgAsync(m, opts...)
}

func TestPublishRetriesALostAcknowledgement(t *testing.T) {
	js, stream := newStream(t)
	g, _ := NewGenerator(Config{Run: "lost", Rooms: 2, Continuous: true})
	const events = 50
	st, err := Publish(context.Background(), &losingJS{JetStream: js}, g, PublishOptions{Events: events, Window: 8, AckTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if st.Published != events || st.Retried != 1 || st.Duplicates != 0 {
		t.Fatalf("stats %+v, want %d published, 1 retried", st, events)
	}
	info, err := stream.Info(context.Background())
	if err != nil || info.State.Msgs != events {
		t.Fatalf("stream: %+v, %v; want %d messages", info, err, events)
	}
}
