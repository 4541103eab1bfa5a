package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/roomhook/roomhook/deadletter"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/queue"
	"github.com/roomhook/roomhook/sender"
)

// requestTimeout bounds every JetStream request and publish acknowledgement the delivery
// core waits for: a server that does not answer is retried, never waited on forever.
const requestTimeout = 5 * time.Second

// attempt sends one delivery and records what happened: metrics, activity and the shared
// breaker (probe: this attempt is the probe of an open breaker). An attempt already started is finished even during shutdown: its outcome decides
// between settling and handing back, and the HTTP timeout bounds it.
func (d *Dispatcher) attempt(ctx context.Context, v endpoint.View, q queue.Queued, probe bool) sender.Attempt {
	label := endpointLabel(v.Endpoint)
	inFlight := d.metrics.InFlight.WithLabelValues(label)
	inFlight.Inc()
	d.activity.inFlight(v.ID, 1)
	at := d.sender.Send(context.WithoutCancel(ctx), v.Endpoint, sender.Delivery{Body: q.Body, EventID: q.EventID})
	inFlight.Dec()
	d.activity.inFlight(v.ID, -1)
	d.activity.attempt(v.ID, at, time.Now())
	if at.Verdict != sender.Forbidden && !at.NotSent {
		// A refused address, or no connection free on this replica, says nothing about the
		// endpoint's health.
		d.breakers.Report(context.WithoutCancel(ctx), v.ID, at.Verdict != sender.Retry, probe, at.Reason())
	}
	d.metrics.AttemptDuration.WithLabelValues(label).Observe(at.Duration.Seconds())
	d.metrics.Deliveries.WithLabelValues(label, at.Verdict.String(), statusClass(at.Status)).Inc()
	if at.Verdict == sender.Delivered {
		if !q.Stored.IsZero() {
			d.metrics.EndToEnd.WithLabelValues(label).Observe(time.Since(q.Stored).Seconds())
		}
		if d.log.Enabled(ctx, slog.LevelDebug) { // its arguments (the host parsed from the URL) cost more than the check
			d.log.Debug("delivered", "room", q.Room, "event", q.Event, "event_id", q.EventID,
				"endpoint", v.ID, "host", endpoint.URLHost(v.URL), "status", at.Status)
		}
	}
	return at
}

// deadLetterReason maps a final verdict to its dead-letter reason and detail.
func deadLetterReason(at sender.Attempt) (reason, detail string) {
	switch at.Verdict {
	case sender.Gone:
		return deadletter.ReasonGone, at.Reason()
	case sender.Forbidden:
		return deadletter.ReasonForbidden, at.Reason()
	default:
		return deadletter.ReasonRejected, at.Reason()
	}
}

// disableGone marks an endpoint that answered 410 Gone disabled, for every replica.
func (d *Dispatcher) disableGone(ctx context.Context, id string) {
	// Not cancelled with ctx, as the dead letter it goes with is not, but bounded.
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
	defer cancel()
	if err := d.dir.Update(uctx, id, func(r *endpoint.Record) {
		r.Disabled, r.Reason = true, "answered 410 Gone"
	}); err != nil && !errors.Is(err, endpoint.ErrNotFound) {
		d.log.Warn("could not disable endpoint", "endpoint", id, "error", err)
	}
}

// deadLetter records a delivery given up on. Recording it is part of settling, so it may
// outlive a shutdown briefly; an error means it was not recorded and the delivery must not be
// settled.
func (d *Dispatcher) deadLetter(ctx context.Context, id string, v endpoint.View, q queue.Queued, reason, detail string, attempts int, last sender.Attempt, first time.Time) error {
	dl := deadletter.Letter{
		Reason: reason, Detail: detail, EndpointID: id, EndpointURL: v.URL,
		Room: q.Room, Event: q.Event, EventID: q.EventID, EventSeq: q.EventSeq, Stored: q.Stored,
		Attempts: attempts, LastStatus: last.Status, FirstAttempt: first, Body: q.Body, ReplayOf: q.ReplayOf,
	}
	if last.Err != nil {
		dl.LastError = last.Reason()
	}
	if attempts > 0 {
		dl.LastAttempt = time.Now()
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
	defer cancel()
	if err := deadletter.Publish(pctx, d.js, d.names.DLQSubject(id), dl); err != nil {
		d.log.Warn("could not record dead letter; keeping the delivery", "room", q.Room, "event_id", q.EventID, "endpoint", id, "error", err)
		return fmt.Errorf("record dead letter: %w", err)
	}
	d.metrics.DeadLetters.WithLabelValues(reason).Inc()
	d.activity.deadLettered(id)
	d.log.Warn("delivery dead-lettered", "room", q.Room, "event", q.Event, "event_id", q.EventID,
		"endpoint", id, "host", endpoint.URLHost(v.URL), "reason", reason, "detail", detail, "attempts", attempts)
	return nil
}
