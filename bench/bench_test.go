package bench

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// tinySizes run every scenario in seconds.
func tinySizes() Sizes {
	return Sizes{
		Rooms: 10, Participants: 3,
		RawRequests: 300, ThroughputEvents: 300,
		LatencyRate: 500, LatencyFor: 500 * time.Millisecond,
		FanOutEndpoints: 5, FanOutEvents: 20,
		PerRoomRooms: 50, PerRoomEvents: 300, IdleFor: time.Second, NewRoomSamples: 10,
		IsolationFor: 500 * time.Millisecond, IsolationEvents: 300,
		BacklogEvents:  500,
		ScaleOutEvents: 300, ScaleOutRooms: 30, ScaleOutLatency: 5 * time.Millisecond, ScaleOutReplicas: 2,
	}
}

func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every scenario")
	}
	var progress bytes.Buffer
	rep, err := Run(context.Background(), Options{Runs: 1, Sizes: tinySizes(), Takeover: 2 * time.Second, Progress: &progress})
	if err != nil {
		t.Fatalf("%v\nprogress:\n%s", err, progress.String())
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s\n%s", progress.String(), table.String())
	if got, want := len(rep.Rows), len(rowSpecs(Options{})); got != want {
		t.Errorf("%d rows, want %d", got, want)
	}
	for _, r := range rep.Rows {
		// Counts of anomalies (repeats) and idle figures are legitimately 0, and differences of
		// CPU figures may be 0 or below in a run this small; every other row measured something.
		if len(r.Values) != 1 || (r.Median() <= 0 && !r.zeroOK) {
			t.Errorf("%s / %s: values %v", r.Scenario, r.Figure, r.Values)
		}
		if !strings.Contains(table.String(), "| "+r.Scenario+" | "+r.Figure+" |") {
			t.Errorf("table has no row %s / %s", r.Scenario, r.Figure)
		}
	}
	// Anomalies (duplicates, order) are the pipeline tests' business; here they are reported.
	for _, n := range rep.Notes {
		t.Logf("note: %s", n)
	}
}

func TestOptionsRefused(t *testing.T) {
	for _, o := range []Options{
		{Runs: -1},
		{Scenarios: []string{"nope"}},
		{Sizes: Sizes{Rooms: 1}},
		{Scenarios: []string{ScenarioPerRoom}, Sizes: func() Sizes { s := tinySizes(); s.PerRoomEvents = s.PerRoomRooms - 1; return s }()},
	} {
		if _, err := Run(context.Background(), o); !errors.Is(err, ErrOptions) {
			t.Errorf("Run(%+v) = %v, want ErrOptions", o, err)
		}
	}
}

func TestRowStatistics(t *testing.T) {
	r := Row{Values: []float64{3, 1, 2, 10}, met: func(m float64) bool { return m >= 2.5 }}
	if r.Median() != 2.5 || r.Min() != 1 || r.Max() != 10 || r.Met() != "yes" {
		t.Errorf("median %v min %v max %v met %q", r.Median(), r.Min(), r.Max(), r.Met())
	}
	r.Values = []float64{1, 2, 3}
	if r.Median() != 2 || r.Met() != "no" {
		t.Errorf("median %v met %q", r.Median(), r.Met())
	}
	if formatFigure(12345.6) != "12,346" || formatFigure(0.614) != "0.61" || formatFigure(23.45) != "23.4" {
		t.Errorf("formatting: %s %s %s", formatFigure(12345.6), formatFigure(0.614), formatFigure(23.45))
	}
}
