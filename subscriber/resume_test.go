package subscriber

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// resumeWorker is a consumer's worker written as the first core's was: its callback reads
// the current run's held set from a field that the next run replaces, and queues into lanes
// that stop with their run (a callback of a stopped run queues nothing; the message stays
// held, to be handed back).
type resumeWorker struct {
	mu   sync.Mutex
	held *HeldSet
}

func (w *resumeWorker) set() *HeldSet {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.held
}

// callback is one run's Consume callback: it queues on queued while ctx lasts.
func (w *resumeWorker) callback(ctx context.Context, queued chan<- uint64) func(jetstream.Msg) {
	return func(m jetstream.Msg) {
		meta, err := m.Metadata()
		if err != nil {
			return
		}
		seq := meta.Sequence.Stream
		if w.set().Add(seq, m) {
			return // a redelivery of a message being worked on
		}
		if ctx.Err() != nil {
			return // the run is stopping: the message stays held and is handed back
		}
		queued <- seq
	}
}

// TestResumeOfAnEarlierRunCannotFireIntoTheNextRun is issue 10's suspect: ResumeInOrder's
// release timer was never stopped, so when a run ended before every orphan of its predecessor
// came back, the timer fired into the next run and passed on what the gate kept. The worker's
// callback then added that message to the new run's held set without queuing it (its run's
// lanes had stopped), and the new run ignored the message's redelivery as "already held": it
// stayed held (kept alive by KeepAlive) and was never delivered.
//
// With Resume, a run Stops its Resume when it ends; everything reaches the new run. On the
// code it replaces (the function returned by ResumeInOrder, no Stop) this test fails: the new
// run never queues sequence 3.
func TestResumeOfAnEarlierRunCannotFireIntoTheNextRun(t *testing.T) {
	// The gate is what servers before 2.14 get; newer ones are reset (TestResumeResetsToTheAckFloor).
	ctx := context.Background()
	const takeover = 2 * time.Second // ack wait 500 ms; the release timer fires after 2 s
	js, cons, _ := newTestConsumer(t, jetstream.LimitsPolicy, 3, AckWait(takeover))
	fetch := func(n int) []jetstream.Msg {
		t.Helper()
		b, err := cons.Fetch(n, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var out []jetstream.Msg
		for m := range b.Messages() {
			out = append(out, m)
		}
		return out
	}

	// The previous owner took sequences 1 and 2 and died holding them.
	if got := fetch(2); len(got) != 2 {
		t.Fatalf("previous owner got %d messages, want 2", len(got))
	}

	// Run 1 resumes: two orphans to wait for. It pulls sequence 3, which the gate keeps back
	// until the orphans are in, and ends before they come back (its consumer was reported
	// lost, say).
	w := &resumeWorker{held: NewHeldSet()}
	ctx1, stop1 := context.WithCancel(ctx)
	queued1 := make(chan uint64, 16)
	run1, err := resumeInOrder(ctx, js, cons, takeover, w.callback(ctx1, queued1), false)
	if err != nil {
		t.Fatal(err)
	}
	timerDue := time.Now().Add(4 * AckWait(takeover))
	one := fetch(1)
	if len(one) != 1 {
		t.Fatalf("run 1 got %d messages, want 1", len(one))
	}
	if meta, err := one[0].Metadata(); err != nil || meta.Sequence.Stream != 3 {
		t.Fatalf("run 1 got %v (%v), want sequence 3", meta, err)
	}
	run1.Handle(one[0])
	stop1()
	run1.Stop()
	w.set().HandBack()

	// Run 2 starts with its own held set, while run 1's release timer is still pending.
	w.mu.Lock()
	w.held = NewHeldSet()
	w.mu.Unlock()
	ctx2, stop2 := context.WithCancel(ctx)
	defer stop2()
	queued2 := make(chan uint64, 16)
	run2, err := resumeInOrder(ctx, js, cons, takeover, w.callback(ctx2, queued2), false)
	if err != nil {
		t.Fatal(err)
	}
	defer run2.Stop()
	// Run 2 pulls once run 1's release timer is due (the orphans and sequence 3 come back
	// after an ack wait, and again after every ack wait; here they come after the timer).
	time.Sleep(time.Until(timerDue) + 250*time.Millisecond)
	cc, err := cons.Consume(run2.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()

	var got []uint64
	deadline := time.After(4 * takeover)
	for len(got) < 3 {
		select {
		case seq := <-queued2:
			got = append(got, seq)
		case <-deadline:
			t.Fatalf("run 2 queued %v, want [1 2 3]; its held set has %d (an earlier run's release timer marked a message held in run 2, so its redelivery was ignored)",
				got, w.set().Len())
		}
	}
	for i, seq := range got {
		if seq != uint64(i+1) {
			t.Fatalf("run 2 queued %v, want [1 2 3] in stream order", got)
		}
	}
	select {
	case seq := <-queued1:
		t.Errorf("run 1 queued %d after it ended", seq)
	default:
	}
}

// TestResumeStopPassesNothingOn: after Stop, a late delivery to an earlier run's Handle (a
// Consume callback still running while the run ends) reaches nobody, and the gate holds
// nothing.
func TestResumeStopPassesNothingOn(t *testing.T) {
	ctx := context.Background()
	const takeover = 2 * time.Second
	js, cons, _ := newTestConsumer(t, jetstream.LimitsPolicy, 2, AckWait(takeover))
	b, err := cons.Fetch(2, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []jetstream.Msg
	for m := range b.Messages() {
		msgs = append(msgs, m)
	}
	if len(msgs) != 2 {
		t.Fatalf("got %d messages, want 2", len(msgs))
	}
	var mu sync.Mutex
	var passed []uint64
	r, err := resumeInOrder(ctx, js, cons, takeover, func(m jetstream.Msg) {
		meta, _ := m.Metadata()
		mu.Lock()
		passed = append(passed, meta.Sequence.Stream)
		mu.Unlock()
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	r.Handle(msgs[1]) // one of two orphans: held back
	r.Stop()
	r.Handle(msgs[0]) // would complete the orphans and release both
	mu.Lock()
	defer mu.Unlock()
	if len(passed) != 0 {
		t.Errorf("a stopped Resume passed on %v", passed)
	}
}

// TestResumeResetsToTheAckFloor: a new owner whose predecessor died holding deliveries gets
// them again at once, in stream order, before anything newer, although a nak of the
// predecessor (sent from its buffer on reconnect, say) puts one of them back first.
func TestResumeResetsToTheAckFloor(t *testing.T) {
	ctx := context.Background()
	// Ack waits far longer than the test: nothing here comes back because an ack wait ended.
	const takeover = 2 * time.Minute
	js, cons, publish := newTestConsumer(t, jetstream.WorkQueuePolicy, 4, AckWait(takeover))
	if !CanResetConsumers(js.Conn()) {
		t.Fatalf("the embedded server %s cannot reset consumers", js.Conn().ConnectedServerVersion())
	}
	// The previous owner took 1 to 4, settled 2, and handed back 4 (a late nak), and died
	// holding 1 and 3.
	b, err := cons.Fetch(4, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var old []jetstream.Msg
	for m := range b.Messages() {
		old = append(old, m)
	}
	if len(old) != 4 {
		t.Fatalf("previous owner got %d messages, want 4", len(old))
	}
	if err := old[1].DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	if err := old[3].Nak(); err != nil {
		t.Fatal(err)
	}
	publish(2) // 5 and 6: newer than anything the previous owner saw

	got := make(chan uint64, 16)
	r, err := ResumeInOrder(ctx, js, cons, takeover, func(m jetstream.Msg) {
		meta, err := m.Metadata()
		if err != nil {
			t.Error(err)
			return
		}
		got <- meta.Sequence.Stream
		_ = m.DoubleAck(ctx)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	cc, err := cons.Consume(r.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()
	want := []uint64{1, 3, 4, 5, 6}
	var seen []uint64
	deadline := time.After(10 * time.Second) // far below the ack wait
	for len(seen) < len(want) {
		select {
		case seq := <-got:
			seen = append(seen, seq)
		case <-deadline:
			t.Fatalf("the new owner got %v, want %v without waiting out an ack wait", seen, want)
		}
	}
	if !slices.Equal(seen, want) {
		t.Errorf("the new owner got %v, want %v: the previous owner's deliveries first, in stream order", seen, want)
	}
}

// TestAdmitResetsOnALostDelivery: a delivery that never reaches the run (lost in transit when
// a consumer leader changed, or sent to a pull request nobody reads) leaves a gap in the
// delivery sequence. Admit sees the gap at the next delivery, resets the consumer, and the
// run gets the lost event at once and in stream order, instead of after its ack wait behind
// newer ones.
func TestAdmitResetsOnALostDelivery(t *testing.T) {
	ctx := context.Background()
	const takeover = 2 * time.Minute // ack waits far longer than the test
	js, cons, _ := newTestConsumer(t, jetstream.WorkQueuePolicy, 3, AckWait(takeover))
	admitted := make(chan uint64, 16)
	lost := make(chan error, 4)
	var r *Resume
	var err error
	r, err = ResumeInOrder(ctx, js, cons, takeover, func(m jetstream.Msg) {
		meta, err := m.Metadata()
		if err != nil {
			t.Error(err)
			return
		}
		ok, err := r.Admit(ctx, meta)
		if err != nil {
			lost <- err
		}
		if ok {
			admitted <- meta.Sequence.Stream
			_ = m.DoubleAck(ctx)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	// Delivery #1 goes somewhere the run never hears of.
	b, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for range b.Messages() {
	}
	cc, err := cons.Consume(r.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()
	var got []uint64
	deadline := time.After(10 * time.Second)
	for len(got) < 3 {
		select {
		case seq := <-admitted:
			got = append(got, seq)
		case <-deadline:
			t.Fatalf("admitted %v, want [1 2 3] without waiting out an ack wait", got)
		}
	}
	if !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Errorf("admitted %v, want [1 2 3]: the lost event first, in stream order", got)
	}
	select {
	case err := <-lost:
		if !errors.Is(err, ErrDeliveryLost) {
			t.Errorf("Admit reported %v, want ErrDeliveryLost", err)
		}
	default:
		t.Error("Admit did not report the lost delivery")
	}
}
