package traffic

import (
	"errors"
	"testing"
)

func TestEventIDRoundTrip(t *testing.T) {
	for _, id := range []EventID{{"k3f9q2", 1, 1}, {"a", 42, 18446744073709551615}, {"run7", 1000, 37}} {
		got, err := ParseEventID(id.String())
		if err != nil || got != id {
			t.Errorf("ParseEventID(%q) = %+v, %v; want %+v", id.String(), got, err, id)
		}
	}
	id := EventID{Run: "k3f9q2", Room: 7, Seq: 12}
	if id.String() != "rh-k3f9q2-7-12" || id.RoomKey() != "rh-k3f9q2-7" {
		t.Errorf("String/RoomKey = %q/%q", id.String(), id.RoomKey())
	}
}

func TestParseEventIDRejects(t *testing.T) {
	for _, s := range []string{
		"", "EV_abc", "rh-", "rh-run-1", "rh-run-1-2-3", "rh-Run-1-2", "rh-run-0-1", "rh-run-1-0",
		"rh-run-x-1", "rh-run-1-x", "rh--1-2", "0b6e2c1a-7a3f-4b53-9c2e-3d0f1e2a4b5c",
	} {
		if _, err := ParseEventID(s); !errors.Is(err, ErrNotTrafficID) {
			t.Errorf("ParseEventID(%q) error = %v, want ErrNotTrafficID", s, err)
		}
	}
}

func TestValidateRun(t *testing.T) {
	for run, ok := range map[string]bool{"abc123": true, "": false, "a-b": false, "ABC": false, "a.b": false} {
		if err := ValidateRun(run); (err == nil) != ok {
			t.Errorf("ValidateRun(%q) = %v", run, err)
		}
	}
}
