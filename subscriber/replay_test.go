package subscriber_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/checker"
	"github.com/arrwdb/arrwcdc/subscriber"
)

// Replay from a sequence and from a time across 100k stored events
// returns exactly the right range, in stream order.
func TestReplayRange100k(t *testing.T) {
	if testing.Short() {
		t.Skip("100k events; TestReplayRange10k runs in -short")
	}
	testReplayRange(t, 100_000)
}

func TestReplayRange10k(t *testing.T) { testReplayRange(t, 10_000) }

func testReplayRange(t *testing.T, n int) {
	e := newJSEnv(t)
	libs := libraries(8)
	begin := time.Now()
	firstHalf := publishMany(t, e.pub, n/2, libs, nil, nil)
	// Every event of the first half is stored (acknowledged) before mid;
	// every later one after it.
	mid := time.Now()
	secondHalf := publishMany(t, e.pub, n-n/2, libs, nil, nil)
	all := append(firstHalf, secondHalf...)
	t.Logf("published %d events in %v", n, time.Since(begin).Round(time.Millisecond))
	if all[len(all)-1].ack.Seq != uint64(n) {
		t.Fatalf("last seq %d", all[len(all)-1].ack.Seq)
	}

	from := all[n/3].ack.Seq
	tests := []struct {
		name   string
		filter subscriber.Filter
		opts   []subscriber.Option
		want   func(p published) bool
	}{
		{"from seq", subscriber.Filter{}, []subscriber.Option{subscriber.StartSeq(from)},
			func(p published) bool { return p.ack.Seq >= from }},
		{"from time", subscriber.Filter{}, []subscriber.Option{subscriber.StartTime(mid)},
			func(p published) bool { return p.ack.Seq > firstHalf[len(firstHalf)-1].ack.Seq }},
		{"one library from seq", subscriber.Filter{LibraryID: libs[3]}, []subscriber.Option{subscriber.StartSeq(from)},
			func(p published) bool { return p.ack.Seq >= from && p.ev.LibraryID == libs[3] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := checker.New()
			var last uint64
			for _, p := range all {
				if tt.want(p) {
					c.Ack(p.ack.Seq, p.ack.ID)
					last = p.ack.Seq
				}
			}
			start := time.Now()
			s := replay(t, e.js, tt.filter, recordTo(t, c), tt.opts...)
			c.Wait(t, 2*time.Minute)
			// Delivered in stream order, so after the last expected event
			// nothing else of the range can come; stop and check.
			if err := s.Unsubscribe(); err != nil {
				t.Fatal(err)
			}
			t.Logf("replayed %d events in %v", c.Deliveries(), time.Since(start).Round(time.Millisecond))
			c.Require(t)
			seqs := c.Seqs()
			if !slices.IsSorted(seqs) || seqs[len(seqs)-1] != last {
				t.Fatalf("not in stream order, or beyond %d", last)
			}
			if st := s.Stats(); st.Handled != uint64(c.Acked()) || st.Failed+st.Invalid != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// Replay goes on live after the history; a handler error is counted and
// delivery goes on; DeliverNew skips the history.
func TestReplayLiveAndErrors(t *testing.T) {
	e := newJSEnv(t)
	history := publishJS(t, e.pub, nil, newEvent(t, libA, event.TypeDocumentAdded, 0), newEvent(t, libB, event.TypeDocumentAdded, 1))

	all, fresh := checker.New(), checker.New()
	for _, a := range history {
		all.Ack(a.Seq, a.ID)
	}
	var failOnce atomic.Bool
	sAll := replay(t, e.js, subscriber.Filter{}, func(ctx context.Context, d subscriber.Delivery) error {
		if err := recordTo(t, all)(ctx, d); err != nil {
			return err
		}
		if failOnce.CompareAndSwap(false, true) {
			return errors.New("not retried")
		}
		return nil
	}, subscriber.DeliverAll())
	sNew := replay(t, e.js, subscriber.Filter{}, recordTo(t, fresh), subscriber.DeliverNew(), subscriber.Concurrency(3))
	all.Wait(t, waitTimeout)

	live := publishJS(t, e.pub, nil, newEvent(t, libA, event.TypeDocumentDeleted, 2), newEvent(t, libB, "workflow.completed", 3))
	for _, a := range live {
		all.Ack(a.Seq, a.ID)
		fresh.Ack(a.Seq, a.ID)
	}
	all.Wait(t, waitTimeout)
	fresh.Wait(t, waitTimeout)
	drain(t, sAll)
	drain(t, sNew)
	all.Require(t)
	fresh.Require(t)
	if st := sAll.Stats(); st.Failed != 1 || st.Handled != 3 || st.Retried != 0 {
		t.Errorf("stats %+v", st)
	}

	// The ephemeral consumers are gone from the server.
	st, err := e.js.Stream(t.Context(), subscriber.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	lister := st.ConsumerNames(t.Context())
	var names []string
	for name := range lister.Name() {
		names = append(names, name)
	}
	if len(names) != 0 {
		t.Errorf("consumers left: %v", names)
	}
}

// Replay of an empty range, and from a sequence beyond the end, waits for
// new events.
func TestReplayFromTheFuture(t *testing.T) {
	e := newJSEnv(t)
	publishJS(t, e.pub, nil, newEvent(t, libA, event.TypeDocumentAdded, 0))
	c := checker.New()
	s := replay(t, e.js, subscriber.Filter{}, recordTo(t, c), subscriber.StartSeq(3))
	acks := publishJS(t, e.pub, nil, newEvent(t, libA, event.TypeDocumentAdded, 1), newEvent(t, libA, event.TypeDocumentAdded, 2))
	c.Ack(acks[1].Seq, acks[1].ID)
	c.Wait(t, waitTimeout)
	drain(t, s)
	c.Require(t)
	if acks[1].Seq != 3 {
		t.Fatal(fmt.Sprint(acks))
	}
}
