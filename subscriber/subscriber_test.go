package subscriber_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/testnats"
	"github.com/arrwdb/arrwcdc/subjects"
	"github.com/arrwdb/arrwcdc/subscriber"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	libA = "550e8400-e29b-41d4-a716-446655440000"
	libB = "lib-b"
)

func TestFilters(t *testing.T) {
	e := newEnv(t)
	// One publisher, in this order; each case must see exactly its share,
	// in the same order.
	evs := []event.Event{
		newEvent(t, libA, event.TypeLibraryCreated, 0),
		newEvent(t, libA, event.TypeDocumentAdded, 1),
		newEvent(t, libB, event.TypeDocumentAdded, 2),
		newEvent(t, libA, event.TypeDocumentDeleted, 3),
		newEvent(t, libB, "workflow.completed", 4),
		newEvent(t, libA, event.TypeSearchPerformed, 5),
		newEvent(t, libB, event.TypeDocumentDeleted, 6),
		newEvent(t, libA, "workflow.completed", 7),
		newEvent(t, libB, event.TypeLibraryDeleted, 8),
	}
	pick := func(idx ...int) []string {
		var out []string
		for _, i := range idx {
			out = append(out, evs[i].ID)
		}
		return out
	}
	tests := []struct {
		name   string
		filter subscriber.Filter
		want   []string
	}{
		{"everything", subscriber.Filter{}, pick(0, 1, 2, 3, 4, 5, 6, 7, 8)},
		{"library A never sees B", subscriber.Filter{LibraryID: libA}, pick(0, 1, 3, 5, 7)},
		{"library B", subscriber.Filter{LibraryID: libB}, pick(2, 4, 6, 8)},
		{"one type", subscriber.Filter{Types: []string{event.TypeDocumentAdded}}, pick(1, 2)},
		{"several types keep order", subscriber.Filter{Types: []string{event.TypeDocumentDeleted, event.TypeLibraryCreated, event.TypeDocumentAdded}}, pick(0, 1, 2, 3, 6)},
		{"family", subscriber.Filter{Types: []string{"document.*"}}, pick(1, 2, 3, 6)},
		{"one action of every entity", subscriber.Filter{Types: []string{"*.deleted"}}, pick(3, 6, 8)},
		{"library and family", subscriber.Filter{LibraryID: libB, Types: []string{"document.*"}}, pick(2, 6)},
		{"custom type", subscriber.Filter{Types: []string{"workflow.completed"}}, pick(4, 7)},
		{"overlapping types deliver once", subscriber.Filter{Types: []string{"document.*", "document.added", "*.added", "*.deleted"}}, pick(1, 2, 3, 6, 8)},
		{"subject pattern", subscriber.Filter{Subject: "events.library.*.workflow.*"}, pick(4, 7)},
		{"subject of one library", subscriber.Filter{Subject: "events.library.lib-b.>"}, pick(2, 4, 6, 8)},
		{"subject everything", subscriber.Filter{Subject: "events.>"}, pick(0, 1, 2, 3, 4, 5, 6, 7, 8)},
		{"predicate", subscriber.Filter{LibraryID: libA, Match: func(ev event.Event) bool { return ev.Type != event.TypeSearchPerformed }}, pick(0, 1, 3, 7)},
		{"predicate with subject", subscriber.Filter{Subject: "events.>", Match: func(ev event.Event) bool { return ev.LibraryID == libB }}, pick(2, 4, 6, 8)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r recorder
			s := subscribe(t, e.sub, tt.filter, r.handle)
			publish(t, e.pub, evs...)
			drain(t, s)
			if got := r.ids(); !slices.Equal(got, tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
			st := s.Stats()
			if st.Handled != uint64(len(tt.want)) || st.Received != st.Handled+st.Filtered || st.Invalid+st.Failed+st.Dropped != 0 || st.Pending != 0 {
				t.Errorf("stats %+v", st)
			}
			for _, d := range r.deliveries() {
				if want, _ := subjects.Build("events", d.LibraryID, d.Type); d.Subject != want || d.Seq != 0 || d.Header.Get(nats.MsgIdHdr) != d.ID {
					t.Errorf("delivery %+v", d)
				}
			}
		})
	}
}

func TestDeliveryFields(t *testing.T) {
	e := newEnv(t)
	var r recorder
	s := subscribe(t, e.sub, subscriber.Filter{LibraryID: libA}, r.handle)
	ev := newEvent(t, libA, event.TypeDocumentAdded, 42)
	ev.Source = "app-1"
	publish(t, e.pub, ev)
	drain(t, s)
	got := r.deliveries()
	if len(got) != 1 {
		t.Fatalf("got %d deliveries", len(got))
	}
	d := got[0]
	if d.ID != ev.ID || d.Type != ev.Type || d.LibraryID != libA || d.Source != "app-1" || !d.Timestamp.Equal(ev.Timestamp.Truncate(time.Microsecond)) {
		t.Errorf("event %+v, want %+v", d.Event, ev)
	}
	if dataN(t, d) != 42 || d.Header.Get("Content-Type") != "application/json" {
		t.Errorf("data %s, header %v", d.Data, d.Header)
	}
}

func TestPrefix(t *testing.T) {
	e := newEnv(t)
	var r recorder
	s := subscribe(t, e.sub, subscriber.Filter{}, r.handle, subscriber.WithPrefix("prod.events"))
	ev := newEvent(t, libA, event.TypeDocumentAdded, 1)
	publish(t, e.pub, ev) // under "events": not ours
	data, err := event.Encode(&ev, 0)
	if err != nil {
		t.Fatal(err)
	}
	subj, err := subjects.Build("prod.events", libA, ev.Type)
	if err != nil {
		t.Fatal(err)
	}
	publishRaw(t, e.pub, subj, string(data))
	publish(t, e.pub)
	drain(t, s)
	if got := r.deliveries(); len(got) != 1 || got[0].Subject != subj {
		t.Fatalf("got %+v", got)
	}
}

func TestInvalidFilter(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		filter subscriber.Filter
		opts   []subscriber.Option
		want   error
	}{
		{"library id with a dot", subscriber.Filter{LibraryID: "a.b"}, nil, subjects.ErrInvalidLibraryID},
		{"library id wildcard", subscriber.Filter{LibraryID: "*"}, nil, subjects.ErrInvalidLibraryID},
		{"type >", subscriber.Filter{Types: []string{">"}}, nil, subjects.ErrInvalidType},
		{"type one token", subscriber.Filter{Types: []string{"document"}}, nil, subjects.ErrInvalidType},
		{"type upper case", subscriber.Filter{Types: []string{"Document.added"}}, nil, subjects.ErrInvalidType},
		{"pattern >", subscriber.Filter{Subject: ">"}, nil, subjects.ErrInvalidPattern},
		{"pattern outside prefix", subscriber.Filter{Subject: "other.library.*.document.added"}, nil, subjects.ErrInvalidPattern},
		{"pattern of the default prefix under another", subscriber.Filter{Subject: "events.>"}, []subscriber.Option{subscriber.WithPrefix("prod")}, subjects.ErrInvalidPattern},
		{"pattern with too many tokens", subscriber.Filter{Subject: "events.library.a.b.c.d"}, nil, subjects.ErrInvalidPattern},
		{"live subject", subscriber.Filter{Subject: "live.events.>"}, nil, subjects.ErrInvalidPattern},
		{"subject and library", subscriber.Filter{Subject: "events.>", LibraryID: libA}, nil, subscriber.ErrInvalidFilter},
		{"subject and types", subscriber.Filter{Subject: "events.>", Types: []string{"document.added"}}, nil, subscriber.ErrInvalidFilter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := subscriber.Subscribe(t.Context(), e.sub, tt.filter, (&recorder{}).handle, tt.opts...)
			if err == nil {
				_ = s.Unsubscribe()
				t.Fatal("no error")
			}
			if !errors.Is(err, tt.want) || !errors.Is(err, subscriber.ErrInvalidFilter) {
				t.Fatalf("error %v: want %v and ErrInvalidFilter", err, tt.want)
			}
			if n := e.sub.NumSubscriptions(); n != 0 {
				t.Fatalf("%d NATS subscriptions left", n)
			}
		})
	}
}

func TestInvalidOptions(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		opt  subscriber.Option
		also error
	}{
		{"prefix empty", subscriber.WithPrefix(""), subjects.ErrInvalidPrefix},
		{"prefix wildcard", subscriber.WithPrefix("events.*"), subjects.ErrInvalidPrefix},
		{"queue empty", subscriber.Queue(""), nil},
		{"queue with space", subscriber.Queue("a b"), nil},
		{"concurrency 0", subscriber.Concurrency(0), nil},
		{"concurrency huge", subscriber.Concurrency(1 << 20), nil},
		{"worker queue 0", subscriber.WorkerQueue(0), nil},
		{"worker queue huge", subscriber.WorkerQueue(1 << 30), nil},
		{"pending limit 0", subscriber.PendingLimit(0), nil},
		{"pending limit huge", subscriber.PendingLimit(1 << 30), nil},
		{"handler timeout 0", subscriber.HandlerTimeout(0), nil},
		{"handler timeout negative", subscriber.HandlerTimeout(-time.Second), nil},
		{"max event size 0", subscriber.MaxEventSize(0), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := subscriber.Subscribe(t.Context(), e.sub, subscriber.Filter{}, (&recorder{}).handle, tt.opt)
			if err == nil {
				_ = s.Unsubscribe()
				t.Fatal("no error")
			}
			if !errors.Is(err, subscriber.ErrInvalidOption) {
				t.Fatalf("error %v: want ErrInvalidOption", err)
			}
			if tt.also != nil && !errors.Is(err, tt.also) {
				t.Fatalf("error %v: want %v too", err, tt.also)
			}
		})
	}
	if _, err := subscriber.Subscribe(t.Context(), e.sub, subscriber.Filter{}, nil); err == nil {
		t.Error("nil handler accepted")
	}
	if _, err := subscriber.Subscribe(t.Context(), nil, subscriber.Filter{}, (&recorder{}).handle); err == nil {
		t.Error("nil connection accepted")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := subscriber.Subscribe(ctx, e.sub, subscriber.Filter{}, (&recorder{}).handle); !errors.Is(err, context.Canceled) {
		t.Errorf("ended ctx: %v", err)
	}
	closed := testnats.Conn(t, e.url)
	closed.Close()
	if _, err := subscriber.Subscribe(t.Context(), closed, subscriber.Filter{}, (&recorder{}).handle); !errors.Is(err, nats.ErrConnectionClosed) {
		t.Errorf("closed connection: %v", err)
	}
	if n := e.sub.NumSubscriptions(); n != 0 {
		t.Fatalf("%d NATS subscriptions left", n)
	}
}

func TestQueueGroup(t *testing.T) {
	e := newEnv(t)
	const total = 1000
	var (
		mu    sync.Mutex
		count = map[string]int{}
	)
	handler := func(got *atomic.Int64) subscriber.Handler {
		return func(_ context.Context, d subscriber.Delivery) error {
			mu.Lock()
			count[d.ID]++
			mu.Unlock()
			got.Add(1)
			return nil
		}
	}
	var got1, got2 atomic.Int64
	s1 := subscribe(t, e.sub, subscriber.Filter{}, handler(&got1), subscriber.Queue("workers"))
	// Overlapping patterns: in a queue group the server picks one
	// subscription of the group for each message, whatever its pattern.
	s2 := subscribe(t, testnats.Conn(t, e.url), subscriber.Filter{Types: []string{"document.*", "*.added", "library.created"}}, handler(&got2),
		subscriber.Queue("workers"), subscriber.Concurrency(3))
	evs := make([]event.Event, total)
	for i := range evs {
		typ := event.TypeDocumentAdded
		if i%3 == 0 {
			typ = event.TypeLibraryCreated
		}
		evs[i] = newEvent(t, fmt.Sprintf("lib-%d", i%7), typ, i)
	}
	publish(t, e.pub, evs...)
	drain(t, s1)
	drain(t, s2)

	mu.Lock()
	defer mu.Unlock()
	if len(count) != total {
		t.Fatalf("%d distinct events handled, want %d", len(count), total)
	}
	for id, n := range count {
		if n != 1 {
			t.Fatalf("event %s handled %d times", id, n)
		}
	}
	if got1.Load() == 0 || got2.Load() == 0 || got1.Load()+got2.Load() != total {
		t.Fatalf("split %d + %d", got1.Load(), got2.Load())
	}
	if st1, st2 := s1.Stats(), s2.Stats(); st1.Handled+st2.Handled != total {
		t.Fatalf("stats %+v %+v", st1, st2)
	}
	t.Logf("split %d / %d", got1.Load(), got2.Load())
}

func TestConcurrencyKeepsLibraryOrder(t *testing.T) {
	e := newEnv(t)
	const libs, perLib = 10, 200
	var (
		mu      sync.Mutex
		next    = map[string]int{}
		running atomic.Int32
		peak    atomic.Int32
	)
	s := subscribe(t, e.sub, subscriber.Filter{}, func(_ context.Context, d subscriber.Delivery) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if want := next[d.LibraryID]; dataN(t, d) != want {
			t.Errorf("library %s: got event %d, want %d", d.LibraryID, dataN(t, d), want)
		}
		next[d.LibraryID]++
		return nil
	}, subscriber.Concurrency(4))
	var evs []event.Event
	for n := range perLib {
		for l := range libs {
			evs = append(evs, newEvent(t, fmt.Sprintf("lib-%d", l), event.TypeDocumentAdded, n))
		}
	}
	publish(t, e.pub, evs...)
	drain(t, s)
	if st := s.Stats(); st.Handled != libs*perLib || st.Failed+st.Invalid+st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
	for l := range libs {
		if got := next[fmt.Sprintf("lib-%d", l)]; got != perLib {
			t.Errorf("lib-%d: %d events", l, got)
		}
	}
	t.Logf("peak parallel handlers: %d", peak.Load())
}

func TestConcurrencyRunsInParallel(t *testing.T) {
	e := newEnv(t)
	const n = 4
	// n libraries that land on n different workers.
	var libs []string
	used := map[int]bool{}
	for i := 0; len(libs) < n; i++ {
		lib := fmt.Sprintf("lib-%d", i)
		if w := subscriber.WorkerIndex(lib, n); !used[w] {
			used[w] = true
			libs = append(libs, lib)
		}
	}
	entered := make(chan string, n)
	release := make(chan struct{})
	s := subscribe(t, e.sub, subscriber.Filter{}, func(ctx context.Context, d subscriber.Delivery) error {
		entered <- d.LibraryID
		select { // the barrier: nobody leaves before all n are in
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}, subscriber.Concurrency(n))
	for _, lib := range libs {
		publish(t, e.pub, newEvent(t, lib, event.TypeDocumentAdded, 0))
	}
	timeout := time.NewTimer(waitTimeout)
	defer timeout.Stop()
	seen := map[string]bool{}
	for len(seen) < n {
		select {
		case lib := <-entered:
			seen[lib] = true
		case <-timeout.C:
			t.Fatalf("only %d of %d handlers entered at once: %v", len(seen), n, seen)
		}
	}
	waitStats(t, s, func(st subscriber.Stats) bool { return st.Pending == n })
	close(release)
	drain(t, s)
	if st := s.Stats(); st.Handled != n {
		t.Fatalf("stats %+v", st)
	}
}

func TestHandlerFailureIsolated(t *testing.T) {
	e := newEnv(t)
	var handled []int
	var mu sync.Mutex
	bad := subscribe(t, e.sub, subscriber.Filter{LibraryID: libA}, func(_ context.Context, d subscriber.Delivery) error {
		switch n := dataN(t, d); n {
		case 1:
			panic("boom")
		case 2:
			return errors.New("handler failed")
		case 3:
			var none []int
			_ = none[n] // a runtime panic, not only panic(string)
		default:
			mu.Lock()
			handled = append(handled, n)
			mu.Unlock()
		}
		return nil
	}, subscriber.Concurrency(2))
	var other recorder
	good := subscribe(t, e.sub, subscriber.Filter{}, other.handle)
	var predicateCalls atomic.Int32
	badMatch := subscribe(t, e.sub, subscriber.Filter{Match: func(ev event.Event) bool {
		if predicateCalls.Add(1) == 1 {
			panic("predicate boom")
		}
		return true
	}}, (&recorder{}).handle)

	var evs []event.Event
	for n := range 6 {
		evs = append(evs, newEvent(t, libA, event.TypeDocumentAdded, n))
	}
	publish(t, e.pub, evs...)
	drain(t, bad)
	drain(t, good)
	drain(t, badMatch)
	if !slices.Equal(handled, []int{0, 4, 5}) {
		t.Errorf("handled %v", handled)
	}
	if st := bad.Stats(); st.Failed != 3 || st.Handled != 3 || st.Received != 6 {
		t.Errorf("bad stats %+v", st)
	}
	if st := good.Stats(); st.Failed != 0 || st.Handled != 6 || len(other.ids()) != 6 {
		t.Errorf("good stats %+v", st)
	}
	if st := badMatch.Stats(); st.Failed != 1 || st.Handled != 5 {
		t.Errorf("predicate stats %+v", st)
	}
}

func TestInvalidMessagesSkipped(t *testing.T) {
	e := newEnv(t)
	var r recorder
	s := subscribe(t, e.sub, subscriber.Filter{}, r.handle, subscriber.MaxEventSize(2048))
	first := newEvent(t, libA, event.TypeDocumentAdded, 1)
	last := newEvent(t, libA, event.TypeDocumentAdded, 2)
	subj := "events.library." + libA + ".document.added"
	ts := `"2025-10-27T06:01:00.000000Z"`
	obj := func(typ, lib, ts, data string) string {
		return `{"type":"` + typ + `","library_id":"` + lib + `","timestamp":` + ts + `,"data":` + data + `}`
	}
	garbage := []struct{ name, subject, data string }{
		{"not JSON", subj, `not json`},
		{"empty", subj, ``},
		{"array", subj, `[]`},
		{"truncated", subj, `{"type":"document.added"`},
		{"missing type", subj, `{"library_id":"` + libA + `","timestamp":` + ts + `,"data":{}}`},
		{"missing library", subj, `{"type":"document.added","timestamp":` + ts + `,"data":{}}`},
		{"missing timestamp", subj, `{"type":"document.added","library_id":"` + libA + `","data":{}}`},
		{"bad timestamp", subj, obj("document.added", libA, `"yesterday"`, `{}`)},
		{"data not an object", subj, obj("document.added", libA, ts, `[1,2]`)},
		{"library disagrees with subject", subj, obj("document.added", libB, ts, `{}`)},
		{"type disagrees with subject", subj, obj("document.deleted", libA, ts, `{}`)},
		{"subject outside the grammar", "events.library." + libA + ".x", obj("document.added", libA, ts, `{}`)},
		{"another prefix inside ours", "events.library.x.library." + libA + ".document.added", obj("document.added", libA, ts, `{}`)},
		{"too large", subj, obj("document.added", libA, ts, `{"blob":"`+strings.Repeat("x", 4096)+`"}`)},
	}
	publish(t, e.pub, first)
	for _, g := range garbage {
		publishRaw(t, e.pub, g.subject, g.data)
	}
	publish(t, e.pub, last)
	drain(t, s)
	if got := r.ids(); !slices.Equal(got, idsOf([]event.Event{first, last})) {
		t.Fatalf("handled %v", got)
	}
	if st := s.Stats(); st.Invalid != uint64(len(garbage)) || st.Handled != 2 || st.Received != uint64(len(garbage))+2 || st.Failed != 0 {
		t.Fatalf("stats %+v, want %d invalid", st, len(garbage))
	}
}

func TestIDFromMsgIDHeader(t *testing.T) {
	e := newEnv(t)
	var r recorder
	s := subscribe(t, e.sub, subscriber.Filter{}, r.handle)
	js := testnats.JetStream(t, e.pub)
	m := nats.NewMsg("events.library." + libA + ".document.added")
	m.Data = []byte(`{"type":"document.added","library_id":"` + libA + `","timestamp":"2025-10-27T06:01:00.000000","data":{}}`)
	m.Header.Set(nats.MsgIdHdr, "hand-published-1")
	if _, err := js.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	publish(t, e.pub)
	drain(t, s)
	got := r.deliveries()
	if len(got) != 1 || got[0].ID != "hand-published-1" || got[0].Seq != 0 {
		t.Fatalf("got %+v", got)
	}
	if want := time.Date(2025, 10, 27, 6, 1, 0, 0, time.UTC); !got[0].Timestamp.Equal(want) {
		t.Errorf("timestamp %v", got[0].Timestamp)
	}
}

func TestHandlerTimeout(t *testing.T) {
	e := newEnv(t)
	const d = 50 * time.Millisecond
	type result struct {
		deadline bool
		left     time.Duration
		err      error
	}
	results := make(chan result, 2)
	handler := func(ctx context.Context, _ subscriber.Delivery) error {
		dl, ok := ctx.Deadline()
		if !ok {
			results <- result{}
			return nil
		}
		left := time.Until(dl)
		<-ctx.Done()
		results <- result{deadline: true, left: left, err: ctx.Err()}
		return ctx.Err()
	}
	timed := subscribe(t, e.sub, subscriber.Filter{Types: []string{"document.added"}}, handler, subscriber.HandlerTimeout(d))
	untimed := subscribe(t, e.sub, subscriber.Filter{Types: []string{"document.deleted"}}, handler)
	publish(t, e.pub, newEvent(t, libA, event.TypeDocumentAdded, 0))
	if r := <-results; !r.deadline || r.left > d || !errors.Is(r.err, context.DeadlineExceeded) {
		t.Errorf("timed handler: %+v", r)
	}
	publish(t, e.pub, newEvent(t, libA, event.TypeDocumentDeleted, 0))
	if r := <-results; r.deadline {
		t.Errorf("untimed handler had a deadline: %+v", r)
	}
	drain(t, timed)
	drain(t, untimed)
	if st := timed.Stats(); st.Failed != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestDrainWaitsForQueuedHandlers(t *testing.T) {
	e := newEnv(t)
	gate := make(chan struct{})
	var handled atomic.Int32
	s := subscribe(t, e.sub, subscriber.Filter{}, func(ctx context.Context, _ subscriber.Delivery) error {
		<-gate
		if ctx.Err() != nil {
			return ctx.Err() // Drain must not cancel handlers
		}
		handled.Add(1)
		return nil
	})
	const n = 5
	for i := range n {
		publish(t, e.pub, newEvent(t, libA, event.TypeDocumentAdded, i))
	}
	// One in the handler, the rest queued.
	waitStats(t, s, func(st subscriber.Stats) bool { return st.Pending == n })

	drained := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		drained <- s.Drain(ctx)
	}()
	// Drain has stopped receiving once the NATS subscriptions are gone.
	testnats.Eventually(t, waitTimeout, func() error {
		if n := e.sub.NumSubscriptions(); n != 0 {
			return fmt.Errorf("%d NATS subscriptions", n)
		}
		return nil
	})
	select {
	case err := <-drained:
		t.Fatalf("Drain returned %v while handlers were queued", err)
	default:
	}
	close(gate)
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); handled.Load() != n || st.Handled != n || st.Pending != 0 {
		t.Fatalf("handled %d, stats %+v", handled.Load(), st)
	}
	select {
	case <-s.Done():
	default:
		t.Fatal("Done not closed after Drain")
	}
	// Idempotent.
	if err := s.Drain(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
}

func TestDrainTimeoutStops(t *testing.T) {
	e := newEnv(t)
	started := make(chan struct{}, 1)
	s := subscribe(t, e.sub, subscriber.Filter{}, func(ctx context.Context, _ subscriber.Delivery) error {
		started <- struct{}{}
		<-ctx.Done() // only a hard stop ends this handler
		return ctx.Err()
	})
	publish(t, e.pub, newEvent(t, libA, event.TypeDocumentAdded, 0), newEvent(t, libA, event.TypeDocumentAdded, 1))
	<-started
	waitStats(t, s, func(st subscriber.Stats) bool { return st.Pending == 2 })
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Drain(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Drain with an ended ctx: %v", err)
	}
	if st := s.Stats(); st.Failed != 1 || st.Dropped != 1 || st.Pending != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestUnsubscribeStops(t *testing.T) {
	e := newEnv(t)
	started := make(chan struct{}, 1)
	var calls atomic.Int32
	s := subscribe(t, e.sub, subscriber.Filter{}, func(ctx context.Context, _ subscriber.Delivery) error {
		calls.Add(1)
		started <- struct{}{}
		<-ctx.Done() // Unsubscribe cancels the running handler
		return ctx.Err()
	}, subscriber.WorkerQueue(16))
	const n = 5
	var evs []event.Event
	for i := range n {
		evs = append(evs, newEvent(t, libA, event.TypeDocumentAdded, i))
	}
	publish(t, e.pub, evs...)
	<-started
	waitStats(t, s, func(st subscriber.Stats) bool { return st.Received == n && st.Pending == n })
	if err := s.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Failed != 1 || st.Handled != 0 || st.Dropped != n-1 || st.Pending != 0 || st.Received != n {
		t.Fatalf("stats %+v", st)
	}
	if got := e.sub.NumSubscriptions(); got != 0 {
		t.Fatalf("%d NATS subscriptions left", got)
	}
	publish(t, e.pub, newEvent(t, libA, event.TypeDocumentAdded, n))
	if err := e.sub.Flush(); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 1 {
		t.Fatalf("handler called %d times", calls.Load())
	}
	if err := s.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if err := s.Drain(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestContextEndDrains(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type key struct{}
	var r recorder
	var sawValue atomic.Bool
	s, err := subscriber.Subscribe(context.WithValue(ctx, key{}, "v"), e.sub, subscriber.Filter{}, func(hctx context.Context, d subscriber.Delivery) error {
		sawValue.Store(hctx.Value(key{}) == "v")
		return r.handle(hctx, d)
	}, logger(t))
	if err != nil {
		t.Fatal(err)
	}
	evs := []event.Event{newEvent(t, libA, event.TypeDocumentAdded, 0), newEvent(t, libB, event.TypeDocumentAdded, 1)}
	publish(t, e.pub, evs...)
	cancel()
	select {
	case <-s.Done():
	case <-time.After(waitTimeout):
		t.Fatal("subscription did not stop when its ctx ended")
	}
	if got := r.ids(); !slices.Equal(got, idsOf(evs)) {
		t.Fatalf("handled %v", got)
	}
	if !sawValue.Load() {
		t.Error("handler ctx lost the values of the Subscribe ctx")
	}
	if n := e.sub.NumSubscriptions(); n != 0 {
		t.Fatalf("%d NATS subscriptions left", n)
	}
	if err := s.Drain(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentStop(t *testing.T) {
	e := newEnv(t)
	s := subscribe(t, e.sub, subscriber.Filter{}, (&recorder{}).handle, subscriber.Concurrency(3))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if i%2 == 0 {
				_ = s.Unsubscribe()
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			_ = s.Drain(ctx)
		})
		wg.Go(func() { _ = s.Stats() })
	}
	publish(t, e.pub, newEvent(t, libA, event.TypeDocumentAdded, 0))
	wg.Wait()
	select {
	case <-s.Done():
	default:
		t.Fatal("not done")
	}
}

func TestSlowConsumerDrops(t *testing.T) {
	e := newEnv(t)
	gate := make(chan struct{})
	s := subscribe(t, e.sub, subscriber.Filter{}, func(context.Context, subscriber.Delivery) error {
		<-gate
		return nil
	}, subscriber.PendingLimit(2), subscriber.WorkerQueue(1))
	const n = 50
	var evs []event.Event
	for i := range n {
		evs = append(evs, newEvent(t, libA, event.TypeDocumentAdded, i))
	}
	publish(t, e.pub, evs...)
	if err := e.sub.Flush(); err != nil { // the read loop has seen all n
		t.Fatal(err)
	}
	// Every message is either dropped by NATS or pending here.
	waitStats(t, s, func(st subscriber.Stats) bool { return st.Dropped > 0 && st.Dropped+uint64(st.Pending) == n })
	close(gate)
	drain(t, s)
	if st := s.Stats(); st.Handled+st.Dropped != n || st.Pending != 0 {
		t.Fatalf("stats %+v", st)
	}
}
