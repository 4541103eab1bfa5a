package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/roomhook/roomhook/admin"
)

// TestResendFlags: the command line is checked before anything is asked.
func TestResendFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--since", "1h"}, "--endpoint is required"},
		{[]string{"--endpoint", "9deff76f5e783d93", "--since", "yesterday"}, "--since"},
		{[]string{"--endpoint", "9deff76f5e783d93", "--since", "1h", "--until", "soon"}, "--until"},
		{[]string{"--endpoint", "9deff76f5e783d93", "extra"}, "unexpected"},
	} {
		var out, errOut bytes.Buffer
		err := resendCommand(context.Background(), tt.args, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("resend %v: %v, want an error about %s", tt.args, err, tt.want)
		}
	}
}

// TestPrintResend: the answer says what was queued, how far back the stream reaches and what
// was left out.
func TestPrintResend(t *testing.T) {
	at := time.Date(2025, 5, 1, 8, 0, 0, 0, time.UTC)
	res := admin.ResendResult{EndpointID: "9deff76f5e783d93", EndpointURL: "https://lms.example.com/hook", Global: false,
		Since: at, Until: at.Add(time.Hour), StreamFirst: at.Add(-48 * time.Hour), Matched: 3, Queued: 3, Rooms: 1, NotRouted: 2, Invalid: 1}
	var b bytes.Buffer
	printResend(&b, res)
	for _, want := range []string{"per-room", "2025-04-29 08:00:00Z", "queued 3 of 3 events matched, of 1 room", "2 events in the window not for this endpoint", "1 event in the window invalid"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output %q lacks %q", b.String(), want)
		}
	}
	b.Reset()
	res.DryRun, res.Queued = true, 0
	printResend(&b, res)
	if !strings.Contains(b.String(), "dry run: 3 events of 1 room would be queued; nothing was queued") {
		t.Errorf("dry-run output %q", b.String())
	}
}
