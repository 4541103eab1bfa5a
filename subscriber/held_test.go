package subscriber

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomhook/roomhook/internal/natstest"
)

// testStream is the stream newTestConsumer makes.
const testStream = "TEST"

// newTestConsumer starts a server of its own with a stream of n messages (retention as given)
// and a durable explicit-ack consumer "c" on it with the given ack wait; publish adds more.
func newTestConsumer(t *testing.T, retention jetstream.RetentionPolicy, n int, ackWait time.Duration) (jetstream.JetStream, jetstream.Consumer, func(n int)) {
	t.Helper()
	ns := natstest.NewServer(t)
	_, js := natstest.Connect(t, ns.ClientURL())
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: testStream, Subjects: []string{"test.>"}, Retention: retention}); err != nil {
		t.Fatal(err)
	}
	publish := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if _, err := js.Publish(ctx, "test.x", nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(n)
	cons, err := js.CreateOrUpdateConsumer(ctx, testStream, jetstream.ConsumerConfig{
		Durable: "c", AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait, MaxDeliver: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return js, cons, publish
}

// TestKeepAliveMarksOnlyLongHeldMessages: a message held past its ack wait is not redelivered,
// since KeepAlive marks it in progress; one settled within half a keep-alive interval of being
// pulled, as most are, is never marked, so a busy consumer does not add to its
// acknowledgement traffic. (Marking every held message at every tick, eight messages each
// held for 45% of an interval would see a tick all but certainly: 99%.)
func TestKeepAliveMarksOnlyLongHeldMessages(t *testing.T) {
	ctx := context.Background()
	const short = 8
	const ackWait = 600 * time.Millisecond
	js, cons, _ := newTestConsumer(t, jetstream.LimitsPolicy, 1+short, ackWait)
	nc := js.Conn()
	marks := make(chan *nats.Msg, 64)
	if _, err := nc.ChanSubscribe("$JS.ACK."+testStream+".>", marks); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	b, err := cons.Fetch(1+short, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []jetstream.Msg
	for m := range b.Messages() {
		msgs = append(msgs, m)
	}
	if len(msgs) != 1+short {
		t.Fatalf("fetched %d messages, want %d", len(msgs), 1+short)
	}
	const every = ackWait / 3
	held := NewHeldSet()
	held.Add(1, msgs[0])
	kctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); held.KeepAlive(kctx, every) }()
	start := time.Now()
	for i := 1; i <= short; i++ {
		held.Add(uint64(i+1), msgs[i])
		time.Sleep(every * 45 / 100)
		held.Release(uint64(i + 1))
	}
	time.Sleep(time.Until(start.Add(3 * ackWait))) // message 1 stays held for three ack waits
	stop()
	<-done
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumRedelivered != 0 || info.NumAckPending != 1 {
		t.Errorf("after 3 ack waits held: %d redelivered, %d pending; want 0 and 1 (kept alive)", info.NumRedelivered, info.NumAckPending)
	}
	if err := held.Ack(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// Every acknowledgement of this test has reached the observer once the last one, the
	// double ack of message 1, has been confirmed and a flush has gone round.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	progress := map[string]int{}
	for len(marks) > 0 {
		m := <-marks
		if string(m.Data) == "+WPI" {
			progress[m.Subject]++
		}
	}
	if progress[msgs[0].Reply()] == 0 {
		t.Errorf("the message held for three ack waits was never marked in progress")
	}
	for _, m := range msgs[1:] {
		if n := progress[m.Reply()]; n != 0 {
			t.Errorf("a message settled within half a keep-alive interval was marked in progress %d times", n)
		}
	}
}

// failingAckMsg is a message whose DoubleAck fails its first fails calls, noting when each was.
type failingAckMsg struct {
	jetstream.Msg
	fails int
	calls []time.Time
}

func (m *failingAckMsg) DoubleAck(context.Context) error {
	m.calls = append(m.calls, time.Now())
	if len(m.calls) <= m.fails {
		return errors.New("nats: timeout")
	}
	return nil
}

func TestAckRetriesAfterAJitteredWait(t *testing.T) {
	ctx := context.Background()
	h := NewHeldSet()
	m := &failingAckMsg{fails: 2}
	h.Add(1, m)
	if err := h.Ack(ctx, 1); err != nil {
		t.Fatalf("ack failing twice, then working: %v", err)
	}
	if len(m.calls) != 3 || h.Len() != 0 {
		t.Fatalf("%d tries, %d held; want 3 tries and the message forgotten", len(m.calls), h.Len())
	}
	for i := 1; i < len(m.calls); i++ {
		if gap := m.calls[i].Sub(m.calls[i-1]); gap < ackRetryFirst*3/4 {
			t.Errorf("try %d came %s after the one before, want a wait of about %s or more", i+1, gap, ackRetryFirst)
		}
	}

	// Failing every try: ackTries of them, no wait after the last, and the message stays held.
	m = &failingAckMsg{fails: ackTries}
	h.Add(2, m)
	if err := h.Ack(ctx, 2); err == nil {
		t.Fatal("ack failing every try: no error")
	}
	if len(m.calls) != ackTries || h.Len() != 1 {
		t.Fatalf("%d tries, %d held; want %d tries and the message still held", len(m.calls), h.Len(), ackTries)
	}
	if tail := time.Since(m.calls[len(m.calls)-1]); tail > ackRetryFirst/2 {
		t.Errorf("returned %s after the last try: waited after it", tail)
	}

	// A context that ends stops the waits.
	m = &failingAckMsg{fails: ackTries}
	h.Add(3, m)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := h.Ack(cctx, 3); err == nil || len(m.calls) != 1 {
		t.Fatalf("cancelled context: error %v after %d tries, want an error after 1", err, len(m.calls))
	}
}
