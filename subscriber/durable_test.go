package subscriber_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/arrwdb/arrwcdc/broker"
	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/checker"
	"github.com/arrwdb/arrwcdc/internal/testnats"
	"github.com/arrwdb/arrwcdc/subjects"
	"github.com/arrwdb/arrwcdc/subscriber"
)

func TestDefaultStreamIsTheBrokers(t *testing.T) {
	if subscriber.DefaultStream != broker.StreamName {
		t.Fatalf("DefaultStream %q, broker.StreamName %q", subscriber.DefaultStream, broker.StreamName)
	}
}

// A durable consumer stops half-way and restarts under the same name:
// every event is handled exactly once overall.
func TestDurableResume(t *testing.T) {
	e := newJSEnv(t)
	c := checker.New()
	const total = 1000
	publishMany(t, e.pub, total, libraries(7), c, nil)

	half := make(chan struct{})
	var n atomic.Int64
	// No Attempt check: an event in flight when the first run drains is
	// lost in transit, and the server counts that delivery.
	handler := func(ctx context.Context, d subscriber.Delivery) error {
		if err := recordTo(t, c)(ctx, d); err != nil {
			return err
		}
		if n.Add(1) == total/2 {
			close(half)
		}
		return nil
	}
	// Small buffers and few unacked events, so that the drain handles
	// not many more than half.
	opts := []subscriber.Option{subscriber.Concurrency(4), subscriber.WorkerQueue(4), subscriber.PendingLimit(8), subscriber.MaxAckPending(40)}
	s1 := consume(t, e.js, "resume", subscriber.Filter{}, handler, opts...)
	select {
	case <-half:
	case <-time.After(waitTimeout):
		t.Fatalf("half not reached: %+v", s1.Stats())
	}
	drain(t, s1)
	first := c.Deliveries()
	if first < total/2 || first > total*3/4 {
		t.Fatalf("first run handled %d events", first)
	}
	if st := s1.Stats(); st.Handled != uint64(first) || st.Dropped != 0 || st.Pending != 0 {
		t.Fatalf("first run stats %+v", st)
	}
	info, err := e.js.Consumer(t.Context(), subscriber.DefaultStream, "resume")
	if err != nil {
		t.Fatal(err)
	}
	if info.CachedInfo().NumPending == 0 {
		t.Fatal("nothing left for the second run")
	}

	// Restart under the same name; a start option does not move an
	// existing durable consumer.
	s2 := consume(t, e.js, "resume", subscriber.Filter{}, handler, append(opts, subscriber.StartSeq(1))...)
	c.Wait(t, waitTimeout)
	drain(t, s2)
	if ci := consumerSettled(t, e.js, "resume"); ci.NumRedelivered != 0 {
		t.Errorf("consumer redelivered %d", ci.NumRedelivered)
	}
	c.Require(t)
	if got := s2.Stats().Handled; int(got) != total-first {
		t.Errorf("second run handled %d, want %d", got, total-first)
	}
}

// One event always fails: it is retried with growing delays, then
// dead-lettered with the reason; every other event flows on.
func TestFailingHandlerDeadLetters(t *testing.T) {
	e := newJSEnv(t)
	c := checker.New()
	var evs []event.Event
	for i := range 20 {
		evs = append(evs, newEvent(t, libraries(3)[i%3], event.TypeDocumentAdded, i))
	}
	bad := evs[7]
	var (
		mu       sync.Mutex
		attempts []int
		times    []time.Time
	)
	handler := func(ctx context.Context, d subscriber.Delivery) error {
		if d.ID == bad.ID {
			mu.Lock()
			attempts = append(attempts, d.Attempt)
			times = append(times, time.Now())
			mu.Unlock()
			// A handler may write into its event's Data: the dead letter
			// still carries the payload as it came (checked below).
			d.Data[1] = 'Y'
			return fmt.Errorf("index unavailable: attempt %d", d.Attempt)
		}
		return recordTo(t, c)(ctx, d)
	}
	delays := []time.Duration{50 * time.Millisecond, 200 * time.Millisecond, 800 * time.Millisecond}
	s := consume(t, e.js, "failing", subscriber.Filter{}, handler,
		subscriber.MaxDeliver(4), subscriber.Backoff(delays...), subscriber.Concurrency(2))

	acks := publishJS(t, e.pub, nil, evs...)
	var badSeq uint64
	for i, a := range acks {
		if evs[i].ID == bad.ID {
			badSeq = a.Seq
		} else {
			c.Ack(a.Seq, a.ID)
		}
	}
	c.Wait(t, waitTimeout) // the others do not wait for the failing one

	dl := streamMsgs(t, e.js, subscriber.DLQStream, 1)[0]
	badSubject, _ := bad.Subject(subjects.DefaultPrefix)
	if dl.Subject != "dlq."+badSubject {
		t.Errorf("dead letter subject %q", dl.Subject)
	}
	for h, want := range map[string]string{
		subscriber.HeaderDLQReason:   "index unavailable: attempt 4",
		subscriber.HeaderDLQSubject:  badSubject,
		subscriber.HeaderDLQStream:   "EVENTS",
		subscriber.HeaderDLQSeq:      strconv.FormatUint(badSeq, 10),
		subscriber.HeaderDLQConsumer: "failing",
		subscriber.HeaderDLQAttempts: "4",
		subscriber.HeaderDLQEventID:  bad.ID,
		"Content-Type":               "application/json",
		"ce-id":                      bad.ID,
	} {
		if got := dl.Header.Get(h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, dl.Header.Get(subscriber.HeaderDLQTime)); err != nil {
		t.Errorf("time header: %v", err)
	}
	if got, err := event.Decode(dl.Data, 0); err != nil || got.ID != bad.ID {
		t.Errorf("dead letter body %s: %v (not the payload as it came)", dl.Data, err)
	}

	mu.Lock()
	if !slices.Equal(attempts, []int{1, 2, 3, 4}) {
		t.Errorf("attempts %v", attempts)
	}
	// Each retry waits at least its delay (a little slack for timer
	// rounding), and the waits grow.
	for i := 1; i < len(times); i++ {
		gap := times[i].Sub(times[i-1])
		if gap < delays[i-1]*9/10 {
			t.Errorf("retry %d after %v, want >= %v", i, gap, delays[i-1])
		}
		if i > 1 && gap <= times[i-1].Sub(times[i-2]) {
			t.Errorf("retry %d after %v, not longer than the previous wait", i, gap)
		}
	}
	mu.Unlock()

	// The consumer keeps flowing after the dead letter.
	publishJS(t, e.pub, c, newEvent(t, "lib-0", event.TypeDocumentDeleted, 100), newEvent(t, "lib-1", event.TypeLibraryCreated, 101))
	c.Wait(t, waitTimeout)
	drain(t, s)
	c.Require(t)
	st := s.Stats()
	if st.Handled != 21 || st.Failed != 4 || st.Retried != 3 || st.DeadLettered != 1 || st.Invalid != 0 || st.Pending != 0 {
		t.Errorf("stats %+v", st)
	}
	consumerSettled(t, e.js, "failing")
}

// Two subscriptions on one durable name share the events, each once.
func TestSharedDurable(t *testing.T) {
	e := newJSEnv(t)
	c := checker.New()
	var got1, got2 atomic.Int64
	h := func(n *atomic.Int64) subscriber.Handler {
		return func(ctx context.Context, d subscriber.Delivery) error {
			n.Add(1)
			return recordTo(t, c)(ctx, d)
		}
	}
	s1 := consume(t, e.js, "shared", subscriber.Filter{}, h(&got1), subscriber.MaxAckPending(64))
	s2 := consume(t, e.js, "shared", subscriber.Filter{}, h(&got2), subscriber.MaxAckPending(64))
	publishMany(t, e.pub, 1000, libraries(5), c, nil)
	c.Wait(t, waitTimeout)
	drain(t, s1)
	drain(t, s2)
	consumerSettled(t, e.js, "shared")
	c.Require(t)
	if got1.Load() == 0 || got2.Load() == 0 {
		t.Errorf("split %d / %d", got1.Load(), got2.Load())
	}
	t.Logf("split %d / %d", got1.Load(), got2.Load())
}

// With MaxAckPending(1), a retried event is handled before the next one:
// stream order, retries included.
func TestMaxAckPendingOneKeepsOrderAcrossRetries(t *testing.T) {
	e := newJSEnv(t)
	var evs []event.Event
	for i := range 6 {
		evs = append(evs, newEvent(t, libA, event.TypeDocumentAdded, i))
	}
	var (
		mu    sync.Mutex
		order []int
	)
	done := make(chan struct{})
	s := consume(t, e.js, "strict", subscriber.Filter{LibraryID: libA}, func(_ context.Context, d subscriber.Delivery) error {
		n := dataN(t, d)
		if n == 2 && d.Attempt == 1 {
			return errors.New("transient")
		}
		mu.Lock()
		defer mu.Unlock()
		if order = append(order, n); len(order) == len(evs) {
			close(done)
		}
		return nil
	}, subscriber.MaxAckPending(1), subscriber.Backoff(20*time.Millisecond))
	publishJS(t, e.pub, nil, evs...)
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatalf("stats %+v", s.Stats())
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(order, []int{0, 1, 2, 3, 4, 5}) {
		t.Fatalf("order %v", order)
	}
}

// Invalid messages are terminated (never delivered again), counted, and
// dead-lettered with DeadLetterInvalid.
func TestDurableInvalidMessages(t *testing.T) {
	e := newJSEnv(t)
	js := testnats.JetStream(t, e.env.pub)
	good := newEvent(t, "lib-1", event.TypeDocumentAdded, 1)
	other := newEvent(t, "lib-2", event.TypeDocumentAdded, 2)
	otherData, _ := event.Encode(&other, 0)
	for _, m := range []struct{ subject, data string }{
		{"events.library.lib-1.document.added", "not json"},
		{"events.library.lib-1.document.added", string(otherData)}, // claims another library
	} {
		if _, err := js.Publish(t.Context(), m.subject, []byte(m.data)); err != nil {
			t.Fatal(err)
		}
	}
	c := checker.New()
	publishJS(t, e.pub, c, good)

	for _, tt := range []struct {
		durable string
		opts    []subscriber.Option
		dlq     int
	}{
		{"invalid-dlq", []subscriber.Option{subscriber.DeadLetterInvalid()}, 2},
		{"invalid-term", nil, 2}, // terminated only: the stream keeps the 2 above
	} {
		t.Run(tt.durable, func(t *testing.T) {
			c := checker.New()
			c.Ack(3, good.ID)
			s := consume(t, e.js, tt.durable, subscriber.Filter{}, recordTo(t, c), tt.opts...)
			c.Wait(t, waitTimeout)
			waitStats(t, s, func(st subscriber.Stats) bool { return st.Invalid == 2 })
			ci := consumerSettled(t, e.js, tt.durable)
			if ci.NumRedelivered != 0 {
				t.Errorf("redelivered %d", ci.NumRedelivered)
			}
			drain(t, s)
			c.Require(t)
			dls := streamMsgs(t, e.js, subscriber.DLQStream, tt.dlq)
			for _, dl := range dls {
				if r := dl.Header.Get(subscriber.HeaderDLQReason); !strings.HasPrefix(r, "invalid: ") || dl.Header.Get(subscriber.HeaderDLQConsumer) != "invalid-dlq" {
					t.Errorf("dead letter %s: reason %q, consumer %q", dl.Subject, r, dl.Header.Get(subscriber.HeaderDLQConsumer))
				}
			}
			if st := s.Stats(); st.Handled != 1 || st.Invalid != 2 || st.DeadLettered != uint64(len(tt.opts)*2) {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// Overlapping types: the consumer filters wider and the subscription
// checks the patterns; each matching event once, the others acknowledged.
func TestDurableOverlappingTypes(t *testing.T) {
	e := newJSEnv(t)
	c := checker.New()
	s := consume(t, e.js, "overlap", subscriber.Filter{LibraryID: libB, Types: []string{"document.*", "*.added", "document.added"}}, recordTo(t, c))
	evs := []event.Event{
		newEvent(t, libB, event.TypeDocumentAdded, 0),
		newEvent(t, libB, event.TypeDocumentDeleted, 1),
		newEvent(t, libB, "chunk.added", 2),
		newEvent(t, libB, event.TypeLibraryCreated, 3), // not selected
		newEvent(t, libA, event.TypeDocumentAdded, 4),  // other library
	}
	acks := publishJS(t, e.pub, nil, evs...)
	for _, a := range acks[:3] {
		c.Ack(a.Seq, a.ID)
	}
	c.Wait(t, waitTimeout)
	consumerSettled(t, e.js, "overlap")
	drain(t, s)
	c.Require(t)
	if st := s.Stats(); st.Handled != 3 || st.Filtered != 1 {
		t.Errorf("stats %+v", st)
	}
}

// A handler that runs longer than AckWait keeps its event: it is not
// delivered again meanwhile.
func TestLongHandlerKeptAlive(t *testing.T) {
	e := newJSEnv(t)
	c := checker.New()
	s := consume(t, e.js, "slow", subscriber.Filter{}, func(ctx context.Context, d subscriber.Delivery) error {
		if d.Attempt != 1 {
			t.Errorf("attempt %d", d.Attempt)
		}
		select {
		case <-time.After(2500 * time.Millisecond): // 2.5 × AckWait
		case <-ctx.Done():
			return ctx.Err()
		}
		return recordTo(t, c)(ctx, d)
	}, subscriber.AckWait(time.Second), subscriber.Concurrency(2))
	publishJS(t, e.pub, c, newEvent(t, "lib-1", event.TypeDocumentAdded, 1))
	c.Wait(t, waitTimeout)
	drain(t, s)
	if ci := consumerSettled(t, e.js, "slow"); ci.NumRedelivered != 0 {
		t.Errorf("redelivered %d", ci.NumRedelivered)
	}
	c.Require(t)
}

// Unsubscribe gives queued events back at once: the next subscription of
// the durable gets them without waiting for AckWait.
func TestUnsubscribeGivesBack(t *testing.T) {
	e := newJSEnv(t)
	c := checker.New()
	publishMany(t, e.pub, 50, libraries(1), c, nil)
	s1 := consume(t, e.js, "giveback", subscriber.Filter{}, func(ctx context.Context, d subscriber.Delivery) error {
		<-ctx.Done() // hold the worker while the rest queue up, until Unsubscribe
		return ctx.Err()
	}, subscriber.AckWait(time.Hour))
	waitStats(t, s1, func(st subscriber.Stats) bool { return st.Pending > 10 })
	if err := s1.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if st := s1.Stats(); st.Dropped == 0 {
		t.Fatalf("nothing dropped: %+v", st)
	}
	s2 := consume(t, e.js, "giveback", subscriber.Filter{}, recordTo(t, c))
	c.Wait(t, waitTimeout) // far less than the hour of AckWait
	drain(t, s2)
	consumerSettled(t, e.js, "giveback")
	if len(c.Missing()) != 0 || len(c.Unexpected()) != 0 {
		t.Fatal(c.Err())
	}
}

func TestJetStreamOptionErrors(t *testing.T) {
	e := newJSEnv(t)
	h := (&recorder{}).handle
	tests := []struct {
		name    string
		durable string
		opts    []subscriber.Option
		want    error
	}{
		{"queue", "d", []subscriber.Option{subscriber.Queue("q")}, subscriber.ErrInvalidOption},
		{"empty durable", "", nil, subscriber.ErrInvalidOption},
		{"durable with dot", "a.b", nil, subscriber.ErrInvalidOption},
		{"durable with space", "a b", nil, subscriber.ErrInvalidOption},
		{"start seq 0", "d", []subscriber.Option{subscriber.StartSeq(0)}, subscriber.ErrInvalidOption},
		{"zero start time", "d", []subscriber.Option{subscriber.StartTime(time.Time{})}, subscriber.ErrInvalidOption},
		{"two starts", "d", []subscriber.Option{subscriber.StartSeq(3), subscriber.StartTime(time.Now())}, subscriber.ErrInvalidOption},
		{"max deliver 0", "d", []subscriber.Option{subscriber.MaxDeliver(0)}, subscriber.ErrInvalidOption},
		{"no backoff", "d", []subscriber.Option{subscriber.Backoff()}, subscriber.ErrInvalidOption},
		{"negative backoff", "d", []subscriber.Option{subscriber.Backoff(-time.Second)}, subscriber.ErrInvalidOption},
		{"ack wait short", "d", []subscriber.Option{subscriber.AckWait(time.Millisecond)}, subscriber.ErrInvalidOption},
		{"max ack pending 0", "d", []subscriber.Option{subscriber.MaxAckPending(0)}, subscriber.ErrInvalidOption},
		{"stream name", "d", []subscriber.Option{subscriber.Stream("a.b")}, subscriber.ErrInvalidOption},
		{"dead letter conflict", "d", []subscriber.Option{subscriber.NoDeadLetter(), subscriber.DeadLetterInvalid()}, subscriber.ErrInvalidOption},
		{"bad filter", "d", nil, subscriber.ErrInvalidFilter},
		{"no stream", "d", []subscriber.Option{subscriber.Stream("NOPE"), subscriber.NoDeadLetter()}, jetstream.ErrStreamNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := subscriber.Filter{}
			if tt.name == "bad filter" {
				f.LibraryID = "a>"
			}
			s, err := subscriber.Consume(t.Context(), e.js, tt.durable, f, h, tt.opts...)
			if err == nil {
				_ = s.Unsubscribe()
				t.Fatal("no error")
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
	// Options of one entry point only.
	for _, tt := range []struct {
		name string
		call func() (*subscriber.Subscription, error)
	}{
		{"MaxDeliver on Subscribe", func() (*subscriber.Subscription, error) {
			return subscriber.Subscribe(t.Context(), e.sub, subscriber.Filter{}, h, subscriber.MaxDeliver(3))
		}},
		{"StartSeq on Subscribe", func() (*subscriber.Subscription, error) {
			return subscriber.Subscribe(t.Context(), e.sub, subscriber.Filter{}, h, subscriber.StartSeq(3))
		}},
		{"MaxDeliver on Replay", func() (*subscriber.Subscription, error) {
			return subscriber.Replay(t.Context(), e.js, subscriber.Filter{}, h, subscriber.MaxDeliver(3))
		}},
		{"Queue on Replay", func() (*subscriber.Subscription, error) {
			return subscriber.Replay(t.Context(), e.js, subscriber.Filter{}, h, subscriber.Queue("q"))
		}},
	} {
		s, err := tt.call()
		if err == nil {
			_ = s.Unsubscribe()
			t.Errorf("%s: no error", tt.name)
		} else if !errors.Is(err, subscriber.ErrInvalidOption) || !strings.Contains(err.Error(), "is an option of") {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	if _, err := subscriber.Consume(t.Context(), nil, "d", subscriber.Filter{}, h); err == nil {
		t.Error("nil JetStream accepted")
	}
	if _, err := subscriber.Replay(t.Context(), e.js, subscriber.Filter{}, nil); err == nil {
		t.Error("nil handler accepted")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := subscriber.Consume(ctx, e.js, "d", subscriber.Filter{}, h); !errors.Is(err, context.Canceled) {
		t.Errorf("ended ctx: %v", err)
	}
	names, err := e.js.Stream(t.Context(), subscriber.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	lister := names.ConsumerNames(t.Context())
	for name := range lister.Name() {
		t.Errorf("consumer left: %s", name)
	}
	if err := lister.Err(); err != nil {
		t.Error(err)
	}
}

func TestEnsureDLQ(t *testing.T) {
	e := newJSEnv(t)
	for range 2 { // idempotent
		st, err := subscriber.EnsureDLQ(t.Context(), e.js, "events")
		if err != nil {
			t.Fatal(err)
		}
		if cfg := st.CachedInfo().Config; !slices.Equal(cfg.Subjects, []string{"dlq.events.>"}) || cfg.Storage != jetstream.FileStorage {
			t.Fatalf("config %+v", cfg)
		}
	}
	// Another prefix is added to the same stream.
	st, err := subscriber.EnsureDLQ(t.Context(), e.js, "prod.events")
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config.Subjects; !slices.Equal(got, []string{"dlq.events.>", "dlq.prod.events.>"}) {
		t.Fatalf("subjects %v", got)
	}
	if _, err := subscriber.EnsureDLQ(t.Context(), e.js, "a..b"); !errors.Is(err, subjects.ErrInvalidPrefix) {
		t.Fatalf("bad prefix: %v", err)
	}

	// An operator's own DLQ stream is kept as it is.
	e2 := newJSEnv(t)
	if _, err := e2.js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "DLQ", Subjects: []string{"dlq.>"}, MaxAge: time.Hour, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	st, err = subscriber.EnsureDLQ(t.Context(), e2.js, "events")
	if err != nil {
		t.Fatal(err)
	}
	if cfg := st.CachedInfo().Config; cfg.MaxAge != time.Hour || !slices.Equal(cfg.Subjects, []string{"dlq.>"}) {
		t.Fatalf("operator's stream changed: %+v", cfg)
	}
}

func TestServerFilters(t *testing.T) {
	tests := []struct {
		name           string
		filter         subscriber.Filter
		pats           []string
		filters, check []string
	}{
		{"one", subscriber.Filter{}, []string{"events.>"}, []string{"events.>"}, nil},
		{"distinct types", subscriber.Filter{}, []string{"events.library.*.document.added", "events.library.*.library.created"},
			[]string{"events.library.*.document.added", "events.library.*.library.created"}, nil},
		{"covered", subscriber.Filter{}, []string{"events.library.*.document.added", "events.library.*.document.*"},
			[]string{"events.library.*.document.*"}, nil},
		{"equal", subscriber.Filter{}, []string{"events.library.*.document.*", "events.library.*.document.*"},
			[]string{"events.library.*.document.*"}, nil},
		{"partial overlap", subscriber.Filter{}, []string{"events.library.*.document.*", "events.library.*.*.added"},
			[]string{"events.>"}, []string{"events.library.*.document.*", "events.library.*.*.added"}},
		{"partial overlap in a library", subscriber.Filter{LibraryID: "l"}, []string{"events.library.l.document.*", "events.library.l.*.added"},
			[]string{"events.library.l.>"}, []string{"events.library.l.document.*", "events.library.l.*.added"}},
	}
	for _, tt := range tests {
		f, c := subscriber.ServerFilters("events", tt.filter, tt.pats)
		if !slices.Equal(f, tt.filters) || !slices.Equal(c, tt.check) {
			t.Errorf("%s: filters %v check %v", tt.name, f, c)
		}
	}
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"events.>", "events.library.a.document.added", true},
		{"events.library.*.>", "events.library.*.document.*", true},
		{"events.library.*.document.*", "events.library.*.>", false},
		{"events.library.*.document.added", "events.library.a.document.added", true},
		{"events.library.a.document.added", "events.library.*.document.added", false},
		{"events.library.a.document", "events.library.a.document.added", false},
	} {
		if got := subscriber.Subsumes(tt.a, tt.b); got != tt.want {
			t.Errorf("subsumes(%s, %s) = %v", tt.a, tt.b, got)
		}
	}
}

// Delivery.Header of a JetStream delivery carries the original headers.
func TestDurableDeliveryFields(t *testing.T) {
	e := newJSEnv(t)
	var r recorder
	s := consume(t, e.js, "fields", subscriber.Filter{LibraryID: libA}, r.handle, subscriber.DeliverNew())
	ev := newEvent(t, libA, event.TypeDocumentAdded, 42)
	ev.Source = "app-1"
	ack := publishJS(t, e.pub, nil, ev)[0]
	waitStats(t, s, func(st subscriber.Stats) bool { return st.Handled == 1 })
	d := r.deliveries()[0]
	if d.ID != ev.ID || d.Seq != ack.Seq || d.Attempt != 1 || d.Source != "app-1" || d.Header.Get(nats.MsgIdHdr) != ev.ID || dataN(t, d) != 42 {
		t.Errorf("delivery %+v", d)
	}
}

// Ending the ctx drains a JetStream subscription; a closed connection
// does not hang Drain or Unsubscribe.
func TestJetStreamStopCases(t *testing.T) {
	e := newJSEnv(t)
	c := checker.New()
	publishJS(t, e.pub, c, newEvent(t, libA, event.TypeDocumentAdded, 1), newEvent(t, libB, event.TypeDocumentAdded, 2))

	ctx, cancel := context.WithCancel(context.Background())
	s, err := subscriber.Consume(ctx, e.js, "ctx-end", subscriber.Filter{}, recordTo(t, c), logger(t))
	if err != nil {
		t.Fatal(err)
	}
	c.Wait(t, waitTimeout)
	cancel()
	select {
	case <-s.Done():
	case <-time.After(waitTimeout):
		t.Fatal("ctx end did not stop the subscription")
	}
	consumerSettled(t, e.js, "ctx-end")
	c.Require(t)

	for _, durable := range []string{"closed", ""} {
		t.Run("closed connection "+durable, func(t *testing.T) {
			nc := testnats.Conn(t, e.url)
			js := testnats.JetStream(t, nc)
			var s *subscriber.Subscription
			if durable != "" {
				s = consume(t, js, durable, subscriber.Filter{}, (&recorder{}).handle)
			} else {
				s = replay(t, js, subscriber.Filter{}, (&recorder{}).handle)
			}
			waitStats(t, s, func(st subscriber.Stats) bool { return st.Handled == 2 })
			nc.Close()
			drain(t, s)
			if err := s.Unsubscribe(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Unsubscribe while events stream in loses none of them for AckWait (an
// hour here): what was in flight is given back and the next subscription
// of the durable gets it at once.
func TestUnsubscribeWhileFlowing(t *testing.T) {
	e := newJSEnv(t)
	c := checker.New()
	var handled atomic.Int64
	h := func(ctx context.Context, d subscriber.Delivery) error {
		handled.Add(1)
		return recordTo(t, c)(ctx, d)
	}
	s1 := consume(t, e.js, "flowing", subscriber.Filter{}, h, subscriber.AckWait(time.Hour), subscriber.Concurrency(3))
	done := make(chan struct{})
	go func() {
		defer close(done)
		publishMany(t, e.pub, 3000, libraries(9), c, nil)
	}()
	testnats.Eventually(t, waitTimeout, func() error {
		if n := handled.Load(); n < 500 {
			return fmt.Errorf("%d handled", n)
		}
		return nil
	})
	if err := s1.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	s2 := consume(t, e.js, "flowing", subscriber.Filter{}, h, subscriber.AckWait(time.Hour))
	<-done
	c.Wait(t, waitTimeout)
	drain(t, s2)
	if len(c.Missing())+len(c.Unexpected()) != 0 {
		t.Fatal(c.Err())
	}
	t.Logf("first subscription handled %d, gave back %d; duplicates %d", s1.Stats().Handled, s1.Stats().Dropped, len(c.Duplicates()))
}
