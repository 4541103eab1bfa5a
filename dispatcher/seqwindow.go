package dispatcher

import "time"

// seqWindow remembers the stream sequences seen during the last span of time. A partition
// uses it to tell a redelivery of an event it already fanned out (its acknowledgement was
// lost: acknowledge again) from an event it never saw (deliver it, however late). Forgetting
// errs on the safe side: an event redelivered after its entry expired is delivered again, a
// repeat, never a loss.
type seqWindow struct {
	span  time.Duration
	seqs  map[uint64]struct{}
	order []seenSeq // in the order added, for expiry; order[head:] are live
	head  int
}

type seenSeq struct {
	seq uint64
	at  time.Time
}

func newSeqWindow(span time.Duration) *seqWindow {
	return &seqWindow{span: span, seqs: map[uint64]struct{}{}}
}

// add records seq as seen at now and forgets what is older than the span.
func (w *seqWindow) add(seq uint64, now time.Time) {
	w.seqs[seq] = struct{}{}
	w.order = append(w.order, seenSeq{seq, now})
	for w.head < len(w.order) && now.Sub(w.order[w.head].at) > w.span {
		delete(w.seqs, w.order[w.head].seq)
		w.order[w.head] = seenSeq{}
		w.head++
	}
	if w.head > 1024 && w.head > len(w.order)/2 {
		w.order = append(w.order[:0], w.order[w.head:]...)
		w.head = 0
	}
}

// has reports whether seq was seen within the span.
func (w *seqWindow) has(seq uint64) bool {
	_, ok := w.seqs[seq]
	return ok
}
