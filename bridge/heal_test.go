package bridge_test

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/arrwdb/arrwcdc/bridge"
	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/testnats"
	"github.com/arrwdb/arrwcdc/publisher"
)

// healClients are live clients of lib-1 (WebSocket, SSE) and of a pattern,
// connected before any event, so each must get every event it selects.
type healClients struct {
	lib, sse, pattern *follower
	waits             []func() error
}

func startHealClients(t *testing.T, b *bridge.Bridge) *healClients {
	t.Helper()
	url := bridgeURL(b)
	h := &healClients{
		lib:     wsFollower(url, "/v1/libraries/lib-1/ws", "", &link{}),
		sse:     sseFollower(url, "/v1/libraries/lib-1/events", "", &link{}),
		pattern: wsFollower(url, "/v1/events/ws?filter=events.library.*.document.added", "", &link{}),
	}
	for _, f := range []*follower{h.lib, h.sse, h.pattern} {
		h.waits = append(h.waits, f.start(t))
	}
	testnats.Eventually(t, wait, func() error {
		if n := b.Stats().ActiveSubscribers; n != 3 {
			return fmt.Errorf("%d clients", n)
		}
		return nil
	})
	return h
}

// finish publishes a sentinel (a document.added of lib-1, which every
// client selects) and checks that each client got exactly what it selects.
func (h *healClients) finish(t *testing.T, p *publisher.Publisher, l *ledger) {
	t.Helper()
	id := event.NewID()
	for _, f := range []*follower{h.lib, h.sse, h.pattern} {
		f.stopAt(id)
	}
	publishMany(t, p, l, 1, func(int) event.Event {
		ev := mkEvent("lib-1", event.TypeDocumentAdded, "", -1)
		ev.ID = id
		return ev
	})
	for i, w := range h.waits {
		if err := w(); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
	}
	requireDelivered(t, "websocket", h.lib, l, lib1)
	requireDelivered(t, "sse", h.sse, l, lib1)
	requireDelivered(t, "pattern", h.pattern, l, func(e pubEvent) bool { return e.typ == event.TypeDocumentAdded })
	for _, f := range []*follower{h.lib, h.sse, h.pattern} {
		if f.connects != 1 || len(f.gaps) != 0 {
			t.Errorf("%d connections (%v), gaps %v", f.connects, f.closes, f.gaps)
		}
	}
}

// TestHealReconnect: the bridge's NATS connection goes down while events
// are stored; after it reconnects, the re-sync delivers what live delivery
// missed, once and in order, whether or not more events follow.
func TestHealReconnect(t *testing.T) {
	e := newEnv(t)
	px := newProxy(t, e.broker.ClientURL())
	b := e.bridgeAt(t, px.url())
	p := e.newPublisher(t)
	var l ledger
	h := startHealClients(t, b)
	publishMany(t, p, &l, 30, testFlow(0))

	outage := func() {
		t.Helper()
		px.cut()
		testnats.Eventually(t, wait, func() error {
			if st := b.Stats(); st.NATS.Connected {
				return fmt.Errorf("still connected: %+v", st.NATS)
			}
			return nil
		})
	}

	// 1. Nothing is published after the reconnect: the reconnect watcher
	// re-syncs.
	outage()
	publishMany(t, p, &l, 60, testFlow(30))
	px.restore()
	want := len(l.want(lib1))
	testnats.Eventually(t, wait, func() error {
		if n := h.lib.count(); n != want {
			return fmt.Errorf("%d of %d events", n, want)
		}
		return nil
	})

	// 2. Events flow through the outage and the reconnect.
	stop := make(chan struct{})
	flowed := make(chan error, 1)
	go func() { flowed <- publishFlow(p, &l, 0, testFlow(90), stop, time.Millisecond) }()
	published := func(n int) {
		t.Helper()
		testnats.Eventually(t, wait, func() error {
			if got := l.len(); got < n {
				return fmt.Errorf("%d published", got)
			}
			return nil
		})
	}
	published(l.len() + 30)
	outage()
	published(l.len() + 60)
	px.restore()
	testnats.Eventually(t, wait, func() error {
		if !b.Stats().NATS.Connected {
			return fmt.Errorf("not reconnected")
		}
		return nil
	})
	published(l.len() + 30)
	close(stop)
	if err := <-flowed; err != nil {
		t.Fatal(err)
	}
	h.finish(t, p, &l)
	st := b.Stats()
	if st.Resyncs < 2 || st.ResyncedEvents == 0 {
		t.Fatalf("resyncs %d, resynced events %d", st.Resyncs, st.ResyncedEvents)
	}
	t.Logf("%d events, %d re-syncs, %d events re-synced", l.len(), st.Resyncs, st.ResyncedEvents)
}

// TestHealGap: a live message lost without any other sign is seen missing
// through the next event's Nats-Last-Sequence on the same subject, and
// the re-sync delivers it before that event.
func TestHealGap(t *testing.T) {
	e := newEnv(t)
	b := e.bridge(t)
	p := e.newPublisher(t)
	var l ledger
	h := startHealClients(t, b)

	var lost atomic.Uint64 // the seq every room loses
	bridge.SetLiveHook(b, func(m *nats.Msg) bool {
		return m.Header.Get("Nats-Sequence") != strconv.FormatUint(lost.Load(), 10)
	})
	added := func(int) event.Event { return mkEvent("lib-1", event.TypeDocumentAdded, "", 0) }
	publishMany(t, p, &l, 5, added)
	lost.Store(e.lastSeq(t) + 1)
	publishMany(t, p, &l, 1, added) // lost live
	publishMany(t, p, &l, 5, testFlow(0))
	h.finish(t, p, &l)
	if lost.Load() == 0 {
		t.Fatal("no message was dropped")
	}
	if st := b.Stats(); st.Resyncs != 2 || st.ResyncedEvents != 2 { // the library's room and the pattern's
		t.Fatalf("resyncs %d, resynced events %d", st.Resyncs, st.ResyncedEvents)
	}
}

// TestHealLeaderElection: the EVENTS stream's leader goes away while
// events are published (each retried with its id until acknowledged); the
// bridge, on a surviving node, re-syncs on the leader-election advisory,
// and its clients get every acknowledged event once, in order.
func TestHealLeaderElection(t *testing.T) {
	if testing.Short() {
		t.Skip("a three-node cluster and an election take seconds")
	}
	nodes := testnats.Cluster(t, 3)
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.ClientURL()
	}
	js := testnats.JetStream(t, testnats.Conn(t, urls[0]))
	var leader string
	testnats.Eventually(t, 2*wait, func() error {
		s, err := js.Stream(t.Context(), "EVENTS")
		if err != nil {
			return err
		}
		if ci := s.CachedInfo().Cluster; ci != nil && ci.Leader != "" {
			leader = ci.Leader
			return nil
		}
		return fmt.Errorf("no leader")
	})
	var others []int
	lead := -1
	for i, n := range nodes {
		if n.Config().ServerName == leader {
			lead = i
		} else {
			others = append(others, i)
		}
	}
	if lead < 0 {
		t.Fatalf("leader %q is none of the nodes", leader)
	}
	e := &env{broker: nodes[others[0]]}
	b := e.bridgeAt(t, urls[others[0]])
	pnc := testnats.Conn(t, urls[others[1]], nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	p, err := publisher.New(pnc, publisher.WithSource(""), publisher.WithDefaultTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	h := startHealClients(t, b)

	var l ledger
	publish := func(from, n int) {
		t.Helper()
		mk := testFlow(from)
		for i := range n {
			ev := mk(i)
			ev.ID = event.NewID()
			for attempt := 0; ; attempt++ {
				ack, err := p.Publish(t.Context(), ev)
				if err == nil {
					l.add(pubEvent{seq: ack.Seq, id: ack.ID, lib: ev.LibraryID, typ: ev.Type, source: ev.Source})
					break
				}
				if attempt == 100 {
					t.Fatalf("event %d never acknowledged: %v", from+i, err)
				}
			}
		}
	}
	publish(0, 100)
	if err := nodes[lead].Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	publish(100, 200)
	h.finish(t, p, &l)
	if st := b.Stats(); st.Resyncs == 0 {
		t.Fatalf("no re-sync: %+v", st)
	}
}
