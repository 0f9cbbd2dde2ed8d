package bridge

import (
	"testing"
	"time"
)

// TestCountDeliveredBatch checks that counting a write's frames as a
// batch adds up to what recording each frame does: totals, replayed
// frames left out of the latency, runs of types, more distinct buckets
// than the batch keeps at once, and the maximum.
func TestCountDeliveredBatch(t *testing.T) {
	c := newCounters()
	added, search := c.typ("document.added"), c.typ("search.performed")
	now := time.Now()
	at := func(typ *typeStats, ageUS int64, replayed bool) *frame {
		return &frame{typ: typ, tsUS: now.UnixMicro() - ageUS, replayed: replayed}
	}
	frames := []*frame{
		at(added, 100, false), at(added, 100, false), at(search, 5000, false),
		at(added, 1_000_000, true), at(search, 70_000, false),
		at(added, 1, false), at(added, 2, false), at(added, 3, false), at(added, 4, false),
		at(added, 5, false), at(added, 6, false), at(search, -50, false), // a producer clock ahead: 0
	}
	c.countDelivered(frames, now)

	// The reference: each latency recorded on its own.
	var all, wantAdded, wantSearch hist
	for _, f := range frames {
		if f.replayed {
			continue
		}
		us := uint64(max(now.UnixMicro()-f.tsUS, 0))
		all.record(us)
		if f.typ == added {
			wantAdded.record(us)
		} else {
			wantSearch.record(us)
		}
	}
	if got := c.delivered.Load(); got != uint64(len(frames)) {
		t.Errorf("delivered %d, want %d", got, len(frames))
	}
	if got := c.replayed.Load(); got != 1 {
		t.Errorf("replayed %d, want 1", got)
	}
	if got, want := added.delivered.Load(), uint64(9); got != want {
		t.Errorf("document.added delivered %d, want %d", got, want)
	}
	if got, want := search.delivered.Load(), uint64(3); got != want {
		t.Errorf("search.performed delivered %d, want %d", got, want)
	}
	for _, h := range []struct {
		name      string
		got, want *hist
	}{{"all", &c.latency, &all}, {"document.added", &added.latency, &wantAdded}, {"search.performed", &search.latency, &wantSearch}} {
		if g, w := h.got.snapshot(), h.want.snapshot(); !sameHist(g, w) {
			t.Errorf("%s latency %+v, want %+v", h.name, g, w)
		}
	}
}

func sameHist(a, b histSnapshot) bool {
	if a.Count != b.Count || a.SumUS != b.SumUS || a.MaxUS != b.MaxUS || len(a.Buckets) != len(b.Buckets) {
		return false
	}
	for i := range a.Buckets {
		if a.Buckets[i] != b.Buckets[i] {
			return false
		}
	}
	return true
}
