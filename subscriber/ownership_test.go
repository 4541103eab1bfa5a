package subscriber

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestOwnerSpreadsUnitsAndMovesOnlyTheLeaversShare(t *testing.T) {
	units := make([]string, 64)
	for i := range units {
		units[i] = fmt.Sprintf("p%d", i)
	}
	three := []string{"roomhook-7d9f-a", "roomhook-7d9f-b", "roomhook-7d9f-c"}
	count := map[string]int{}
	before := map[string]string{}
	for _, u := range units {
		o := owner(three, u)
		count[o]++
		before[u] = o
		if o2 := owner([]string{three[2], three[0], three[1]}, u); o2 != o {
			t.Fatalf("owner of %s depends on the order of the member list", u)
		}
	}
	for _, m := range three {
		// Replica ids differing in one character must still share the work (FNV alone did not).
		if count[m] < len(units)/6 {
			t.Errorf("%s owns %d of %d units: %v", m, count[m], len(units), count)
		}
	}
	two := three[:2]
	for _, u := range units {
		if before[u] != three[2] && owner(two, u) != before[u] {
			t.Errorf("%s moved from %s although its owner stayed", u, before[u])
		}
	}
}

// flakyKV is a key-value bucket in memory whose calls fail while fail is set, as a bucket
// does while JetStream has no meta leader. Only what Ownership uses is implemented.
type flakyKV struct {
	jetstream.KeyValue
	mu   sync.Mutex
	fail error
	keys map[string]uint64
	rev  uint64
}

func newFlakyKV() *flakyKV { return &flakyKV{keys: map[string]uint64{}} }

func (kv *flakyKV) setFail(err error) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	kv.fail = err
}

func (kv *flakyKV) Put(_ context.Context, key string, _ []byte) (uint64, error) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if kv.fail != nil {
		return 0, kv.fail
	}
	kv.rev++
	kv.keys[key] = kv.rev
	return kv.rev, nil
}

func (kv *flakyKV) Create(ctx context.Context, key string, v []byte, _ ...jetstream.KVCreateOpt) (uint64, error) {
	return kv.Put(ctx, key, v)
}

func (kv *flakyKV) Update(ctx context.Context, key string, v []byte, _ uint64) (uint64, error) {
	return kv.Put(ctx, key, v)
}

func (kv *flakyKV) Delete(_ context.Context, key string, _ ...jetstream.KVDeleteOpt) error {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	delete(kv.keys, key)
	return nil
}

func (kv *flakyKV) LiveKeys(context.Context) ([]string, error) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if kv.fail != nil {
		return nil, kv.fail
	}
	var out []string
	for k := range kv.keys {
		out = append(out, k)
	}
	return out, nil
}

// logRecords is a slog handler that keeps every record's level and message.
type logRecords struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r)
	return nil
}
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecords) WithGroup(string) slog.Handler      { return l }

// count is how many records at level carry msg.
func (l *logRecords) count(level slog.Level, msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		if r.Level == level && r.Message == msg {
			n++
		}
	}
	return n
}

func TestOwnershipLogsAFailingListingOncePerStateChange(t *testing.T) {
	members, leases := newFlakyKV(), newFlakyKV()
	logs := &logRecords{}
	units := []string{"p0", "p1"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var running sync.WaitGroup
	work := func(ctx context.Context, _ string) {
		running.Add(1)
		defer running.Done()
		<-ctx.Done()
	}
	o := NewOwnership(members, members, leases, "r0", 10*time.Second, units, work, WithOwnershipLogger(slog.New(logs)))
	defer func() {
		o.releaseAll()
		running.Wait()
	}()
	o.step(ctx)
	if got := o.Owned(); len(got) != 2 {
		t.Fatalf("owns %v, want both units", got)
	}
	const (
		listFailed = "listing replicas failed; keeping current leases"
		listOK     = "listing replicas works again"
		beatFailed = "membership heartbeat failed"
		beatOK     = "membership heartbeat works again"
	)
	// The meta quorum is lost for 10 ticks, comes back, is lost again for 5: two warnings of
	// each kind, two recoveries, and the leases (which still renew) are kept throughout.
	for round, ticks := range []int{10, 5} {
		members.setFail(errors.New("nats: no response from JetStream"))
		for i := 0; i < ticks; i++ {
			o.step(ctx)
		}
		if got := o.Owned(); len(got) != 2 {
			t.Fatalf("round %d: owns %v while listing fails; want both units kept", round, got)
		}
		members.setFail(nil)
		o.step(ctx)
		o.step(ctx)
		for _, c := range []struct {
			level slog.Level
			msg   string
		}{{slog.LevelWarn, listFailed}, {slog.LevelInfo, listOK}, {slog.LevelWarn, beatFailed}, {slog.LevelInfo, beatOK}} {
			if n := logs.count(c.level, c.msg); n != round+1 {
				t.Errorf("after round %d: %d %s records %q, want %d", round, n, c.level, c.msg, round+1)
			}
		}
	}
	if n := logs.count(slog.LevelInfo, "took unit"); n != 2 {
		t.Errorf("took a unit %d times, want 2 (no restarts while listing failed)", n)
	}
}

// heldDone is the done channel of the unit's running (or last) work.
func heldDone(t *testing.T, o *Ownership, unit string) <-chan struct{} {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	h := o.owned[unit]
	if h == nil {
		t.Fatalf("%s not owned", unit)
	}
	return h.done
}

func TestOwnershipBacksOffWorkThatKeepsStopping(t *testing.T) {
	members, leases := newFlakyKV(), newFlakyKV()
	var mu sync.Mutex
	starts := 0
	runFor := time.Duration(0)
	work := func(ctx context.Context, _ string) {
		mu.Lock()
		starts++
		d := runFor
		mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return starts
	}
	// Takeover 1 s: a tick is 200 ms, the waits before a restart about 200 ms, 400 ms, 800 ms.
	o := NewOwnership(members, members, leases, "r0", time.Second, []string{"p0"}, work,
		WithOwnershipLogger(slog.New(&logRecords{})))
	defer o.releaseAll()
	ctx := context.Background()
	o.step(ctx)
	<-heldDone(t, o, "p0")
	// Stepping far faster than the ticks: work stopping at once is not started at every step.
	for end := time.Now().Add(1200 * time.Millisecond); time.Now().Before(end); {
		o.step(ctx)
		time.Sleep(20 * time.Millisecond)
	}
	if n := count(); n < 2 || n > 5 {
		t.Fatalf("work that stops at once started %d times in 1.2 s of 20 ms steps, want 2 to 5", n)
	}

	// Work that ran for longer than a tick is started again at the next step.
	mu.Lock()
	runFor = 300 * time.Millisecond
	mu.Unlock()
	for before := count(); count() == before; {
		o.step(ctx)
		time.Sleep(20 * time.Millisecond)
	}
	<-heldDone(t, o, "p0")
	before := count()
	o.step(ctx)
	if n := count(); n != before+1 {
		// The work's goroutine counts the start: give it a moment.
		time.Sleep(50 * time.Millisecond)
		if n = count(); n != before+1 {
			t.Fatalf("work that ran 300 ms: %d starts after the next step, want %d", n, before+1)
		}
	}
}
