package subscriber_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/testnats"
	"github.com/arrwdb/arrwcdc/subjects"
	"github.com/arrwdb/arrwcdc/subscriber"
)

// waitTimeout bounds every wait for delivery; nothing sleeps.
const waitTimeout = 20 * time.Second

// env is one embedded broker with a publishing and a subscribing connection.
type env struct {
	pub, sub *nats.Conn
	url      string
}

func newEnv(t testing.TB) env {
	t.Helper()
	b := testnats.Broker(t)
	url := b.ClientURL()
	return env{pub: testnats.Conn(t, url), sub: testnats.Conn(t, url), url: url}
}

// logger returns a test logger; warnings and errors show in test output.
func logger(t testing.TB) subscriber.Option {
	return subscriber.WithLogger(zaptest.NewLogger(t, zaptest.Level(zapcore.WarnLevel)))
}

// seqData is the data of test events: a per-library sequence number.
type seqData struct {
	N int `json:"n"`
}

// newEvent returns a valid event of library lib and type typ whose data is
// {"n": n}.
func newEvent(t testing.TB, lib, typ string, n int) event.Event {
	t.Helper()
	ev, err := event.New(typ, lib, seqData{N: n})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// message builds the NATS message the publisher would send for ev.
func message(t testing.TB, ev event.Event) *nats.Msg {
	t.Helper()
	data, err := event.Encode(&ev, 0)
	if err != nil {
		t.Fatal(err)
	}
	subj, err := subjects.Build(subjects.DefaultPrefix, ev.LibraryID, ev.Type)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(subj)
	m.Data = data
	m.Header.Set(nats.MsgIdHdr, ev.ID)
	m.Header.Set("Content-Type", "application/json")
	return m
}

// publish sends evs in order over core NATS and flushes, so the server has
// routed them when publish returns.
func publish(t testing.TB, nc *nats.Conn, evs ...event.Event) {
	t.Helper()
	for _, ev := range evs {
		if err := nc.PublishMsg(message(t, ev)); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// publishRaw sends data as is on subject.
func publishRaw(t testing.TB, nc *nats.Conn, subject, data string) {
	t.Helper()
	if err := nc.Publish(subject, []byte(data)); err != nil {
		t.Fatal(err)
	}
}

// recorder is a handler that keeps every delivery.
type recorder struct {
	mu  sync.Mutex
	got []subscriber.Delivery
}

func (r *recorder) handle(_ context.Context, d subscriber.Delivery) error {
	r.mu.Lock()
	r.got = append(r.got, d)
	r.mu.Unlock()
	return nil
}

func (r *recorder) deliveries() []subscriber.Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// ids returns the event ids delivered, in order.
func (r *recorder) ids() []string {
	var out []string
	for _, d := range r.deliveries() {
		out = append(out, d.ID)
	}
	return out
}

func idsOf(evs []event.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.ID)
	}
	return out
}

// subscribe subscribes with a test logger and unsubscribes at cleanup.
func subscribe(t testing.TB, nc *nats.Conn, f subscriber.Filter, h subscriber.Handler, opts ...subscriber.Option) *subscriber.Subscription {
	t.Helper()
	s, err := subscriber.Subscribe(context.Background(), nc, f, h, append([]subscriber.Option{logger(t)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Unsubscribe() })
	return s
}

// drain drains s; after a publish that flushed, everything published has
// then been handled.
func drain(t testing.TB, s *subscriber.Subscription) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := s.Drain(ctx); err != nil {
		t.Fatalf("drain: %v", err)
	}
}

// waitStats waits until cond holds for s.Stats().
func waitStats(t testing.TB, s *subscriber.Subscription, cond func(subscriber.Stats) bool) {
	t.Helper()
	testnats.Eventually(t, waitTimeout, func() error {
		if st := s.Stats(); !cond(st) {
			return fmt.Errorf("stats %+v", st)
		}
		return nil
	})
}

// dataN decodes the sequence number of a test event.
func dataN(t testing.TB, d subscriber.Delivery) int {
	var v seqData
	if err := json.Unmarshal(d.Data, &v); err != nil {
		t.Errorf("data %s: %v", d.Data, err)
	}
	return v.N
}
