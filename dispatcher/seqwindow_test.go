package dispatcher

import (
	"testing"
	"time"
)

func TestSeqWindow(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	w := newSeqWindow(10 * time.Second)
	for i := uint64(1); i <= 5000; i++ {
		w.add(i, t0.Add(time.Duration(i)*time.Millisecond))
	}
	// Sequence 7 never came (the previous owner still held it): it is not "already seen".
	w2 := newSeqWindow(10 * time.Second)
	w2.add(5, t0)
	w2.add(9, t0)
	if w2.has(7) || !w2.has(5) || !w2.has(9) {
		t.Fatalf("has(7)=%v has(5)=%v has(9)=%v; want false, true, true", w2.has(7), w2.has(5), w2.has(9))
	}
	if !w.has(1) || !w.has(5000) {
		t.Fatal("sequences within the span are forgotten")
	}
	// 16 s later, everything older than 10 s is forgotten, the rest kept.
	w.add(6000, t0.Add(16*time.Second))
	if w.has(1) || w.has(4999) {
		t.Error("sequences older than the span are still remembered")
	}
	if !w.has(6000) {
		t.Error("the newest sequence is forgotten")
	}
	if len(w.seqs) != 1 || len(w.order)-w.head != 1 {
		t.Errorf("%d sequences in the map, %d live in the order; want 1 and 1", len(w.seqs), len(w.order)-w.head)
	}
}
