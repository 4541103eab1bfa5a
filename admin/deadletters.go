package admin

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/roomhook/roomhook/deadletter"
	"github.com/roomhook/roomhook/queue"
	"github.com/roomhook/roomhook/schema"
)

// knownReason reports whether r is one of dispatcher's dead-letter reasons.
func knownReason(r string) bool {
	switch r {
	case deadletter.ReasonInvalid, deadletter.ReasonRejected, deadletter.ReasonGone, deadletter.ReasonExhausted,
		deadletter.ReasonForbidden:
		return true
	}
	return false
}

// selection is a checked Filter.
type selection struct {
	Filter
	endpointID string
}

func checkFilter(f Filter) (selection, error) {
	sel := selection{Filter: f}
	if f.Endpoint != "" {
		id, err := endpointIDOf(f.Endpoint)
		if err != nil {
			return sel, err
		}
		sel.endpointID = id
	}
	if f.Event != "" {
		if err := schema.ValidateEvent(f.Event); err != nil {
			return sel, badRequest("event: %v", err)
		}
	}
	if f.Reason != "" && !knownReason(f.Reason) {
		return sel, badRequest("reason %q: want invalid, rejected, gone, exhausted or forbidden", f.Reason)
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		return sel, badRequest("until (%s) is before since (%s)", f.Until.Format(time.RFC3339), f.Since.Format(time.RFC3339))
	}
	if f.Limit < 0 {
		return sel, badRequest("limit must not be negative")
	}
	return sel, nil
}

func (sel selection) matches(dl deadletter.Letter) bool {
	return (sel.endpointID == "" || dl.EndpointID == sel.endpointID) &&
		(sel.Room == "" || dl.Room == sel.Room) &&
		(sel.Event == "" || dl.Event == sel.Event) &&
		(sel.Reason == "" || dl.Reason == sel.Reason) &&
		(sel.Since.IsZero() || !dl.Time.Before(sel.Since)) &&
		(sel.Until.IsZero() || !dl.Time.After(sel.Until))
}

// scan calls visit with every dead letter the selection matches, oldest first, and the size of
// its body, until visit returns false. It reads the stream once with an ordered consumer
// (headers only unless bodies are wanted) up to the last dead letter stored when it began, so
// dead letters that arrive meanwhile cannot keep it going.
func (s *Service) scan(ctx context.Context, st jetstream.Stream, sel selection, bodies bool, visit func(dl deadletter.Letter, bodyBytes int) bool) error {
	lastSeq, lastTime, err := s.scanEnd(ctx, st, sel)
	if err != nil || lastSeq == 0 || (!sel.Since.IsZero() && lastTime.Before(sel.Since)) {
		return err
	}
	cfg := jetstream.OrderedConsumerConfig{HeadersOnly: !bodies, InactiveThreshold: 30 * time.Second}
	if sel.endpointID != "" {
		cfg.FilterSubjects = []string{s.names.DLQSubject(sel.endpointID)}
	}
	if !sel.Since.IsZero() {
		since := sel.Since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	cons, err := st.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("read dead letters: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(256))
	if err != nil {
		return fmt.Errorf("read dead letters: %w", err)
	}
	defer it.Stop()
	for {
		m, err := nextMsg(ctx, it)
		if errors.Is(err, errScanIdle) {
			// What remained was deleted after scanEnd looked (a replay was delivered, a
			// purge ran): nothing more will come.
			return nil
		}
		if err != nil {
			return fmt.Errorf("read dead letters: %w", err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("read dead letters: %w", err)
		}
		if meta.Sequence.Stream > lastSeq {
			return nil
		}
		dl := deadletter.Parse(&jetstream.RawStreamMsg{
			Subject: m.Subject(), Sequence: meta.Sequence.Stream, Header: m.Headers(), Data: m.Data(), Time: meta.Timestamp,
		})
		if !sel.Until.IsZero() && dl.Time.After(sel.Until) {
			return nil // stored in time order: nothing later can match
		}
		size := len(dl.Body)
		if n, err := strconv.Atoi(m.Headers().Get(nats.MsgSize)); err == nil && !bodies {
			size = n // a headers-only read carries the body's size instead of the body
		}
		if sel.matches(dl) && !visit(dl, size) {
			return nil
		}
		if meta.Sequence.Stream == lastSeq || meta.NumPending == 0 {
			return nil
		}
	}
}

// scanIdle is how long a scan waits for a next message that should be there at once.
const scanIdle = 5 * time.Second

var errScanIdle = errors.New("no message within the idle time")

func nextMsg(ctx context.Context, it jetstream.MessagesContext) (jetstream.Msg, error) {
	wait, cancel := context.WithTimeout(ctx, scanIdle)
	defer cancel()
	m, err := it.Next(jetstream.NextContext(wait))
	if err != nil && ctx.Err() == nil && wait.Err() != nil {
		return nil, errScanIdle
	}
	return m, err
}

// scanEnd is the sequence and time of the last dead letter a scan may read; 0 when there is none.
func (s *Service) scanEnd(ctx context.Context, st jetstream.Stream, sel selection) (uint64, time.Time, error) {
	if sel.endpointID != "" {
		m, err := st.GetLastMsgForSubject(ctx, s.names.DLQSubject(sel.endpointID))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return 0, time.Time{}, nil
		}
		if err != nil {
			return 0, time.Time{}, fmt.Errorf("read dead letters: %w", err)
		}
		return m.Sequence, m.Time, nil
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("read dead letters: %w", err)
	}
	if info.State.Msgs == 0 {
		return 0, time.Time{}, nil
	}
	return info.State.LastSeq, info.State.LastTime, nil
}

func summary(dl deadletter.Letter, size int) DeadLetter {
	return DeadLetter{
		Seq: dl.Sequence, Time: dl.Time, Reason: dl.Reason, Detail: dl.Detail,
		EndpointID: dl.EndpointID, EndpointURL: RedactURL(dl.EndpointURL),
		Room: dl.Room, Event: dl.Event, EventID: dl.EventID, EventSeq: dl.EventSeq, EventStored: dl.Stored,
		Subject: dl.Subject, Attempts: dl.Attempts, LastStatus: dl.LastStatus, LastError: dl.LastError,
		FirstAttempt: dl.FirstAttempt, LastAttempt: dl.LastAttempt, BodyBytes: size, Truncated: dl.Truncated,
	}
}

func (s *Service) dlqList(ctx context.Context, req micro.Request) (any, error) {
	var f Filter
	if err := decode(req, &f); err != nil {
		return nil, err
	}
	sel, err := checkFilter(f)
	if err != nil {
		return nil, err
	}
	limit := f.Limit
	if limit == 0 {
		limit = DefaultListLimit
	}
	if limit > MaxListLimit {
		return nil, badRequest("limit %d is over %d for a listing; narrow the filter", limit, MaxListLimit)
	}
	// The limit only caps what is listed: Matched counts every match.
	sel.Limit = 0
	st, err := s.dlqStream(ctx)
	if err != nil {
		return nil, err
	}
	out := DeadLetterList{DeadLetters: []DeadLetter{}}
	err = s.scan(ctx, st, sel, false, func(dl deadletter.Letter, size int) bool {
		out.Matched++
		if len(out.DeadLetters) < limit {
			out.DeadLetters = append(out.DeadLetters, summary(dl, size))
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Service) dlqShow(ctx context.Context, req micro.Request) (any, error) {
	var r ShowRequest
	if err := decode(req, &r); err != nil {
		return nil, err
	}
	if r.Seq == 0 {
		return nil, badRequest("seq: give a dead letter's sequence (dlq list shows them)")
	}
	st, err := s.dlqStream(ctx)
	if err != nil {
		return nil, err
	}
	m, err := st.GetMsg(ctx, r.Seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, notFound("no dead letter %d (replayed and delivered, purged, or expired)", r.Seq)
	}
	if err != nil {
		return nil, fmt.Errorf("dead letter %d: %w", r.Seq, err)
	}
	dl := deadletter.Parse(m)
	out := DeadLetterDetail{DeadLetter: summary(dl, len(dl.Body))}
	if body := redactBody(dl.Body); utf8.Valid(dl.Body) {
		out.Body = string(body)
	} else {
		out.BodyBase64 = base64.StdEncoding.EncodeToString(body)
	}
	return out, nil
}

func (s *Service) dlqReplay(ctx context.Context, req micro.Request) (any, error) {
	var f Filter
	if err := decode(req, &f); err != nil {
		return nil, err
	}
	sel, err := checkFilter(f)
	if err != nil {
		return nil, err
	}
	st, err := s.dlqStream(ctx)
	if err != nil {
		return nil, err
	}
	var picked []deadletter.Letter
	err = s.scan(ctx, st, sel, true, func(dl deadletter.Letter, _ int) bool {
		picked = append(picked, dl)
		return f.Limit == 0 || len(picked) < f.Limit
	})
	if err != nil {
		return nil, err
	}
	recs, err := s.endpointRecords(ctx)
	if err != nil {
		return nil, err
	}
	// In the order the events were stored, so that each room's lane sends them as it would have.
	slices.SortStableFunc(picked, func(a, b deadletter.Letter) int {
		return cmp.Or(cmp.Compare(a.EventSeq, b.EventSeq), cmp.Compare(a.Sequence, b.Sequence))
	})
	res := ReplayResult{Matched: len(picked)}
	skip := func(seq uint64, why string) {
		res.SkippedTotal++
		if len(res.Skipped) < MaxSkippedListed {
			res.Skipped = append(res.Skipped, Skipped{Seq: seq, Reason: why})
		}
	}
	for _, dl := range picked {
		rec, known := recs[dl.EndpointID]
		switch {
		case dl.Reason == deadletter.ReasonInvalid || dl.EndpointID == deadletter.ReasonInvalid:
			skip(dl.Sequence, "invalid event: there is no endpoint to deliver it to")
			continue
		case dl.Room == "" || dl.EndpointID == "":
			skip(dl.Sequence, "dead letter has no room or endpoint")
			continue
		case dl.Truncated:
			skip(dl.Sequence, "body was truncated")
			continue
		case !known:
			skip(dl.Sequence, "endpoint "+dl.EndpointID+" is not registered any more")
			continue
		case s.cfg.Delivers != nil && !s.cfg.Delivers(dl.EndpointID):
			skip(dl.Sequence, "endpoint "+dl.EndpointID+" is not configured on the replicas any more")
			continue
		case rec.Disabled:
			// The drainer of its spill queue would dead-letter it again at once.
			skip(dl.Sequence, "endpoint "+dl.EndpointID+" is disabled ("+rec.Reason+"): resume it first")
			continue
		}
		seq := strconv.FormatUint(dl.Sequence, 10)
		q := queue.Queued{Room: dl.Room, Event: dl.Event, EventID: dl.EventID, EventSeq: dl.EventSeq,
			Stored: dl.Stored, Body: dl.Body, ReplayOf: dl.Sequence}
		// A replay goes to the endpoint's spill queue on the room's partition, and the
		// partition's owner is told to drain it.
		part := queue.Partition(dl.Room, s.cfg.Partitions)
		subject := s.names.SpillSubject(dl.EndpointID, part, 1)
		ack, err := s.js.PublishMsg(ctx, q.Msg(subject, "replay:"+seq+":"+dl.EndpointID))
		if err == nil {
			_ = s.js.Conn().Publish(s.names.NotifySubject(part), []byte(dl.EndpointID))
		}
		if err != nil {
			if res.Replayed > 0 {
				s.log.Info("dead letters replayed before an error", "replayed", res.Replayed)
			}
			return nil, fmt.Errorf("replay dead letter %d (%d replayed before it): %w", dl.Sequence, res.Replayed, err)
		}
		if ack.Duplicate {
			skip(dl.Sequence, "already queued by a replay moments ago")
			continue
		}
		res.Replayed++
	}
	s.log.Info("dead letters replayed by an operator", "matched", res.Matched, "replayed", res.Replayed, "skipped", res.SkippedTotal)
	return res, nil
}

func (s *Service) dlqPurge(ctx context.Context, req micro.Request) (any, error) {
	var r PurgeRequest
	if err := decode(req, &r); err != nil {
		return nil, err
	}
	sel, err := checkFilter(r.Filter)
	if err != nil {
		return nil, err
	}
	st, err := s.dlqStream(ctx)
	if err != nil {
		return nil, err
	}
	if r.Filter.Empty() {
		if !r.All {
			return nil, badRequest("no filter given: to purge every dead letter, say all")
		}
		info, err := st.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("purge dead letters: %w", err)
		}
		if err := st.Purge(ctx); err != nil {
			return nil, fmt.Errorf("purge dead letters: %w", err)
		}
		s.log.Info("every dead letter purged by an operator", "purged", info.State.Msgs)
		return PurgeResult{Purged: info.State.Msgs}, nil
	}
	var seqs []uint64
	err = s.scan(ctx, st, sel, false, func(dl deadletter.Letter, _ int) bool {
		seqs = append(seqs, dl.Sequence)
		return r.Limit == 0 || len(seqs) < r.Limit
	})
	if err != nil {
		return nil, err
	}
	var res PurgeResult
	for _, seq := range seqs {
		deleted, err := deleteMsg(ctx, st, seq)
		if err != nil {
			return nil, fmt.Errorf("purge dead letter %d (%d purged before it): %w", seq, res.Purged, err)
		}
		if deleted {
			res.Purged++
		}
	}
	s.log.Info("dead letters purged by an operator", "purged", res.Purged)
	return res, nil
}

// deleteMsg deletes one message; false when it was gone already (a replay was delivered
// meanwhile, or it expired). The server's "no message found" does not come back as
// jetstream.ErrMsgNotFound from DeleteMsg, so a failed delete looks the message up.
func deleteMsg(ctx context.Context, st jetstream.Stream, seq uint64) (bool, error) {
	err := st.DeleteMsg(ctx, seq)
	if err == nil {
		return true, nil
	}
	if _, getErr := st.GetMsg(ctx, seq); errors.Is(getErr, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	return false, err
}
