package bridge_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/arrwdb/arrwcdc/bridge"
	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/testnats"
)

// testFlow makes event i: libraries lib-1, lib-1, lib-2 in turn, three
// types, two sources.
func testFlow(offset int) func(i int) event.Event {
	types := []string{event.TypeDocumentAdded, event.TypeDocumentDeleted, event.TypeLibraryCreated, event.TypeDocumentAdded}
	return func(i int) event.Event {
		i += offset
		return mkEvent([]string{"lib-1", "lib-1", "lib-2"}[i%3], types[i%4], []string{"app-1", "app-2"}[i%2], i)
	}
}

// TestResumeHandOver: clients resume from a sequence or a time while
// events keep flowing, with filters, over WebSocket and SSE: each gets the
// stored events it selects after its resume point, then the live ones,
// each once and in stream order.
func TestResumeHandOver(t *testing.T) {
	e := newEnv(t)
	// A small queue, so that live events that arrive during a catch-up
	// overflow the hand-over buffer too. Once live, a client may then be
	// closed as slow under -race: it resumes, and still gets every event
	// once.
	b := e.bridge(t, func(c *bridge.Config) { c.ClientQueue = 64 })
	p := e.newPublisher(t)
	var l ledger
	publishMany(t, p, &l, 600, testFlow(0))
	lastBefore := l.want(func(pubEvent) bool { return true })[599]
	since := time.Now() // every event so far is stored before it
	publishMany(t, p, &l, 600, testFlow(600))
	k := l.want(func(e pubEvent) bool { return e.lib == "lib-1" })[100]
	ks := strconv.FormatUint(k, 10)

	url := bridgeURL(b)
	type client struct {
		name string
		f    *follower
		want func(pubEvent) bool
		last bool // stops at the last sentinel (a document.deleted), else at the first
	}
	lib1 := func(e pubEvent) bool { return e.lib == "lib-1" }
	after := func(k uint64, pred func(pubEvent) bool) func(pubEvent) bool {
		return func(e pubEvent) bool { return e.seq > k && pred(e) }
	}
	lastID := &follower{open: func(last uint64, first bool) (source, error) {
		if first {
			last = k
		}
		return openSSE(url(), "/v1/libraries/lib-1/events", strconv.FormatUint(last, 10), &link{})
	}}
	clients := []client{
		{"ws since_seq", wsFollower(url, "/v1/libraries/lib-1/ws", "since_seq="+ks, &link{}), after(k, lib1), true},
		{"ws since_seq one type", wsFollower(url, "/v1/libraries/lib-1/ws?types=document.deleted", "since_seq="+ks, &link{}),
			after(k, func(e pubEvent) bool { return lib1(e) && e.typ == event.TypeDocumentDeleted }), true},
		{"ws since_seq=0 types and exclude_source", wsFollower(url, "/v1/libraries/lib-1/ws?types=document.*,library.created&exclude_source=app-2", "since_seq=0", &link{}),
			func(e pubEvent) bool { return lib1(e) && e.source != "app-2" }, true},
		{"ws pattern since_seq", wsFollower(url, "/v1/events/ws?filter=events.library.*.document.added", "since_seq="+ks, &link{}),
			after(k, func(e pubEvent) bool { return e.typ == event.TypeDocumentAdded }), false},
		{"ws since_time", wsFollower(url, "/v1/libraries/lib-1/ws", "since_time="+since.UTC().Format(time.RFC3339Nano), &link{}), after(lastBefore, lib1), true},
		{"sse since_seq", sseFollower(url, "/v1/libraries/lib-1/events", "since_seq="+ks, &link{}), after(k, lib1), true},
		{"sse Last-Event-ID", lastID, after(k, lib1), true},
		{"sse since_time", sseFollower(url, "/v1/libraries/lib-1/events", "since_time="+since.UTC().Format(time.RFC3339Nano), &link{}), after(lastBefore, lib1), true},
	}
	waits := make([]func() error, len(clients))
	for i, c := range clients {
		waits[i] = c.f.start(t)
	}

	// Events keep flowing while the clients catch up and go live.
	if err := publishFlow(p, &l, 1500, testFlow(1200), nil, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	var sentinels [2]pubEvent
	for i := range sentinels {
		sentinels[i].id = event.NewID()
		for _, c := range clients {
			if c.last == (i == 1) {
				c.f.stopAt(sentinels[i].id)
			}
		}
	}
	for i, typ := range []string{event.TypeDocumentAdded, event.TypeDocumentDeleted} {
		before := l.len()
		publishMany(t, p, &l, 1, func(int) event.Event {
			ev := mkEvent("lib-1", typ, "app-1", -1)
			ev.ID = sentinels[i].id
			return ev
		})
		l.mu.Lock()
		sentinels[i] = l.evs[before]
		l.mu.Unlock()
	}
	for i, c := range clients {
		if err := waits[i](); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		stop := sentinels[0].seq
		if c.last {
			stop = sentinels[1].seq
		}
		want := l.want(func(e pubEvent) bool { return e.seq <= stop && c.want(e) })
		requireDelivered(t, c.name, c.f, &l, func(e pubEvent) bool { return e.seq <= stop && c.want(e) })
		if len(c.f.gaps) > 0 {
			t.Errorf("%s: gaps %v", c.name, c.f.gaps)
		}
		for _, why := range c.f.closes {
			if !strings.Contains(why, "slow consumer: resume with since_seq=") {
				t.Errorf("%s: closed: %s", c.name, why)
			}
		}
		t.Logf("%s: %d events, %d connections", c.name, len(want), c.f.connects)
	}
	testnats.Eventually(t, wait, func() error {
		st := b.Stats()
		if st.TotalReplayed == 0 || st.ReplayingClients != 0 || st.Resyncs != 0 {
			return fmt.Errorf("replayed %d, replaying %d, resyncs %d", st.TotalReplayed, st.ReplayingClients, st.Resyncs)
		}
		return nil
	})
}

// TestResumeEdges: a resume point at or after the stream's head goes live
// at once; since_seq=0 on an empty stream; an expired range is reported
// with a gap frame.
func TestResumeEdges(t *testing.T) {
	e := newEnv(t)
	b := e.bridge(t)

	// An empty stream: since_seq=0 and since_time replay nothing.
	c := dial(t, b, "/v1/libraries/lib-1/ws?since_seq=0")
	if hello := connected(t, c); *hello.StreamSeq != 0 {
		t.Fatalf("connected %s", hello.raw)
	}
	c2 := dial(t, b, "/v1/libraries/lib-1/ws?since_time=2020-01-01T00:00:00Z")
	connected(t, c2)
	seq, _ := e.publish(t, ev{lib: "lib-1"})
	for _, c := range []*websocket.Conn{c, c2} {
		if f := read(t, c); f.Seq != seq {
			t.Fatalf("got %s, want seq %d", f.raw, seq)
		}
	}

	// At the head: live only, nothing replayed, nothing twice.
	head, _ := e.publish(t, ev{lib: "lib-1"})
	c = dial(t, b, "/v1/libraries/lib-1/ws?since_seq="+strconv.FormatUint(head, 10))
	connected(t, c)
	next, _ := e.publish(t, ev{lib: "lib-1"})
	if f := read(t, c); f.Seq != next {
		t.Fatalf("got %s, want seq %d", f.raw, next)
	}
	// Beyond the head ("I have everything up to N"): nothing up to N.
	c = dial(t, b, "/v1/libraries/lib-1/ws?since_seq="+strconv.FormatUint(next+1, 10))
	connected(t, c)
	e.publish(t, ev{lib: "lib-1"}) // next+1: the client has it
	beyond, _ := e.publish(t, ev{lib: "lib-1"})
	if f := read(t, c); f.Seq != beyond {
		t.Fatalf("got %s, want seq %d", f.raw, beyond)
	}

	// Events that left the stream: a gap frame names them, then the rest.
	ctx := t.Context()
	s, err := e.js.Stream(ctx, "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	keep, _ := e.publish(t, ev{lib: "lib-1"})
	if err := s.Purge(ctx, jetstream.WithPurgeSequence(keep)); err != nil {
		t.Fatal(err)
	}
	c = dial(t, b, "/v1/libraries/lib-1/ws?since_seq=2")
	connected(t, c)
	if f := read(t, c); f.Type != "gap" || f.FromSeq != 3 || f.ToSeq != keep-1 || f.Reason != "expired" {
		t.Fatalf("got %s, want a gap 3..%d", f.raw, keep-1)
	}
	if f := read(t, c); f.Seq != keep {
		t.Fatalf("got %s, want seq %d", f.raw, keep)
	}
	if st := b.Stats(); st.Stream.FirstSeq != keep {
		// The stream state is cached for a second at most.
		testnats.Eventually(t, wait, func() error {
			if st := b.Stats(); st.Stream.FirstSeq != keep || st.Stream.LastSeq != keep || st.Stream.Messages != 1 {
				return fmt.Errorf("stream %+v", st.Stream)
			}
			return nil
		})
	}
}
