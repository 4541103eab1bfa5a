package queue

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// A batch reads back the same deliveries, in order, retry state included.
func TestBatchRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Unix(1767225600, 123)
	qs := []Queued{
		{Room: "room.a b", Event: "room_started", EventID: "e1", EventSeq: 42, Stored: at, Body: []byte(`{"event":"room_started"}`)},
		{Room: "ümlaut", Event: "participant_joined", EventID: "e2", EventSeq: 43, Stored: at.Add(time.Millisecond),
			Body: []byte(`{}`), Attempts: 2, FirstAttempt: at.Add(time.Second), NextAttempt: at.Add(time.Minute)},
		{Room: "r", Event: "room_finished", EventID: "e3", EventSeq: 44, Body: nil},
	}
	m := BatchMsg("roomhook.spill.x.e.1.3", "b-1", qs)
	if m.Header.Get(HeaderBatch) == "" || m.Header.Get(nats.MsgIdHdr) != "b-1" {
		t.Fatalf("headers %v", m.Header)
	}
	got, err := ParseAll(m.Header, m.Data)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]Queued(nil), qs...)
	want[2].Body = []byte{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back %+v\nwant %+v", got, want)
	}
}

// A message in the one-delivery format reads as a batch of one.
func TestParseAllOneDelivery(t *testing.T) {
	t.Parallel()
	q := Queued{Room: "r", Event: "room_started", EventID: "e", EventSeq: 7, Body: []byte("{}"), ReplayOf: 3}
	m := q.Msg("s", "id")
	got, err := ParseAll(m.Header, m.Data)
	if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], q) || m.Header.Get(HeaderBatch) != "" {
		t.Errorf("ParseAll = %+v, %v; want [%+v]", got, err, q)
	}
}

func TestParseAllRefusesBadBatches(t *testing.T) {
	t.Parallel()
	good := BatchMsg("s", "id", []Queued{{Room: "r", EventID: "e", EventSeq: 1, Body: []byte("0123456789")}})
	tests := []struct {
		name    string
		version string
		data    []byte
		want    string
	}{
		{"truncated body", batchVersion, good.Data[:len(good.Data)-1], "delivery 1: truncated"},
		{"empty", batchVersion, nil, "no delivery"},
		{"unknown format", "2", good.Data, `format "2"`},
	}
	for _, tt := range tests {
		h := nats.Header{HeaderBatch: []string{tt.version}}
		_, err := ParseAll(h, tt.data)
		if !errors.Is(err, ErrBadBatch) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want ErrBadBatch saying %q", tt.name, err, tt.want)
		}
	}
}

func TestTake(t *testing.T) {
	t.Parallel()
	body := func(n int) Queued { return Queued{Body: make([]byte, n)} }
	many := make([]Queued, 20)
	tests := []struct {
		name string
		qs   []Queued
		want int
	}{
		{"none", nil, 0},
		{"at most BatchMaxDeliveries", many, BatchMaxDeliveries},
		{"fewer", many[:3], 3},
		{"bytes bound the batch", []Queued{body(BatchMaxBytes / 2), body(BatchMaxBytes / 2), body(1)}, 2},
		{"a big delivery alone", []Queued{body(2 * BatchMaxBytes), body(1)}, 1},
	}
	for _, tt := range tests {
		if got := Take(len(tt.qs), func(i int) int { return len(tt.qs[i].Body) }); got != tt.want {
			t.Errorf("%s: Take = %d, want %d", tt.name, got, tt.want)
		}
	}
}
