package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// HeaderBatch marks a message that holds several deliveries of one route, in the batch
// format (its value is the format's version). A message without it holds one delivery in
// headers and body (Msg). The partition's owner stores a route's spilled deliveries in
// batches: one stored message, one acknowledgement and one deduplication entry for up to
// BatchMaxDeliveries deliveries, where one message each cost the same per delivery.
const HeaderBatch = "Roomhook-Batch"

// batchVersion is the only batch format there is so far.
const batchVersion = "1"

// Batch bounds. A drainer holds whole messages, so these bound what one stored message adds
// to a drainer's memory; a single delivery above BatchMaxBytes is a batch of its own.
const (
	BatchMaxDeliveries = 8
	BatchMaxBytes      = 32 << 10
)

// ErrBadBatch is the error of a message whose batch body cannot be read.
var ErrBadBatch = errors.New("unreadable batch of spilled deliveries")

// Take returns how many of n waiting deliveries, the i-th of whose body is size(i) bytes,
// make the next batch: at most BatchMaxDeliveries and, unless the first alone is larger, at
// most BatchMaxBytes of bodies.
func Take(n int, size func(i int) int) int {
	k, total := 0, 0
	for k < n && k < BatchMaxDeliveries {
		total += size(k)
		if k > 0 && total > BatchMaxBytes {
			break
		}
		k++
	}
	return k
}

// BatchMsg is the message that stores qs, in order, on subject; msgID makes a repeated
// publish of the same batch a no-op.
func BatchMsg(subject, msgID string, qs []Queued) *nats.Msg {
	size := 0
	for _, q := range qs {
		size += len(q.Body) + len(q.Room) + len(q.Event) + len(q.EventID) + 64
	}
	b := make([]byte, 0, size)
	for _, q := range qs {
		b = binary.AppendUvarint(b, q.EventSeq)
		b = appendTime(b, q.Stored)
		b = binary.AppendUvarint(b, q.ReplayOf)
		b = binary.AppendUvarint(b, uint64(q.Attempts))
		if q.Attempts > 0 {
			b = appendTime(b, q.FirstAttempt)
			b = appendTime(b, q.NextAttempt)
		}
		b = appendString(b, q.Room)
		b = appendString(b, q.Event)
		b = appendString(b, q.EventID)
		b = binary.AppendUvarint(b, uint64(len(q.Body)))
		b = append(b, q.Body...)
	}
	m := nats.NewMsg(subject)
	m.Data = b
	m.Header[HeaderBatch] = []string{batchVersion}
	m.Header[nats.MsgIdHdr] = []string{msgID}
	return m
}

// ParseAll reads every delivery a stored message holds: one for a message in the
// one-delivery format, all of them in order for a batch. The bodies share data's memory.
func ParseAll(h nats.Header, data []byte) ([]Queued, error) {
	v := h.Get(HeaderBatch)
	if v == "" {
		return []Queued{Parse(h, data)}, nil
	}
	if v != batchVersion {
		return nil, fmt.Errorf("%w: format %q, this version reads %q", ErrBadBatch, v, batchVersion)
	}
	var out []Queued
	r := batchReader{b: data}
	for len(r.b) > 0 && r.err == nil {
		var q Queued
		q.EventSeq = r.uvarint()
		q.Stored = r.time()
		q.ReplayOf = r.uvarint()
		q.Attempts = int(r.uvarint())
		if q.Attempts > 0 {
			q.FirstAttempt = r.time()
			q.NextAttempt = r.time()
		}
		q.Room = string(r.bytes())
		q.Event = string(r.bytes())
		q.EventID = string(r.bytes())
		q.Body = r.bytes()
		if r.err == nil {
			out = append(out, q)
		}
	}
	if r.err != nil {
		return nil, fmt.Errorf("%w: delivery %d: %w", ErrBadBatch, len(out)+1, r.err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: it holds no delivery", ErrBadBatch)
	}
	return out, nil
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(b, 0)
	}
	return binary.AppendVarint(b, t.UnixNano())
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// batchReader reads the records of a batch; the first error sticks.
type batchReader struct {
	b   []byte
	err error
}

var errTruncated = errors.New("truncated")

func (r *batchReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errTruncated
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *batchReader) time() time.Time {
	if r.err != nil {
		return time.Time{}
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errTruncated
		return time.Time{}
	}
	r.b = r.b[n:]
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v)
}

func (r *batchReader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errTruncated
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}
