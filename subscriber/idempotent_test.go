package subscriber_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/checker"
	"github.com/arrwdb/arrwcdc/internal/testnats"
	"github.com/arrwdb/arrwcdc/subscriber"
)

// A redelivered event (same id) runs the inner handler once: after an ack
// that is lost (the outer handler fails after the inner one acted), and
// when the stream holds the same event twice (a publish outside the
// duplicate window).
func TestIdempotentRedelivery(t *testing.T) {
	e := newJSEnv(t)
	var (
		mu    sync.Mutex
		calls = map[string]int{}
	)
	inner := func(_ context.Context, d subscriber.Delivery) error {
		mu.Lock()
		calls[d.ID]++
		mu.Unlock()
		return nil
	}
	idem := subscriber.Idempotent(subscriber.NewMemoryStore(0, 0), inner)
	c := checker.New()
	var attempts atomic.Int64
	s := consume(t, e.js, "idem", subscriber.Filter{}, func(ctx context.Context, d subscriber.Delivery) error {
		if err := idem(ctx, d); err != nil {
			return err
		}
		if d.Attempt == 1 && dataN(t, d) == 1 {
			return errors.New("acted, but the ack is lost")
		}
		attempts.Add(int64(d.Attempt))
		c.Record(d.Seq, d.ID)
		return nil
	}, subscriber.Backoff(10*time.Millisecond))

	once := newEvent(t, libA, event.TypeDocumentAdded, 1)
	twice := newEvent(t, libA, event.TypeDocumentAdded, 2)
	acks := publishJS(t, e.pub, nil, once, twice)
	c.Ack(acks[0].Seq, acks[0].ID)
	// The same event again under another message id: the stream keeps it.
	data, _ := event.Encode(&twice, 0)
	m := nats.NewMsg("events.library." + libA + ".document.added")
	m.Data = data
	again, err := testnats.JetStream(t, e.env.pub).PublishMsg(t.Context(), m, jetstream.WithMsgID("other-"+twice.ID))
	if err != nil || again.Duplicate {
		t.Fatalf("publish again: %+v, %v", again, err)
	}
	waitStats(t, s, func(st subscriber.Stats) bool { return st.Handled == 3 })
	drain(t, s)

	mu.Lock()
	defer mu.Unlock()
	if calls[once.ID] != 1 || calls[twice.ID] != 1 {
		t.Fatalf("inner calls %v", calls)
	}
	if st := s.Stats(); st.Retried != 1 || st.Failed != 1 {
		t.Fatalf("stats %+v", st)
	}
	// The checker sees the id twice (at two sequences) and the retried one
	// once.
	if d := c.Duplicates(); len(d) != 1 || d[0].ID != twice.ID {
		t.Fatalf("duplicates %v", d)
	}
}

func TestIdempotentConcurrentSameID(t *testing.T) {
	var calls atomic.Int64
	started := make(chan struct{})
	release := make(chan struct{})
	h := subscriber.Idempotent(subscriber.NewMemoryStore(10, 0), func(context.Context, subscriber.Delivery) error {
		if calls.Add(1) == 1 {
			close(started)
			<-release
		}
		return nil
	})
	d := subscriber.Delivery{Event: event.Event{ID: "same"}}
	var wg sync.WaitGroup
	wg.Go(func() { _ = h(t.Context(), d) })
	<-started
	for range 5 {
		wg.Go(func() { _ = h(t.Context(), d) })
	}
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("inner ran %d times", n)
	}
	// Another id is not held up by a busy one, and a waiter gives up
	// with its ctx.
	block, holding := make(chan struct{}), make(chan struct{})
	h2 := subscriber.Idempotent(subscriber.NewMemoryStore(10, 0), func(ctx context.Context, d subscriber.Delivery) error {
		if d.ID == "slow" {
			close(holding)
			<-block
		}
		return nil
	})
	wg.Go(func() { _ = h2(t.Context(), subscriber.Delivery{Event: event.Event{ID: "slow"}}) })
	<-holding
	if err := h2(t.Context(), subscriber.Delivery{Event: event.Event{ID: "fast"}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := h2(ctx, subscriber.Delivery{Event: event.Event{ID: "slow"}}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiter: %v", err)
	}
	close(block)
	wg.Wait()
}

// failingStore fails Seen or Mark.
type failingStore struct {
	subscriber.Store
	seenErr, markErr error
}

func (f failingStore) Seen(ctx context.Context, id string) (bool, error) {
	if f.seenErr != nil {
		return false, f.seenErr
	}
	return f.Store.Seen(ctx, id)
}

func (f failingStore) Mark(ctx context.Context, id string) error {
	if f.markErr != nil {
		return f.markErr
	}
	return f.Store.Mark(ctx, id)
}

func TestIdempotentKeysAndErrors(t *testing.T) {
	var calls int
	inner := func(_ context.Context, d subscriber.Delivery) error {
		calls++
		if d.Source == "fail" {
			return errors.New("inner failed")
		}
		return nil
	}
	store := subscriber.NewMemoryStore(0, 0)
	h := subscriber.Idempotent(store, inner)
	ctx := t.Context()
	run := func(d subscriber.Delivery) error { return h(ctx, d) }

	// No id: keyed by seq; no id and no seq: always runs.
	for range 2 {
		_ = run(subscriber.Delivery{Seq: 7})
		_ = run(subscriber.Delivery{})
	}
	if calls != 3 {
		t.Fatalf("calls %d, want 3", calls)
	}
	if seen, _ := store.Seen(ctx, "seq:7"); !seen {
		t.Fatal("seq key not marked")
	}
	// A failing inner handler is not marked: it runs again.
	calls = 0
	failing := subscriber.Delivery{Event: event.Event{ID: "f", Source: "fail"}}
	for range 2 {
		if err := run(failing); err == nil || err.Error() != "inner failed" {
			t.Fatalf("error %v", err)
		}
	}
	if calls != 2 {
		t.Fatalf("calls %d", calls)
	}

	boom := errors.New("store down")
	hs := subscriber.Idempotent(failingStore{Store: store, seenErr: boom}, inner)
	if err := hs(ctx, subscriber.Delivery{Event: event.Event{ID: "x"}}); !errors.Is(err, boom) {
		t.Fatalf("seen error: %v", err)
	}
	hm := subscriber.Idempotent(failingStore{Store: store, markErr: boom}, inner)
	if err := hm(ctx, subscriber.Delivery{Event: event.Event{ID: "y"}}); !errors.Is(err, boom) {
		t.Fatalf("mark error: %v", err)
	}
}

func TestMemoryStore(t *testing.T) {
	ctx := t.Context()
	now := time.Unix(1000, 0)
	m := subscriber.NewMemoryStore(3, time.Minute)
	m.SetClock(func() time.Time { return now })
	seen := func(id string) bool {
		ok, err := m.Seen(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for _, id := range []string{"a", "b", "c"} {
		if err := m.Mark(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if !seen("a") || !seen("b") || !seen("c") || seen("d") {
		t.Fatal("after 3 marks")
	}
	_ = m.Mark(ctx, "a") // a is now the most recent: b goes first
	_ = m.Mark(ctx, "d")
	if seen("b") || !seen("a") || !seen("c") || !seen("d") || m.Len() != 3 {
		t.Fatalf("after eviction: len %d", m.Len())
	}
	now = now.Add(59 * time.Second)
	_ = m.Mark(ctx, "e") // pushes out c
	if !seen("a") || seen("c") {
		t.Fatal("before the TTL")
	}
	now = now.Add(time.Second) // a and d are a minute old now
	if seen("a") || seen("d") || !seen("e") {
		t.Fatal("after the TTL")
	}
	if m.Len() != 1 {
		t.Fatalf("len %d", m.Len())
	}

	big := subscriber.NewMemoryStore(0, 0)
	for i := range subscriber.DefaultMemoryStoreSize + 10 {
		_ = big.Mark(ctx, fmt.Sprint(i))
	}
	if big.Len() != subscriber.DefaultMemoryStoreSize {
		t.Fatalf("len %d", big.Len())
	}
}

func ExampleIdempotent() {
	store := subscriber.NewMemoryStore(10_000, time.Hour)
	h := subscriber.Idempotent(store, func(_ context.Context, d subscriber.Delivery) error {
		fmt.Println("charge", d.ID)
		return nil
	})
	d := subscriber.Delivery{Event: event.Event{ID: "0193f1d2-8c4e-7b3a-9d2f-2c6e5a7b8c9d"}, Seq: 42}
	_ = h(context.Background(), d)
	_ = h(context.Background(), d) // delivered again: skipped
	// Output: charge 0193f1d2-8c4e-7b3a-9d2f-2c6e5a7b8c9d
}

// TestMemoryStoreKeepsNoPayload: the store remembers an id read in place
// from a message's payload (event.DecodeShared, as the subscriber reads
// core messages) as a copy: the payload is neither kept alive nor seen
// changing when its memory is reused.
func TestMemoryStoreKeepsNoPayload(t *testing.T) {
	const id = "019abc4e-5f6a-7b8c-9d0e-1f2a3b4c5d6e"
	payload := []byte(`{"id":"` + id + `","type":"document.added","library_id":"lib-1","timestamp":"2025-10-27T06:01:00Z","data":{}}`)
	ev, err := event.DecodeShared(payload, 0)
	if err != nil {
		t.Fatal(err)
	}
	m := subscriber.NewMemoryStore(10, 0)
	if err := m.Mark(t.Context(), ev.ID); err != nil {
		t.Fatal(err)
	}
	for i := range payload {
		payload[i] = 'x'
	}
	if ok, _ := m.Seen(t.Context(), id); !ok {
		t.Errorf("the store forgot %s once the payload's memory was reused: it kept the payload's string", id)
	}
}
