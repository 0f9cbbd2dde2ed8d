package bridge

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/internal/testnats"
)

// directTransport records which frames were written how: by the room's
// direct write (tryEnd) or by the client's writer (end).
type directTransport struct {
	mu       sync.Mutex
	busy     bool          // tryBegin fails
	short    int           // this many tryEnds leave bytes behind
	batch    []uint64      // seqs sent since the batch began (0: not an event)
	direct   []uint64      // event seqs written by tryEnd
	blocking []uint64      // event seqs written by end
	owed     bool          // a tryEnd left bytes that end has not written yet
	owedEnds int           // ends that wrote what a tryEnd left
	fail     bool          // tryEnd fails
	dropped  string        // the stack of the goroutine that called drop
	gate     chan struct{} // end waits for it to close (nil: not)
	order    []uint64      // every event seq, in the order it reached the socket
}

func (t *directTransport) send(kind frameKind, seq uint64, _ []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if kind == kindEvent {
		t.batch = append(t.batch, seq)
	}
	return nil
}

func (t *directTransport) begin() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.batch = nil
}

func (t *directTransport) end() error {
	t.mu.Lock()
	gate := t.gate
	t.mu.Unlock()
	if gate != nil {
		<-gate
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.owed {
		t.owed = false
		t.owedEnds++
	}
	t.blocking = append(t.blocking, t.batch...)
	t.order = append(t.order, t.batch...)
	return nil
}

func (t *directTransport) tryBegin() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.busy || t.owed {
		return false
	}
	t.batch = nil
	return true
}

func (t *directTransport) tryEnd() (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.direct = append(t.direct, t.batch...)
	t.order = append(t.order, t.batch...) // in the socket, or owed before anything else
	if t.fail {
		return false, errors.New("write failed")
	}
	if t.short > 0 {
		t.short--
		t.owed = true
		return false, nil
	}
	return true, nil
}

func (*directTransport) keepAlive() error      { return nil }
func (*directTransport) closeSlow(string)      {}
func (*directTransport) goingAway()            {}
func (*directTransport) expired()              {}
func (*directTransport) gone() <-chan struct{} { return nil }
func (t *directTransport) drop() {
	buf := make([]byte, 64<<10)
	buf = buf[:runtime.Stack(buf, false)]
	t.set(func(t *directTransport) { t.dropped = string(buf) })
}
func (t *directTransport) lock() func()                 { t.mu.Lock(); return t.mu.Unlock }
func (t *directTransport) set(f func(*directTransport)) { defer t.lock()(); f(t) }

// directRoom is a room without a subscription and n started clients on
// directTransports, their connected frames written.
func directRoom(t *testing.T, n int, cfg ...Config) (*room, []*client, []*directTransport) {
	t.Helper()
	c := Config{}
	if len(cfg) > 0 {
		c = cfg[0]
	}
	b := &Bridge{cfg: c.WithDefaults(), log: zap.NewNop(), counters: newCounters(), done: make(chan struct{})}
	var cancel context.CancelFunc
	b.doneCtx, cancel = context.WithCancel(context.Background())
	r := &room{b: b}
	clients := make([]*client, n)
	trs := make([]*directTransport, n)
	for i := range clients {
		clients[i] = newClient(b, socketOptions{}, "test", "test")
		trs[i] = &directTransport{}
		clients[i].start(trs[i], start{hello: []byte(`{}`)})
	}
	r.clients.Store(&clients)
	t.Cleanup(func() {
		for _, cl := range clients {
			cl.finish()
		}
		cancel()
	})
	for _, cl := range clients {
		idle(t, cl)
	}
	return r, clients, trs
}

// idle waits until cl's writer has gone.
func idle(t *testing.T, cl *client) {
	t.Helper()
	testnats.Eventually(t, 5*time.Second, func() error {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		if cl.running {
			return fmt.Errorf("the writer runs")
		}
		return nil
	})
}

// live hands r one live frame as onMsg does, with nothing more waiting
// in the subscription.
func (r *room) live(seq uint64) {
	r.fmu.Lock()
	r.fanoutQueued(&frame{buf: []byte(`{}`), seq: seq, typ: &typeStats{}})
	r.fmu.Unlock()
	r.pokeUnlessMore(&nats.Msg{})
}

// TestRoomWritesDirectly: with nothing more waiting in the subscription,
// the room writes each live frame to idle clients itself, before
// pokeUnlessMore returns, and no writer goroutine starts.
func TestRoomWritesDirectly(t *testing.T) {
	r, clients, trs := directRoom(t, 3)
	for seq := uint64(1); seq <= 3; seq++ {
		r.live(seq)
		for i, tr := range trs {
			tr.set(func(tr *directTransport) {
				if want := []uint64{1, 2, 3}[:seq]; !slices.Equal(tr.direct, want) || len(tr.blocking) > 0 {
					t.Fatalf("client %d after seq %d: direct %v, by the writer %v; want direct %v", i, seq, tr.direct, tr.blocking, want)
				}
			})
			clients[i].mu.Lock()
			running := clients[i].running
			clients[i].mu.Unlock()
			if running {
				t.Fatalf("client %d: a writer runs after a direct write", i)
			}
		}
	}
	if got := r.b.counters.delivered.Load(); got != 9 {
		t.Fatalf("delivered %d, want 9", got)
	}
}

// TestRoomDirectLeftovers: a direct write the socket did not take whole
// leaves the rest to the client's writer, which writes it before
// anything else; a client whose transport cannot write directly now
// (busy) gets its frames from its writer. Frames keep their order.
func TestRoomDirectLeftovers(t *testing.T) {
	r, clients, trs := directRoom(t, 2)
	trs[0].set(func(tr *directTransport) { tr.short = 1 })
	trs[1].set(func(tr *directTransport) { tr.busy = true })
	r.live(1)
	for _, cl := range clients {
		idle(t, cl)
	}
	trs[0].set(func(tr *directTransport) {
		if tr.owed || tr.owedEnds != 1 || !slices.Equal(tr.direct, []uint64{1}) {
			t.Fatalf("short client: owed %v, ends of what was owed %d, direct %v", tr.owed, tr.owedEnds, tr.direct)
		}
	})
	trs[1].set(func(tr *directTransport) {
		if len(tr.direct) > 0 || !slices.Equal(tr.blocking, []uint64{1}) {
			t.Fatalf("busy client: direct %v, by the writer %v", tr.direct, tr.blocking)
		}
		tr.busy = false
	})
	r.live(2)
	for i, tr := range trs {
		tr.set(func(tr *directTransport) {
			if !slices.Equal(tr.order, []uint64{1, 2}) || !slices.Contains(tr.direct, 2) {
				t.Fatalf("client %d: order %v, direct %v", i, tr.order, tr.direct)
			}
		})
	}
}

// TestRoomDirectWriteFails: when its direct write fails, the room hands
// the client to its writer's goroutine, which ends it (closing a
// WebSocket waits for its reader): the room never drops the connection
// itself.
func TestRoomDirectWriteFails(t *testing.T) {
	r, clients, trs := directRoom(t, 2)
	trs[0].set(func(tr *directTransport) { tr.fail = true })
	r.live(1)
	testnats.Eventually(t, 5*time.Second, func() error {
		clients[0].mu.Lock()
		defer clients[0].mu.Unlock()
		if !clients[0].ended || clients[0].running {
			return fmt.Errorf("ended %v, writer runs %v", clients[0].ended, clients[0].running)
		}
		return nil
	})
	trs[0].set(func(tr *directTransport) {
		if tr.dropped == "" || strings.Contains(tr.dropped, "pokeUnlessMore") || !strings.Contains(tr.dropped, ".write(") {
			t.Fatalf("dropped by:\n%s", tr.dropped)
		}
	})
	trs[1].set(func(tr *directTransport) {
		if !slices.Equal(tr.direct, []uint64{1}) || tr.dropped != "" {
			t.Fatalf("the other client: direct %v, dropped %q", tr.direct, tr.dropped)
		}
	})
}

// TestRoomDirectWriteBounded: a direct write takes about maxBatchBytes of
// queued frames, not the whole queue (what the socket does not take is
// copied, outside the queue's bounds); the writer writes the rest, in
// order.
func TestRoomDirectWriteBounded(t *testing.T) {
	r, clients, trs := directRoom(t, 1)
	const size, n = 20 << 10, 9
	sub := waitingSub(t)
	for seq := uint64(1); seq < n; seq++ {
		r.fmu.Lock()
		r.fanoutQueued(&frame{buf: make([]byte, size), seq: seq, typ: &typeStats{}})
		r.fmu.Unlock()
		r.pokeUnlessMore(&nats.Msg{Sub: sub})
	}
	r.fmu.Lock()
	r.fanoutQueued(&frame{buf: make([]byte, size), seq: n, typ: &typeStats{}})
	r.fmu.Unlock()
	r.pokeUnlessMore(&nats.Msg{}) // nothing more waits: a direct write
	idle(t, clients[0])
	trs[0].set(func(tr *directTransport) {
		if len(tr.direct) == 0 || len(tr.direct)*size > maxBatchBytes || !slices.Equal(tr.order, seqs(1, n)) {
			t.Fatalf("direct %v, by the writer %v, order %v", tr.direct, tr.blocking, tr.order)
		}
	})
}

// TestRoomDirectOwedCounted: frames of a direct write that left bytes
// owed count as delivered only once the writer's end wrote them.
func TestRoomDirectOwedCounted(t *testing.T) {
	r, clients, trs := directRoom(t, 1)
	gate := make(chan struct{})
	release := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(release) // before directRoom's, which waits for the writer
	trs[0].set(func(tr *directTransport) { tr.short, tr.gate = 1, gate })
	r.live(1)
	if got := r.b.counters.delivered.Load(); got != 0 {
		t.Fatalf("delivered %d before the owed bytes were written", got)
	}
	release()
	idle(t, clients[0])
	if got := r.b.counters.delivered.Load(); got != 1 {
		t.Fatalf("delivered %d once written, want 1", got)
	}
}

// waitingSub is a subscription with two messages pending: a live
// message handled with it as its Sub has more waiting behind it.
func waitingSub(t *testing.T) *nats.Subscription {
	t.Helper()
	br := testnats.Broker(t)
	nc := testnats.Conn(t, br.ClientURL())
	sub, err := nc.SubscribeSync("waiting")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := nc.Publish("waiting", nil); err != nil {
			t.Fatal(err)
		}
	}
	testnats.Eventually(t, 5*time.Second, func() error {
		if n, _, _ := sub.Pending(); n != 2 {
			return fmt.Errorf("%d messages pending", n)
		}
		return nil
	})
	return sub
}

// queue hands r live frames from..to as onMsg does, with more messages
// waiting in the subscription.
func (r *room) queue(sub *nats.Subscription, from, to uint64) {
	for seq := from; seq <= to; seq++ {
		r.fmu.Lock()
		r.fanoutQueued(&frame{buf: []byte(`{}`), seq: seq, typ: &typeStats{}})
		r.fmu.Unlock()
		r.pokeUnlessMore(&nats.Msg{Sub: sub})
	}
}

func seqs(from, to uint64) []uint64 {
	var s []uint64
	for seq := from; seq <= to; seq++ {
		s = append(s, seq)
	}
	return s
}

// TestRoomPokesWhenMoreWait: while more messages wait in the
// subscription, the room queues, and after maxUnpoked messages pokes the
// clients' writers, which write the frames in batches: nothing directly.
func TestRoomPokesWhenMoreWait(t *testing.T) {
	r, clients, trs := directRoom(t, 2)
	r.queue(waitingSub(t), 1, maxUnpoked)
	for _, cl := range clients {
		idle(t, cl)
	}
	for i, tr := range trs {
		tr.set(func(tr *directTransport) {
			if len(tr.direct) > 0 || !slices.Equal(tr.blocking, seqs(1, maxUnpoked)) {
				t.Fatalf("client %d: direct %v, by the writer %v", i, tr.direct, tr.blocking)
			}
		})
	}
}

// TestDeferredPokesNeverOverflow: a room that defers its pokes pokes a
// client whose queue nears its bound early enough that the client is
// never closed as slow for the deferral: here its writer runs only one
// frame after it was poked (it holds the writer's role, so a poke only
// marks work), and the room queues three times the bound, in frames or
// in bytes with frames larger than a quarter of it.
func TestDeferredPokesNeverOverflow(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		size int
	}{
		{"frames", Config{ClientQueue: 8}, 2},
		{"bytes", Config{ClientQueueBytes: 3000}, 1100},
		{"bytes small frames", Config{ClientQueueBytes: 3000}, 300},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, clients, _ := directRoom(t, 1, c.cfg)
			cl := clients[0]
			cl.mu.Lock()
			cl.running = true // the writer's role: pokes only mark work
			cl.mu.Unlock()
			defer func() {
				cl.mu.Lock()
				cl.running = false
				cl.mu.Unlock()
			}()
			sub := waitingSub(t)
			poked, writes := false, 0
			for seq := uint64(1); seq <= 3*max(uint64(c.cfg.ClientQueue), uint64(c.cfg.ClientQueueBytes)/uint64(c.size)); seq++ {
				r.fmu.Lock()
				r.fanoutQueued(&frame{buf: make([]byte, c.size), seq: seq, typ: &typeStats{}})
				r.fmu.Unlock()
				r.pokeUnlessMore(&nats.Msg{Sub: sub})
				if cl.kicked.Load() {
					t.Fatalf("closed as slow at seq %d", seq)
				}
				cl.mu.Lock()
				if poked { // the writer poked at the frame before runs now
					for cl.q.pop() != nil {
					}
					writes++
				}
				poked, cl.work = cl.work, false
				cl.mu.Unlock()
			}
			if writes == 0 {
				t.Fatal("never poked")
			}
		})
	}
}

// TestRoomDirectBudget: once a room has written to its clients itself
// for directBudget, it pokes the writers of the rest.
func TestRoomDirectBudget(t *testing.T) {
	old := directBudget
	directBudget = 0
	t.Cleanup(func() { directBudget = old })
	r, clients, trs := directRoom(t, directCheck+4)
	r.live(1)
	for _, cl := range clients {
		idle(t, cl)
	}
	for i, tr := range trs {
		tr.set(func(tr *directTransport) {
			byWriter := i >= directCheck
			if got := len(tr.blocking) == 1; got != byWriter || len(tr.direct)+len(tr.blocking) != 1 {
				t.Fatalf("client %d: direct %v, by the writer %v", i, tr.direct, tr.blocking)
			}
		})
	}
}
