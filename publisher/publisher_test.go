package publisher_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/arrwdb/arrwcdc/broker"
	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/testnats"
	"github.com/arrwdb/arrwcdc/publisher"
	"github.com/arrwdb/arrwcdc/subjects"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	libID = "550e8400-e29b-41d4-a716-446655440000"
	evID  = "0193f1d2-8c4e-7b3a-9d2f-2c6e5a7b8c9d"
	docID = "a1b2c3d4-e5f6-7890-abcd-ef1234567890"
)

// fixture is one broker, a connection to it and the EVENTS stream.
type fixture struct {
	b      *broker.Broker
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
}

func setup(t testing.TB) *fixture {
	t.Helper()
	b := testnats.Broker(t)
	nc := testnats.Conn(t, b.ClientURL())
	js := testnats.JetStream(t, nc)
	s, err := js.Stream(context.Background(), broker.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{b: b, nc: nc, js: js, stream: s}
}

// newPublisher returns a publisher on f's connection, closed at cleanup.
func (f *fixture) newPublisher(t testing.TB, opts ...publisher.Option) *publisher.Publisher {
	t.Helper()
	opts = append([]publisher.Option{publisher.WithLogger(zaptest.NewLogger(t))}, opts...)
	p, err := publisher.New(f.nc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// msgs is the number of events stored in the stream.
func (f *fixture) msgs(t testing.TB) uint64 {
	t.Helper()
	info, err := f.stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func (f *fixture) get(t testing.TB, seq uint64) *jetstream.RawStreamMsg {
	t.Helper()
	m, err := f.stream.GetMsg(context.Background(), seq)
	if err != nil {
		t.Fatalf("GetMsg(%d): %v", seq, err)
	}
	return m
}

// designEvent is the DESIGN §3 example: every field set.
func designEvent() event.Event {
	return event.Event{
		ID:        evID,
		Type:      event.TypeDocumentAdded,
		LibraryID: libID,
		Timestamp: time.Date(2025, 10, 27, 6, 1, 0, 0, time.UTC),
		Source:    "app-1",
		Data:      json.RawMessage(`{"document_id":"` + docID + `","title":"My Document","num_chunks":3}`),
	}
}

// bareEvent has only what a caller must give: type, library and data.
func bareEvent(lib string) event.Event {
	return event.Event{
		Type:      event.TypeDocumentAdded,
		LibraryID: lib,
		Data:      json.RawMessage(`{"document_id":"` + docID + `","title":"t","num_chunks":1}`),
	}
}

// checkHeaders compares the CloudEvents and JetStream headers of a message
// with the event it carries.
func checkHeaders(t *testing.T, h nats.Header, ev event.Event, ceSource string) {
	t.Helper()
	want := map[string]string{
		"Nats-Msg-Id":    ev.ID,
		"Content-Type":   "application/json",
		"ce-specversion": "1.0",
		"ce-id":          ev.ID,
		"ce-type":        ev.Type,
		"ce-source":      ceSource,
		"ce-time":        ev.Timestamp.UTC().Format(event.TimeLayout),
	}
	for k, v := range want {
		if got := h.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
}

func TestPublishStoresEvent(t *testing.T) {
	f := setup(t)
	p := f.newPublisher(t)
	ev := designEvent()

	ack, err := p.Publish(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if ack.ID != evID || ack.Seq != 1 || ack.Duplicate {
		t.Fatalf("ack = %+v, want id %s seq 1", ack, evID)
	}

	m := f.get(t, ack.Seq)
	if want := "events.library." + libID + ".document.added"; m.Subject != want {
		t.Errorf("subject = %q, want %q", m.Subject, want)
	}
	want, err := event.Encode(&ev, 0)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != string(want) {
		t.Errorf("stored data\n got %s\nwant %s", m.Data, want)
	}
	got, err := event.Decode(m.Data, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != ev.ID || got.Type != ev.Type || got.LibraryID != ev.LibraryID || got.Source != ev.Source ||
		!got.Timestamp.Equal(ev.Timestamp) || string(got.Data) != string(ev.Data) {
		t.Errorf("decoded %+v\nwant    %+v", got, ev)
	}
	if err := got.CheckSubject(m.Subject); err != nil {
		t.Error(err)
	}
	checkHeaders(t, m.Header, ev, "app-1")

	if s := p.Stats(); s != (publisher.Stats{Published: 1}) {
		t.Errorf("stats = %+v", s)
	}
}

func TestPublishPrefix(t *testing.T) {
	b := testnats.Broker(t, func(c *broker.Config) { c.Prefix = "prod.events" })
	nc := testnats.Conn(t, b.ClientURL())
	f := &fixture{b: b, nc: nc}
	p := f.newPublisher(t, publisher.WithPrefix("prod.events"))
	ack, err := p.Publish(t.Context(), designEvent())
	if err != nil {
		t.Fatal(err)
	}
	s, err := testnats.JetStream(t, nc).Stream(t.Context(), broker.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(t.Context(), ack.Seq)
	if err != nil {
		t.Fatal(err)
	}
	if want := "prod.events.library." + libID + ".document.added"; m.Subject != want {
		t.Errorf("subject = %q, want %q", m.Subject, want)
	}
}

func TestPublishFillsMissingFields(t *testing.T) {
	f := setup(t)
	p := f.newPublisher(t, publisher.WithSource("app-7"))
	before := time.Now().UTC().Truncate(time.Microsecond)

	ack, err := p.Publish(t.Context(), bareEvent(libID))
	if err != nil {
		t.Fatal(err)
	}
	id, err := uuid.Parse(ack.ID)
	if err != nil || id.Version() != 7 {
		t.Fatalf("ack id %q: %v, version %d; want a UUIDv7", ack.ID, err, id.Version())
	}
	m := f.get(t, ack.Seq)
	got, err := event.Decode(m.Data, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != ack.ID || got.Source != "app-7" {
		t.Errorf("stored id %q source %q, want %q and app-7", got.ID, got.Source, ack.ID)
	}
	if got.Timestamp.Before(before) || got.Timestamp.After(time.Now().UTC()) {
		t.Errorf("timestamp %v not between %v and now", got.Timestamp, before)
	}
	checkHeaders(t, m.Header, got, "app-7")

	// The event's own fields win over the publisher's.
	ev := designEvent()
	ack, err = p.Publish(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := event.Decode(f.get(t, ack.Seq).Data, 0); got.Source != "app-1" || got.ID != evID {
		t.Errorf("stored %+v, want the event's id and source", got)
	}
}

func TestPublishDefaultSource(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip(err)
	}
	f := setup(t)
	p := f.newPublisher(t)
	ack, err := p.Publish(t.Context(), bareEvent(libID))
	if err != nil {
		t.Fatal(err)
	}
	got, err := event.Decode(f.get(t, ack.Seq).Data, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Source != host {
		t.Errorf("source = %q, want the host name %q", got.Source, host)
	}
}

func TestPublishEmptySource(t *testing.T) {
	f := setup(t)
	p := f.newPublisher(t, publisher.WithSource(""))
	ack, err := p.Publish(t.Context(), bareEvent(libID))
	if err != nil {
		t.Fatal(err)
	}
	m := f.get(t, ack.Seq)
	got, err := event.Decode(m.Data, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Source != "" || strings.Contains(string(m.Data), `"source"`) {
		t.Errorf("stored %s, want no source", m.Data)
	}
	checkHeaders(t, m.Header, got, "arrwcdc")
}

func TestPublishDuplicate(t *testing.T) {
	f := setup(t)
	p := f.newPublisher(t)
	ev := designEvent()
	first, err := p.Publish(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	second, err := p.Publish(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if first.Duplicate || !second.Duplicate || second.ID != evID || second.Seq != first.Seq {
		t.Errorf("acks %+v then %+v; want the second a duplicate of the first", first, second)
	}
	fut, err := p.PublishAsync(ev)
	if err != nil {
		t.Fatal(err)
	}
	third, err := fut.Wait(t.Context())
	if err != nil || !third.Duplicate {
		t.Errorf("async republish: %+v, %v; want a duplicate", third, err)
	}
	if n := f.msgs(t); n != 1 {
		t.Errorf("stream holds %d messages, want 1", n)
	}
	if s := p.Stats(); s.Published != 3 || s.Duplicates != 2 {
		t.Errorf("stats = %+v, want 3 published, 2 duplicates", s)
	}
}

func TestPublishInvalid(t *testing.T) {
	f := setup(t)
	p := f.newPublisher(t, publisher.WithMaxEventSize(1024))

	with := func(edit func(*event.Event)) event.Event {
		ev := designEvent()
		edit(&ev)
		return ev
	}
	lib := func(id string) event.Event { return with(func(ev *event.Event) { ev.LibraryID = id }) }
	tests := []struct {
		name string
		ev   event.Event
		want []error
	}{
		{"dotted library", lib("a.b"), []error{event.ErrInvalid, subjects.ErrInvalidLibraryID}},
		{"star library", lib("*"), []error{event.ErrInvalid, subjects.ErrInvalidLibraryID}},
		{"gt library", lib(">"), []error{event.ErrInvalid, subjects.ErrInvalidLibraryID}},
		{"space library", lib("a b"), []error{event.ErrInvalid, subjects.ErrInvalidLibraryID}},
		{"empty library", lib(""), []error{event.ErrInvalid, subjects.ErrInvalidLibraryID}},
		{"long library", lib(strings.Repeat("a", 129)), []error{event.ErrInvalid, subjects.ErrInvalidLibraryID}},
		{"bad type", with(func(ev *event.Event) { ev.Type = "Document.Added" }), []error{event.ErrInvalid, subjects.ErrInvalidType}},
		{"one-token type", with(func(ev *event.Event) { ev.Type = "document" }), []error{event.ErrInvalid, subjects.ErrInvalidType}},
		{"wildcard type", with(func(ev *event.Event) { ev.Type = "document.*" }), []error{event.ErrInvalid, subjects.ErrInvalidType}},
		{"data array", with(func(ev *event.Event) { ev.Data = json.RawMessage(`[1]`) }), []error{event.ErrInvalid}},
		{"data string", with(func(ev *event.Event) { ev.Data = json.RawMessage(`"x"`) }), []error{event.ErrInvalid}},
		{"data broken", with(func(ev *event.Event) { ev.Data = json.RawMessage(`{"a":`) }), []error{event.ErrInvalid}},
		{"source with newline", with(func(ev *event.Event) { ev.Source = "app\r\nX-Evil: 1" }), []error{event.ErrInvalid}},
		{"oversized", with(func(ev *event.Event) {
			ev.Data = json.RawMessage(`{"title":"` + strings.Repeat("x", 2048) + `"}`)
		}), []error{event.ErrTooLarge}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.Publish(t.Context(), tt.ev)
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("Publish = %v, want errors.Is %v", err, w)
				}
			}
			fut, err := p.PublishAsync(tt.ev)
			if fut != nil || !errors.Is(err, tt.want[0]) {
				t.Errorf("PublishAsync = %v, %v; want no future and %v", fut, err, tt.want[0])
			}
			if s := p.Stats(); s.Invalid != uint64(2*(i+1)) || s.Published != 0 || s.Failed != 0 {
				t.Errorf("stats = %+v, want %d invalid and nothing else", s, 2*(i+1))
			}
		})
	}

	// The default limit is 1 MiB.
	big := designEvent()
	big.Data = json.RawMessage(`{"title":"` + strings.Repeat("x", event.DefaultMaxSize) + `"}`)
	q := f.newPublisher(t)
	if _, err := q.Publish(t.Context(), big); !errors.Is(err, event.ErrTooLarge) {
		t.Errorf("1 MiB of data: %v, want ErrTooLarge", err)
	}
	if n := f.msgs(t); n != 0 {
		t.Errorf("stream holds %d messages, want none", n)
	}
}

func TestPublishAsyncMany(t *testing.T) {
	f := setup(t)
	p := f.newPublisher(t)
	const workers, each = 8, 1250

	var wg sync.WaitGroup
	futures := make([][]*publisher.Future, workers)
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				fut, err := p.PublishAsync(bareEvent(fmt.Sprintf("lib-%d-%d", w, i%10)))
				if err != nil {
					errs <- err
					return
				}
				futures[w] = append(futures[w], fut)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	seqs := make(map[uint64]bool, workers*each)
	ids := make(map[string]bool, workers*each)
	for _, fs := range futures {
		for _, fut := range fs {
			ack, err := fut.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-fut.Done():
			default:
				t.Fatal("Wait returned but Done is open")
			}
			if ack.Seq == 0 || seqs[ack.Seq] || ack.Duplicate || ack.ID != fut.ID() || ids[ack.ID] {
				t.Fatalf("ack %+v: zero, repeated or duplicate", ack)
			}
			seqs[ack.Seq] = true
			ids[ack.ID] = true
		}
	}
	if n := f.msgs(t); n != workers*each {
		t.Errorf("stream holds %d messages, want %d", n, workers*each)
	}
	if s := p.Stats(); s.Published != workers*each || s.Pending != 0 || s.Failed != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestPublishConcurrent(t *testing.T) {
	f := setup(t)
	p := f.newPublisher(t)
	const workers, each = 16, 50

	var wg sync.WaitGroup
	acks := make(chan publisher.Ack, workers*each)
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				var (
					ack publisher.Ack
					err error
				)
				if i%2 == 0 {
					ack, err = p.Publish(t.Context(), bareEvent(fmt.Sprintf("lib-%d", w)))
				} else {
					ack, err = p.DocumentDeleted(t.Context(), fmt.Sprintf("lib-%d", w), event.DocumentDeleted{DocumentID: docID})
				}
				if err != nil {
					errs <- err
					continue
				}
				acks <- ack
			}
			_ = p.Stats()
		})
	}
	wg.Wait()
	close(acks)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	seqs := map[uint64]bool{}
	for a := range acks {
		if seqs[a.Seq] {
			t.Errorf("seq %d acknowledged twice", a.Seq)
		}
		seqs[a.Seq] = true
	}
	if len(seqs) != workers*each || f.msgs(t) != workers*each {
		t.Errorf("%d distinct acks, %d stored; want %d", len(seqs), f.msgs(t), workers*each)
	}
}

func TestTypedHelpers(t *testing.T) {
	f := setup(t)
	p := f.newPublisher(t)
	ctx := t.Context()

	tests := []struct {
		typ  string
		pub  func() (publisher.Ack, error)
		want any
		got  func(*event.Event) (any, error)
	}{
		{
			event.TypeLibraryCreated,
			func() (publisher.Ack, error) {
				return p.LibraryCreated(ctx, libID, event.LibraryCreated{Name: "L", IndexType: "hnsw", EmbeddingDimension: 1024})
			},
			event.LibraryCreated{Name: "L", IndexType: "hnsw", EmbeddingDimension: 1024},
			decodeAs[event.LibraryCreated],
		},
		{
			event.TypeLibraryDeleted,
			func() (publisher.Ack, error) { return p.LibraryDeleted(ctx, libID, event.LibraryDeleted{Name: "L"}) },
			event.LibraryDeleted{Name: "L"},
			decodeAs[event.LibraryDeleted],
		},
		{
			event.TypeDocumentAdded,
			func() (publisher.Ack, error) {
				return p.DocumentAdded(ctx, libID, event.DocumentAdded{DocumentID: docID, Title: "T", NumChunks: 3})
			},
			event.DocumentAdded{DocumentID: docID, Title: "T", NumChunks: 3},
			decodeAs[event.DocumentAdded],
		},
		{
			event.TypeDocumentDeleted,
			func() (publisher.Ack, error) {
				return p.DocumentDeleted(ctx, libID, event.DocumentDeleted{DocumentID: docID})
			},
			event.DocumentDeleted{DocumentID: docID},
			decodeAs[event.DocumentDeleted],
		},
		{
			event.TypeSearchPerformed,
			func() (publisher.Ack, error) {
				return p.SearchPerformed(ctx, libID, event.SearchPerformed{Query: "q", K: 10, ResultsCount: 8, DurationMS: 14.5})
			},
			event.SearchPerformed{Query: "q", K: 10, ResultsCount: 8, DurationMS: 14.5},
			decodeAs[event.SearchPerformed],
		},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			ack, err := tt.pub()
			if err != nil {
				t.Fatal(err)
			}
			m := f.get(t, ack.Seq)
			ev, err := event.Decode(m.Data, 0)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Type != tt.typ || ev.LibraryID != libID || ev.ID != ack.ID {
				t.Errorf("stored %+v", ev)
			}
			if err := ev.CheckSubject(m.Subject); err != nil {
				t.Error(err)
			}
			got, err := tt.got(&ev)
			if err != nil || got != tt.want {
				t.Errorf("data = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}

	if _, err := p.DocumentAdded(ctx, "a.b", event.DocumentAdded{}); !errors.Is(err, subjects.ErrInvalidLibraryID) {
		t.Errorf("bad library id: %v", err)
	}
	if s := p.Stats(); s.Invalid != 1 || s.Published != uint64(len(tests)) {
		t.Errorf("stats = %+v", s)
	}
}

func decodeAs[T any](ev *event.Event) (any, error) {
	var v T
	err := ev.DataAs(&v)
	return v, err
}

func TestCloseRejectsPublishes(t *testing.T) {
	f := setup(t)
	p, err := publisher.New(f.nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Publish(t.Context(), designEvent()); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(t.Context()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := p.Publish(t.Context(), designEvent()); !errors.Is(err, publisher.ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
	if _, err := p.PublishAsync(designEvent()); !errors.Is(err, publisher.ErrClosed) {
		t.Errorf("PublishAsync after Close = %v, want ErrClosed", err)
	}
	if _, err := p.LibraryDeleted(t.Context(), libID, event.LibraryDeleted{}); !errors.Is(err, publisher.ErrClosed) {
		t.Errorf("LibraryDeleted after Close = %v, want ErrClosed", err)
	}
	if !f.nc.IsConnected() {
		t.Error("Close closed the caller's connection")
	}
}

func TestCloseWaitsForAsync(t *testing.T) {
	f := setup(t)
	p, err := publisher.New(f.nc)
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	futures := make([]*publisher.Future, n)
	for i := range futures {
		if futures[i], err = p.PublishAsync(bareEvent(libID)); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d pending at Close", p.Stats().Pending)
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, fut := range futures {
		select {
		case <-fut.Done():
		default:
			t.Fatal("Close returned before a future was resolved")
		}
		if _, err := fut.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if s := p.Stats(); s.Pending != 0 || s.Published != n {
		t.Errorf("stats = %+v", s)
	}
	if got := f.msgs(t); got != n {
		t.Errorf("stream holds %d, want %d", got, n)
	}
}

// With no stream on the subject, JetStream answers "no responders" and the
// client retries twice, 250 ms apart: a publish that stays pending for a
// known time.
func TestCloseWaitsForFailingAsync(t *testing.T) {
	f := setup(t)
	p, err := publisher.New(f.nc, publisher.WithPrefix("nostream"))
	if err != nil {
		t.Fatal(err)
	}
	fut, err := p.PublishAsync(designEvent())
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Stats().Pending; got != 1 {
		t.Fatalf("pending = %d, want 1", got)
	}
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fut.Done():
	default:
		t.Fatal("Close returned before the future was resolved")
	}
	_, err = fut.Wait(t.Context())
	if !errors.Is(err, jetstream.ErrNoStreamResponse) || !strings.Contains(err.Error(), "nostream.library.") {
		t.Errorf("future = %v, want ErrNoStreamResponse naming the subject", err)
	}
	if s := p.Stats(); s.Failed != 1 || s.Pending != 0 || s.Published != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestCloseContextExpires(t *testing.T) {
	f := setup(t)
	p, err := publisher.New(f.nc, publisher.WithPrefix("nostream"))
	if err != nil {
		t.Fatal(err)
	}
	fut, err := p.PublishAsync(designEvent())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := p.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want DeadlineExceeded", err)
	}
	// What was still pending is failed, not left hanging.
	if _, err := fut.Wait(t.Context()); err == nil {
		t.Error("pending future succeeded after Close gave up")
	}
	if s := p.Stats(); s.Pending != 0 || s.Failed != 1 {
		t.Errorf("stats = %+v", s)
	}
}

func TestPublishAsyncTooManyPending(t *testing.T) {
	f := setup(t)
	// Without a stream the first publish holds the only slot through the
	// client's retries (250 ms apart); the second gives up after 50 ms.
	p := f.newPublisher(t, publisher.WithPrefix("nostream"), publisher.WithMaxPending(1),
		publisher.WithDefaultTimeout(50*time.Millisecond))
	first, err := p.PublishAsync(designEvent())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.PublishAsync(bareEvent(libID)); !errors.Is(err, publisher.ErrTooManyPending) {
		t.Errorf("second PublishAsync = %v, want ErrTooManyPending", err)
	}
	if _, err := first.Wait(t.Context()); !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Errorf("first = %v, want ErrNoStreamResponse", err)
	}
	if s := p.Stats(); s.Failed != 2 || s.Pending != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestPublishCancelledContext(t *testing.T) {
	f := setup(t)
	p := f.newPublisher(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := p.Publish(ctx, designEvent()); !errors.Is(err, context.Canceled) {
		t.Errorf("Publish = %v, want context.Canceled", err)
	}
	if n := f.msgs(t); n != 0 {
		t.Errorf("stream holds %d, want nothing", n)
	}
	if s := p.Stats(); s != (publisher.Stats{}) {
		t.Errorf("stats = %+v, want nothing counted", s)
	}

	// Wait's context bounds the wait, not the publish. Without a stream
	// the publish stays pending for the client's retries (2 x 250 ms).
	q := f.newPublisher(t, publisher.WithPrefix("nostream"))
	fut, err := q.PublishAsync(designEvent())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fut.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait = %v, want context.Canceled", err)
	}
	if _, err := fut.Wait(t.Context()); !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Errorf("Wait = %v, want the publish's own outcome", err)
	}
}

func TestPublishBrokerDown(t *testing.T) {
	f := setup(t)
	const timeout = 200 * time.Millisecond
	p := f.newPublisher(t, publisher.WithDefaultTimeout(timeout))
	if _, err := p.Publish(t.Context(), bareEvent(libID)); err != nil {
		t.Fatal(err)
	}
	if err := f.b.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	_, err := p.Publish(context.Background(), bareEvent(libID))
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("Publish succeeded with the broker down")
	}
	if !strings.HasPrefix(err.Error(), "publish events.library."+libID+".document.added: ") {
		t.Errorf("error %q does not name the subject", err)
	}
	t.Logf("broker down: %v after %v", err, elapsed)
	if elapsed > timeout+time.Second {
		t.Errorf("Publish took %v, want about the default timeout %v", elapsed, timeout)
	}

	// An explicit deadline wins over the default timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := p.Publish(ctx, bareEvent(libID)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Publish = %v, want DeadlineExceeded", err)
	}
	if elapsed := time.Since(start); elapsed >= timeout {
		t.Errorf("Publish took %v with a 20ms deadline", elapsed)
	}

	// Async acks time out too.
	fut, err := p.PublishAsync(bareEvent(libID))
	if err == nil {
		_, err = fut.Wait(t.Context())
	}
	if err == nil {
		t.Error("PublishAsync succeeded with the broker down")
	}
	if s := p.Stats(); s.Failed < 2 || s.Published != 1 || s.Pending != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestCoreNATS(t *testing.T) {
	f := setup(t)
	sub, err := f.nc.SubscribeSync("events.>")
	if err != nil {
		t.Fatal(err)
	}
	p := f.newPublisher(t, publisher.WithCoreNATS(), publisher.WithSource("core"))
	ev := bareEvent(libID)
	ack, err := p.Publish(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if ack.Seq != 0 || ack.Duplicate || ack.ID == "" {
		t.Errorf("ack = %+v, want an id and no sequence", ack)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got, err := event.Decode(m.Data, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != ack.ID || got.Source != "core" || m.Subject != "events.library."+libID+".document.added" {
		t.Errorf("received %s %+v", m.Subject, got)
	}
	checkHeaders(t, m.Header, got, "core")

	fut, err := p.PublishAsync(bareEvent(libID))
	if err != nil {
		t.Fatal(err)
	}
	if a, err := fut.Wait(t.Context()); err != nil || a.Seq != 0 {
		t.Errorf("async core publish: %+v, %v", a, err)
	}
	if _, err := sub.NextMsg(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	// The stream captures the subject all the same.
	testnats.Eventually(t, 5*time.Second, func() error {
		if n := f.msgs(t); n != 2 {
			return fmt.Errorf("stream holds %d, want 2", n)
		}
		return nil
	})
	if s := p.Stats(); s.Published != 2 {
		t.Errorf("stats = %+v", s)
	}
}

func TestNewOptions(t *testing.T) {
	f := setup(t)
	bad := map[string]publisher.Option{
		"empty prefix":        publisher.WithPrefix(""),
		"prefix empty token":  publisher.WithPrefix("a..b"),
		"prefix wildcard":     publisher.WithPrefix("events.*"),
		"prefix gt":           publisher.WithPrefix(">"),
		"prefix space":        publisher.WithPrefix("ev ents"),
		"source control char": publisher.WithSource("app\n1"),
		"source too long":     publisher.WithSource(strings.Repeat("s", 257)),
		"source bad utf8":     publisher.WithSource("\xff"),
		"zero timeout":        publisher.WithDefaultTimeout(0),
		"negative timeout":    publisher.WithDefaultTimeout(-time.Second),
		"zero max size":       publisher.WithMaxEventSize(0),
		"negative max size":   publisher.WithMaxEventSize(-1),
		"zero max pending":    publisher.WithMaxPending(0),
		"negative pending":    publisher.WithMaxPending(-5),
	}
	for name, opt := range bad {
		t.Run(name, func(t *testing.T) {
			p, err := publisher.New(f.nc, opt)
			if !errors.Is(err, publisher.ErrInvalidOption) || p != nil {
				t.Errorf("New = %v, %v; want ErrInvalidOption", p, err)
			}
		})
	}
	_, err := publisher.New(f.nc, publisher.WithPrefix("a..b"))
	if err == nil || !strings.Contains(err.Error(), `"a..b"`) {
		t.Errorf("error %v does not quote the bad prefix", err)
	}
	if _, err := publisher.New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}

	p, err := publisher.New(f.nc,
		publisher.WithPrefix("events"), publisher.WithSource("s"), publisher.WithDefaultTimeout(time.Second),
		publisher.WithMaxEventSize(4096), publisher.WithLogger(nil), publisher.WithMaxPending(1))
	if err != nil {
		t.Fatal(err)
	}
	// One pending at a time still gets everything through.
	var futs []*publisher.Future
	for range 20 {
		fut, err := p.PublishAsync(bareEvent(libID))
		if err != nil {
			t.Fatal(err)
		}
		futs = append(futs, fut)
	}
	for _, fut := range futs {
		if _, err := fut.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
}
