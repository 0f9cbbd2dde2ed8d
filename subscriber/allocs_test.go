package subscriber

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/allocs"
	"github.com/arrwdb/arrwcdc/subjects"
)

// TestAllocBudgets: a valid core NATS message on its way from the inbox
// to the handler (route, the worker's queue, handle) allocates once:
// event.Decode's buffer. The subject is parsed once, in place, and the
// Delivery goes to the handler by value.
func TestAllocBudgets(t *testing.T) {
	ev, err := event.NewDocumentAdded("lib-1", event.DocumentAdded{DocumentID: "d-1", Title: "Attention Is All You Need", NumChunks: 42})
	if err != nil {
		t.Fatal(err)
	}
	data, err := event.Encode(&ev, 0)
	if err != nil {
		t.Fatal(err)
	}
	subject, err := ev.Subject(subjects.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{nats.MsgIdHdr: {ev.ID}}}
	var handled int
	s := &Subscription{
		mode:     modeCore,
		opts:     defaultOptions(),
		log:      zap.NewNop(),
		handler:  func(context.Context, Delivery) error { handled++; return nil },
		runCtx:   context.Background(),
		queues:   []chan message{make(chan message, 1)},
		inflight: make([]atomic.Pointer[inflight], 1),
	}
	allocs.Check(t, allocs.Budget{Name: "route+handle", Max: 1, Fn: func() {
		if !s.route(message{nm: msg}) {
			t.Fatal("route: stopped")
		}
		s.handle(0, <-s.queues[0])
	}})
	if st := s.Stats(); handled == 0 || st.Handled != uint64(handled) || st.Pending != 0 {
		t.Fatalf("handled %d, stats %+v", handled, st)
	}
}
