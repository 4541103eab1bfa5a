package dispatcher

import (
	"context"
	"encoding/json"
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
// messages.
const (
	sourceWatchEvery = time.Second
	sourceStallAfter = 3 * time.Second
)

func (d *Dispatcher) watchSource(ctx context.Context) {
	t := time.NewTicker(sourceWatchEvery)
	defer t.Stop()
	var stepped, inactiveSince time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !slices.Contains(d.Owned(), "p0") || time.Since(stepped) < 4*sourceStallAfter {
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
		if len(pi.Sources) == 0 {
			continue
		}
		src := pi.Sources[0]
		// Active is -1 while the stream has no source consumer at all (after every node
		// restarted, until the server's health tick sets it up): silent since first seen so.
		silent := src.Active
		if silent < 0 {
			if inactiveSince.IsZero() {
				inactiveSince = time.Now()
			}
			silent = time.Since(inactiveSince)
		} else {
			inactiveSince = time.Time{}
		}
		lastActive := pi.TimeStamp.Add(-silent)
		if silent < sourceStallAfter || !ei.State.LastTime.After(lastActive) {
			continue
		}
		d.log.Warn("the partition stream's copy of the events stream is stalled; asking its leader to step down",
			"stream", d.names.PartStream(), "source_silent_for", silent.Round(time.Millisecond).String(),
			"events_last_seq", ei.State.LastSeq)
		stepped = time.Now()
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
