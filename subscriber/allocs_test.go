package subscriber

import (
	"context"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/internal/allocs"
)

// TestAllocBudgets: a valid core NATS message on its way from the inbox
// to the handler (route, the worker's queue, handle) allocates nothing:
// the event is read in place from the message's payload
// (event.DecodeShared), the subject is parsed once, in place, and the
// Delivery goes to the handler by value.
func TestAllocBudgets(t *testing.T) {
	msg := documentAddedMsg(t, "lib-1")
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
	allocs.Check(t, allocs.Budget{Name: "route+handle", Max: 0, Fn: func() {
		if !s.route(message{nm: msg}) {
			t.Fatal("route: stopped")
		}
		s.handle(0, <-s.queues[0])
	}})
	if st := s.Stats(); handled == 0 || st.Handled != uint64(handled) || st.Pending != 0 {
		t.Fatalf("handled %d, stats %+v", handled, st)
	}
}
