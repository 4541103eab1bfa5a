package dispatcher

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"time"
)

// Stalled sourcing: the partition stream copies the events stream through a consumer that the
// server makes on the events stream's leader. When that leader dies the consumer dies with it,
// and the server notices only on a 10 s health tick with a 10 s threshold, so delivery of new
// events stops for 10–40 s after an election of the events stream. A new leader of the
// partition stream sets its sources up at once, so the replica that owns partition 0 asks the
// partition stream's leader to step down when its source has been silent (no message and no
// heartbeat, which comes every second) for sourceStallAfter while the events stream has newer
// messages, or when it has not heard from its source at all for sourceStallAfter (after every
// node restarted, the server may leave a source unset for a long while).
const (
	sourceWatchEvery = time.Second
	sourceStallAfter = 3 * time.Second
)

func (d *Dispatcher) watchSource(ctx context.Context) {
	t := time.NewTicker(sourceWatchEvery)
	defer t.Stop()
	var stepped, inactiveSince time.Time
	// hold is how long after a step-down the watch looks again: doubled, up to a minute,
	// while step-downs do not help (the events stream itself is struggling), so that the
	// watch does not churn leaders or logs.
	hold := 2 * sourceStallAfter
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !slices.Contains(d.Owned(), "p0") || time.Since(stepped) < hold {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		part, err := d.js.Stream(rctx, d.names.PartStream())
		if err != nil {
			cancel()
			continue
		}
		events, err := d.js.Stream(rctx, d.names.EventsStream())
		cancel()
		if err != nil {
			continue
		}
		pi, ei := part.CachedInfo(), events.CachedInfo()
		// Only a replicated stream can step down; and while the events stream has no
		// leader, no new leader of the copy could read it either.
		if len(pi.Sources) == 0 || pi.Cluster == nil || len(pi.Cluster.Replicas) == 0 ||
			ei.Cluster == nil || ei.Cluster.Leader == "" {
			continue
		}
		src := pi.Sources[0]
		// Active is -1 while this leader has not heard from its source at all (after every
		// node restarted, the server may set the source up only on a later health tick, or
		// retry it with a growing delay). A source that works sends a heartbeat every
		// second, so one unheard for sourceStallAfter is stalled whatever the events stream
		// holds: its next events would not be copied.
		if src.Active < 0 {
			if inactiveSince.IsZero() {
				inactiveSince = time.Now()
			}
			if time.Since(inactiveSince) < sourceStallAfter {
				continue
			}
		} else {
			inactiveSince = time.Time{}
			if src.Active < sourceStallAfter {
				hold = 2 * sourceStallAfter // working: the next stall gets a quick step-down
			}
			// Heard from, but silent: stalled only if the events stream has stored
			// something since.
			lastActive := pi.TimeStamp.Add(-src.Active)
			if src.Active < sourceStallAfter || !ei.State.LastTime.After(lastActive) {
				continue
			}
		}
		silent := src.Active
		if silent < 0 {
			silent = time.Since(inactiveSince)
		}
		d.log.Warn("the partition stream's copy of the events stream is stalled; asking its leader to step down",
			"stream", d.names.PartStream(), "source_silent_for", silent.Round(time.Millisecond).String(),
			"events_last_seq", ei.State.LastSeq)
		if !stepped.IsZero() && time.Since(stepped) < hold+2*sourceStallAfter {
			// The last step-down did not help. Jittered, as any retry: the watch of every
			// region on the cluster may be backing off from the same trouble.
			hold = min(time.Duration(float64(2*hold)*(0.75+rand.Float64()/2)), time.Minute)
		}
		stepped, inactiveSince = time.Now(), time.Time{} // the next leader gets its own sourceStallAfter
		msg, err := d.js.Conn().Request("$JS.API.STREAM.LEADER.STEPDOWN."+d.names.PartStream(), nil, requestTimeout)
		if err != nil {
			d.log.Warn("stepping the partition stream's leader down failed", "error", err)
			continue
		}
		var resp struct {
			Error *struct {
				Description string `json:"description"`
			} `json:"error"`
		}
		if json.Unmarshal(msg.Data, &resp) == nil && resp.Error != nil {
			d.log.Warn("stepping the partition stream's leader down failed", "error", resp.Error.Description)
		}
	}
}
