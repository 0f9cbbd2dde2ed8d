package bridge_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arrwdb/arrwcdc/bridge"
	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/testnats"
	"github.com/arrwdb/arrwcdc/publisher"
)

// finishFlow ends a test's flow: it waits for the publisher (flowed),
// publishes the sentinel, waits for the followers (waits) and requires
// that the WebSocket and SSE followers got every lib-1 event once, in
// order. It returns the seqs of those events.
func finishFlow(t *testing.T, flowed <-chan error, p *publisher.Publisher, l *ledger, waits []func() error, ws, sse *follower) []uint64 {
	t.Helper()
	if err := <-flowed; err != nil {
		t.Fatal(err)
	}
	sentinel(t, p, l, ws, sse)
	for _, w := range waits {
		if err := w(); err != nil {
			t.Fatal(err)
		}
	}
	requireDelivered(t, "websocket", ws, l, lib1)
	requireDelivered(t, "sse", sse, l, lib1)
	return l.want(lib1)
}

// sentinel publishes the last event of a test, a document.added of
// lib-1, after telling fs to stop at it.
func sentinel(t *testing.T, p *publisher.Publisher, l *ledger, fs ...*follower) {
	t.Helper()
	id := event.NewID()
	for _, f := range fs {
		f.stopAt(id)
	}
	publishMany(t, p, l, 1, func(int) event.Event {
		ev := mkEvent("lib-1", event.TypeDocumentAdded, "", -1)
		ev.ID = id
		return ev
	})
}

func lib1(e pubEvent) bool { return e.lib == "lib-1" }

// soak reports whether the long variants run: ARRWCDC_SOAK=1 and not
// -short.
func soak() bool { return os.Getenv("ARRWCDC_SOAK") == "1" && !testing.Short() }

// TestBridgeRestart: the bridge is replaced while 10k events flow; a
// WebSocket client that reconnects with since_seq and an SSE client that
// reconnects with Last-Event-ID get every event once, in order.
func TestBridgeRestart(t *testing.T) {
	e := newEnv(t)
	p := e.newPublisher(t)
	var l ledger
	var cur atomic.Pointer[bridge.Bridge]
	cur.Store(e.bridge(t))
	url := func() string { return cur.Load().URL() }
	ws := wsFollower(url, "/v1/libraries/lib-1/ws", "since_seq=0", &link{})
	sse := sseFollower(url, "/v1/libraries/lib-1/events", "since_seq=0", &link{})
	waits := []func() error{ws.start(t), sse.start(t)}

	flowed := make(chan error, 1)
	go func() { flowed <- publishFlow(p, &l, 10000, testFlow(0), nil, 0) }()
	testnats.Eventually(t, 2*wait, func() error {
		if a, b := ws.count(), sse.count(); a < 1500 || b < 1500 {
			return fmt.Errorf("%d and %d events", a, b)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := cur.Load().Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	published := l.len()
	cur.Store(e.bridge(t))
	want := finishFlow(t, flowed, p, &l, waits, ws, sse)
	// One reconnect for the restart. A reader that falls behind the live
	// flow (a loaded CI machine) may also be closed as a slow consumer and
	// resume: allowed, since delivery above is still exactly once, but
	// every other close is a failure.
	for _, f := range []*follower{ws, sse} {
		slow := 0
		for _, c := range f.closes {
			if strings.Contains(c, "slow consumer") {
				slow++
			}
		}
		if f.connects-slow != 2 {
			t.Errorf("%d connections (%d after slow-consumer closes): %v", f.connects, slow, f.closes)
		}
	}
	t.Logf("%d events (%d of them when the bridge stopped), %d of lib-1", l.len(), published, len(want))
}

// TestLinkDrops: clients whose connection is cut every 200 ms (every 2 s
// with ARRWCDC_SOAK=1) for 6 s (a minute with ARRWCDC_SOAK=1) while
// events flow still get every event once, in order.
func TestLinkDrops(t *testing.T) {
	every, total := 200*time.Millisecond, 6*time.Second
	if soak() {
		every, total = 2*time.Second, time.Minute
	}
	e := newEnv(t)
	b := e.bridge(t)
	p := e.newPublisher(t)
	var l ledger
	wl, sl := &link{}, &link{}
	ws := wsFollower(bridgeURL(b), "/v1/libraries/lib-1/ws", "", wl)
	sse := sseFollower(bridgeURL(b), "/v1/libraries/lib-1/events", "", sl)
	waits := []func() error{ws.start(t), sse.start(t)}
	testnats.Eventually(t, wait, func() error {
		if n := b.Stats().ActiveSubscribers; n != 2 {
			return fmt.Errorf("%d clients", n)
		}
		return nil
	})

	stop := make(chan struct{})
	flowed := make(chan error, 1)
	go func() { flowed <- publishFlow(p, &l, 0, testFlow(0), stop, time.Millisecond) }()
	cuts := 0
	tick := time.NewTicker(every)
	for end := time.Now().Add(total); time.Now().Before(end); cuts++ {
		<-tick.C
		wl.cut()
		sl.cut()
	}
	tick.Stop()
	close(stop)
	want := finishFlow(t, flowed, p, &l, waits, ws, sse)
	for _, f := range []*follower{ws, sse} {
		if f.connects < cuts/2 {
			t.Errorf("%d connections for %d cuts", f.connects, cuts)
		}
		for _, why := range f.closes {
			if strings.Contains(why, "slow consumer") {
				t.Errorf("closed: %s", why)
			}
		}
	}
	t.Logf("%d events of lib-1, %d cuts, %d and %d connections", len(want), cuts, ws.connects, sse.connects)
}

// TestResumeBacklog: clients that resume across a long backlog (20k
// events; 100k with ARRWCDC_SOAK=1, about a minute under -race) while
// more events flow are paced by their reading: never closed as slow, every
// event once, in order.
func TestResumeBacklog(t *testing.T) {
	n := 20000
	if soak() {
		n = 100000
	}
	e := newEnv(t)
	b := e.bridge(t) // the default queue: 256 frames
	p := e.newPublisher(t)
	var l ledger
	start := time.Now()
	publishMany(t, p, &l, n, func(i int) event.Event { return mkEvent("lib-1", event.TypeDocumentAdded, "app-1", i) })
	t.Logf("%d events published in %v", n, time.Since(start))

	start = time.Now()
	ws := wsFollower(bridgeURL(b), "/v1/libraries/lib-1/ws", "since_seq=0", &link{})
	sse := sseFollower(bridgeURL(b), "/v1/libraries/lib-1/events", "since_seq=0", &link{})
	waits := []func() error{ws.start(t), sse.start(t)}
	// Live events flow during the catch-up, until both caught up.
	stop := make(chan struct{})
	flowed := make(chan error, 1)
	go func() { flowed <- publishFlow(p, &l, 0, testFlow(0), stop, 2*time.Millisecond) }()
	testnats.Eventually(t, 10*wait, func() error {
		if a, b := ws.count(), sse.count(); a < n || b < n {
			return fmt.Errorf("%d and %d of the %d events", a, b, n)
		}
		return nil
	})
	close(stop)
	want := finishFlow(t, flowed, p, &l, waits, ws, sse)
	for _, f := range []*follower{ws, sse} {
		if f.connects != 1 {
			t.Errorf("%d connections: %v", f.connects, f.closes)
		}
	}
	st := b.Stats()
	if st.SlowConsumerDisconnects != 0 || st.TotalReplayed < uint64(2*n) {
		t.Errorf("slow %d, replayed %d", st.SlowConsumerDisconnects, st.TotalReplayed)
	}
	t.Logf("caught up with %d events (+%d live) in %v", n, len(want)-n, time.Since(start))
}
