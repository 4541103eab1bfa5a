package deadletter

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A dead letter reads back as it was written, but for its URL, which is stored redacted, and
// ReplayOf, which is not stored.
func TestLetterRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 1, 12, 0, 0, 5, time.UTC)
	dl := Letter{Reason: ReasonExhausted, Detail: "status 503", EndpointID: "0123456789abcdef",
		EndpointURL: "https://user:pw@lms.example/hook?token=t0k", Room: "r1", Event: "room_started",
		EventID: "e1", EventSeq: 42, Attempts: 10, LastStatus: 503, LastError: "timeout",
		FirstAttempt: at, LastAttempt: at.Add(time.Hour), Stored: at.Add(-time.Second),
		Body: []byte(`{"event":"room_started"}`), Truncated: true, ReplayOf: 3}
	m := dl.msg("roomhook.dlq.x")
	if id := m.Header.Get(nats.MsgIdHdr); id != "42:0123456789abcdef:e1:replay:3" {
		t.Errorf("Nats-Msg-Id %q", id)
	}
	for k, v := range m.Header {
		if strings.Contains(strings.Join(v, ","), "t0k") || strings.Contains(strings.Join(v, ","), "pw") {
			t.Errorf("header %s holds a secret: %q", k, v)
		}
	}
	got := Parse(&jetstream.RawStreamMsg{Header: m.Header, Data: m.Data, Sequence: 5, Time: at})
	want := dl
	want.EndpointURL, want.ReplayOf, want.Sequence, want.Time = "https://lms.example/hook", 0, 5, at
	if !got.FirstAttempt.Equal(want.FirstAttempt) || !got.LastAttempt.Equal(want.LastAttempt) || !got.Stored.Equal(want.Stored) {
		t.Errorf("times read back %v %v %v, want %v %v %v", got.FirstAttempt, got.LastAttempt, got.Stored,
			want.FirstAttempt, want.LastAttempt, want.Stored)
	}
	got.FirstAttempt, got.LastAttempt, got.Stored = want.FirstAttempt, want.LastAttempt, want.Stored
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back %+v\nwant %+v", got, want)
	}
}
