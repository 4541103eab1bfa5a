package queue

import (
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// A delivery written with Msg reads back the same, retry state included; Seq is not stored.
func TestQueuedRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Unix(1767225600, 123)
	q := Queued{Room: "room.a b", Event: "room_started", EventID: "e1", EventSeq: 42, Stored: at,
		Body: []byte(`{"event":"room_started"}`), ReplayOf: 7,
		Attempts: 3, FirstAttempt: at.Add(time.Second), NextAttempt: at.Add(time.Minute), Seq: 9}
	m := q.Msg("roomhook.spill.x", "id-1")
	if got := m.Header.Get(nats.MsgIdHdr); got != "id-1" {
		t.Errorf("Nats-Msg-Id %q, want id-1", got)
	}
	want := q
	want.Seq = 0
	if got := Parse(m.Header, m.Data); !reflect.DeepEqual(got, want) {
		t.Errorf("read back %+v\nwant %+v", got, want)
	}
	fresh := Queued{Room: "r", Event: "room_started", EventID: "e2", EventSeq: 1, Body: []byte("{}")}
	m = fresh.Msg("s", "id-2")
	for _, h := range []string{HeaderStored, HeaderReplayOf, "Roomhook-Attempts"} {
		if _, ok := m.Header[h]; ok {
			t.Errorf("a fresh delivery carries %s", h)
		}
	}
	if got := Parse(m.Header, m.Data); !reflect.DeepEqual(got, fresh) {
		t.Errorf("read back %+v, want %+v", got, fresh)
	}
}

// A room's partition is stable and within range.
func TestPartition(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 8, 1024} {
		for _, room := range []string{"", "a", "room.with dots", "ümlaut"} {
			p := Partition(room, n)
			if p < 0 || p >= n || p != Partition(room, n) {
				t.Errorf("Partition(%q, %d) = %d", room, n, p)
			}
		}
	}
}

func TestCheckFits(t *testing.T) {
	body := make([]byte, 1000)
	tests := []struct {
		name       string
		maxPayload int
		fits       bool
	}{
		{"max payload unknown", 0, true},
		{"room in the allowance", len(body) + len("room") + HeaderAllowance, true},
		{"one byte over", len(body) + len("room") + HeaderAllowance - 1, false},
	}
	for _, tt := range tests {
		if err := CheckFits(body, "room", tt.maxPayload); (err == nil) != tt.fits {
			t.Errorf("%s: CheckFits = %v, want fits %v", tt.name, err, tt.fits)
		}
	}
}
