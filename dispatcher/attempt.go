package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// URLHost is what logs show of a webhook URL: its host, since the query may carry a token.
func URLHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

// requestTimeout bounds every JetStream request and publish acknowledgement the delivery
// core waits for: a server that does not answer is retried, never waited on forever.
const requestTimeout = 5 * time.Second

// attempt sends one delivery and records what happened: metrics, activity and the shared
// breaker (probe: this attempt is the probe of an open breaker). An attempt already started is finished even during shutdown: its outcome decides
// between settling and handing back, and the HTTP timeout bounds it.
func (d *Dispatcher) attempt(ctx context.Context, v EndpointView, q Queued, probe bool) Attempt {
	label := endpointLabel(v.Endpoint)
	inFlight := d.metrics.InFlight.WithLabelValues(label)
	inFlight.Inc()
	d.activity.inFlight(v.ID, 1)
	at := d.sender.Send(context.WithoutCancel(ctx), v.Endpoint, Delivery{Body: q.Body, EventID: q.EventID})
	inFlight.Dec()
	d.activity.inFlight(v.ID, -1)
	d.activity.attempt(v.ID, at, time.Now())
	if at.Verdict != Forbidden {
		// A refused address says nothing about the endpoint's health.
		d.breakers.Report(context.WithoutCancel(ctx), v.ID, at.Verdict != Retry, probe, at.Reason())
	}
	d.metrics.AttemptDuration.WithLabelValues(label).Observe(at.Duration.Seconds())
	d.metrics.Deliveries.WithLabelValues(label, at.Verdict.String(), statusClass(at.Status)).Inc()
	if at.Verdict == Delivered {
		if !q.Stored.IsZero() {
			d.metrics.EndToEnd.WithLabelValues(label).Observe(time.Since(q.Stored).Seconds())
		}
		d.log.Debug("delivered", "room", q.Room, "event", q.Event, "event_id", q.EventID,
			"endpoint", v.ID, "host", URLHost(v.URL), "status", at.Status)
	}
	return at
}

// deadLetterReason maps a final verdict to its dead-letter reason and detail.
func deadLetterReason(at Attempt) (reason, detail string) {
	switch at.Verdict {
	case Gone:
		return ReasonGone, at.Reason()
	case Forbidden:
		return ReasonForbidden, at.Reason()
	default:
		return ReasonRejected, at.Reason()
	}
}

// disableGone marks an endpoint that answered 410 Gone disabled, for every replica.
func (d *Dispatcher) disableGone(ctx context.Context, id string) {
	if err := d.dir.Update(context.WithoutCancel(ctx), id, func(r *EndpointRecord) {
		r.Disabled, r.Reason = true, "answered 410 Gone"
	}); err != nil && !errors.Is(err, ErrEndpointNotFound) {
		d.log.Warn("could not disable endpoint", "endpoint", id, "error", err)
	}
}

// deadLetter records a delivery given up on. Recording it is part of settling, so it may
// outlive a shutdown briefly; an error means it was not recorded and the delivery must not be
// settled.
func (d *Dispatcher) deadLetter(ctx context.Context, id string, v EndpointView, q Queued, reason, detail string, attempts int, last Attempt, first time.Time) error {
	dl := DeadLetter{
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
	if err := publishDeadLetter(pctx, d.js, d.names.DLQSubject(id), dl); err != nil {
		d.log.Warn("could not record dead letter; keeping the delivery", "room", q.Room, "event_id", q.EventID, "endpoint", id, "error", err)
		return fmt.Errorf("record dead letter: %w", err)
	}
	d.metrics.DeadLetters.WithLabelValues(reason).Inc()
	d.activity.deadLettered(id)
	d.log.Warn("delivery dead-lettered", "room", q.Room, "event", q.Event, "event_id", q.EventID,
		"endpoint", id, "host", URLHost(v.URL), "reason", reason, "detail", detail, "attempts", attempts)
	return nil
}
