package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/subjects"
)

// errClosing is answered (503) to sockets opened during shutdown.
var errClosing = errors.New("bridge: shutting down")

// heldFrames bounds the live frames a room holds back while it re-syncs.
// When more arrive, the oldest are let go: the re-sync reads them from the
// stream instead (see the package doc, "Healing").
const heldFrames = 4096

// Reasons of a re-sync, in logs.
const (
	resyncReconnect = "nats reconnect"
	resyncDropped   = "live messages dropped by the client library"
	resyncGap       = "gap in Nats-Last-Sequence"
	resyncLeader    = "stream leader elected"
)

// room is one interest-based live subscription and the clients it feeds.
// Rooms are keyed by their live subject; sockets with the same subject
// share one. Its output is every stored event its subject selects after
// the room was created, each once, in stream order: live messages as they
// come, and after a disturbance the events read back from the stream.
type room struct {
	b      *Bridge
	key    string // live subject: "live.events.library.<id>.>"
	filter string // the same pattern on the stream: "events.library.<id>.>"

	// Guarded by Bridge.mu.
	refs int

	ready chan struct{} // closed once sub and err are set
	sub   *nats.Subscription
	err   error

	mu      sync.Mutex                // serialises writers of clients
	clients atomic.Pointer[[]*client] // read without a lock by fanout

	// The feed; fmu also orders every fanout.
	fmu     sync.Mutex
	last    uint64    // highest seq fanned out (the stream's head when created)
	gen     uint64    // the connection's reconnect count last seen
	dropped int       // messages the subscription dropped, last seen
	sync    *resync   // the running re-sync, nil when live
	held    frameRing // while re-syncing: live frames held back
	runFrom uint64    // while re-syncing: live delivery is gap-free from this seq (0: nothing came live yet)
	heldTop uint64    // while re-syncing: the highest live seq seen
	closed  bool      // the last client left
	// unpoked counts the live messages fanned out to the clients' queues
	// since their writers were last poked (see onMsg).
	unpoked int
	wg      sync.WaitGroup
}

// maxUnpoked bounds how many live messages are queued for the clients
// before their writers are poked while more messages wait in the
// subscription: under load each writer then finds several frames to send
// in one write, instead of waking for every frame; at low rates nothing
// waits and each frame is poked at once.
const maxUnpoked = 32

// resync is one run of a room's re-sync.
type resync struct {
	cancel    context.CancelFunc
	from      uint64
	reason    string
	recovered uint64 // frames it fanned out itself
}

// join adds cl to the room of live subject key, subscribing first if cl is
// its first client. After join returns, every stored event of key after
// the stream's last sequence at that moment reaches cl's offer, once, in
// order.
func (b *Bridge) join(ctx context.Context, key string, cl *client) (*room, error) {
	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
		return nil, errClosing
	}
	r := b.rooms[key]
	create := r == nil
	if create {
		filter, _ := subjects.FromLive(key)
		r = &room{b: b, key: key, filter: filter, ready: make(chan struct{})}
		r.clients.Store(new([]*client))
		b.rooms[key] = r
	}
	r.refs++
	b.mu.Unlock()

	if create {
		r.sub, r.err = r.subscribe(ctx)
		close(r.ready)
	} else {
		<-r.ready
	}
	if r.err != nil {
		b.leave(r, nil)
		return nil, r.err
	}
	r.mu.Lock()
	old := *r.clients.Load()
	next := append(slices.Clip(old), cl)
	r.clients.Store(&next)
	r.mu.Unlock()
	return r, nil
}

// subscribe starts the room's feed at the stream's head, read once the
// subscription exists: what is stored later arrives live (or through a
// re-sync), what is stored before is not the room's. onMsg waits for the
// head meanwhile.
func (r *room) subscribe(ctx context.Context) (*nats.Subscription, error) {
	b := r.b
	r.fmu.Lock()
	defer r.fmu.Unlock()
	r.gen = b.reconnects() // a reconnect after this re-syncs
	sub, err := b.nc.Subscribe(r.key, r.onMsg)
	if err != nil {
		r.closed = true
		return nil, fmt.Errorf("subscribe %s: %w", r.key, err)
	}
	// The server must hold the interest before the head is read.
	err = b.nc.FlushTimeout(b.cfg.WriteTimeout)
	if err != nil {
		err = fmt.Errorf("subscribe %s: %w", r.key, err)
	} else if st, serr := b.streamInfo(ctx); serr != nil {
		err = fmt.Errorf("stream unavailable: %w", serr)
	} else {
		r.last = st.State.LastSeq
	}
	if err != nil {
		r.closed = true
		_ = sub.Unsubscribe()
		return nil, err
	}
	b.log.Debug("live subscription", zap.String("subject", r.key), zap.Uint64("from_seq", r.last+1))
	return sub, nil
}

// leave removes cl (if not nil) from r and drops one reference; the last
// reference unsubscribes and stops the room's re-sync.
func (b *Bridge) leave(r *room, cl *client) {
	if cl != nil {
		r.mu.Lock()
		old := *r.clients.Load()
		if i := slices.Index(old, cl); i >= 0 {
			next := make([]*client, 0, len(old)-1)
			next = append(append(next, old[:i]...), old[i+1:]...)
			r.clients.Store(&next)
		}
		r.mu.Unlock()
	}
	b.mu.Lock()
	r.refs--
	last := r.refs == 0
	if last && b.rooms[r.key] == r {
		delete(b.rooms, r.key)
	}
	b.mu.Unlock()
	if !last {
		return
	}
	if r.sub != nil {
		if err := r.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			b.log.Warn("unsubscribe", zap.String("subject", r.key), zap.Error(err))
		}
		b.log.Debug("live subscription closed", zap.String("subject", r.key))
	}
	r.fmu.Lock()
	r.closed = true
	if r.sync != nil {
		r.sync.cancel()
		r.sync = nil
	}
	r.resetHeldLocked()
	r.fmu.Unlock()
	r.wg.Wait()
}

// onMsg is the room's subscription handler (nats.go calls it serially):
// parse once, encode once, offer the same frame to every client, unless
// the message shows that live delivery missed something: then the room
// re-syncs from the stream and holds live frames back meanwhile.
func (r *room) onMsg(m *nats.Msg) {
	r.receive(m)
	r.pokeUnlessMore(m)
}

// pokeUnlessMore pokes the writers of the clients with frames queued
// (fanoutQueued) unless more messages wait in the subscription and fewer
// than maxUnpoked went unpoked: as nats-server flushes its clients once
// per read rather than per message.
//
// When it pokes because nothing more waits, there is nothing to batch:
// the room writes to the clients itself (client.writeNow), one after the
// other on this goroutine, never blocking; it goes back to poking their
// writers (which then batch, in parallel) for the rest as soon as more
// messages wait or it has written for directBudget, checked every
// directCheck clients: a room of many clients is not written one by one
// for long.
func (r *room) pokeUnlessMore(m *nats.Msg) {
	r.fmu.Lock()
	defer r.fmu.Unlock()
	if r.unpoked == 0 {
		return
	}
	direct := r.unpoked < maxUnpoked
	if direct && r.more(m) {
		return
	}
	r.unpoked = 0
	var t0 time.Time
	if direct {
		t0 = time.Now()
	}
	for i, cl := range *r.clients.Load() {
		if direct && i > 0 && i%directCheck == 0 && (r.more(m) || time.Since(t0) > directBudget) {
			direct = false
		}
		if direct {
			cl.writeNow()
		} else {
			cl.pokeIfQueued()
		}
	}
}

// directCheck is how many clients a room writes to itself between two
// looks at its subscription and the time (pokeUnlessMore).
const directCheck = 16

// directBudget bounds the time a room writes one live message to its
// clients itself (pokeUnlessMore): about 150 clients on loopback, where a
// write costs 5-7 µs. A variable for tests.
var directBudget = time.Millisecond

// more reports whether live messages wait in the subscription after m.
// nats.go counts the message being handled as pending until its callback
// returns: more are waiting only above one. (Were it to stop counting it,
// this would say "no" sooner, never later.)
func (r *room) more(m *nats.Msg) bool {
	if m.Sub == nil {
		return false
	}
	n, _, err := m.Sub.Pending()
	return err == nil && n > 1
}

// receive takes one live message: fanned out to the clients' queues (their
// writers poked later, by pokeUnlessMore), or held while re-syncing.
func (r *room) receive(m *nats.Msg) {
	b := r.b
	if h := b.liveHook.Load(); h != nil && !(*h)(m) {
		return // a test dropped it
	}
	seq, ok := liveSeq(m)
	if !ok {
		b.log.Debug("skipped live message without Nats-Sequence", zap.String("subject", m.Subject))
		return
	}
	prev := liveLastSeq(m)
	f := b.frameOf(m, seq) // nil if not a valid event; its seq still counts
	gen := b.reconnects()
	var dropped int
	if m.Sub != nil {
		dropped, _ = m.Sub.Dropped()
	}

	r.fmu.Lock()
	defer r.fmu.Unlock()
	if r.closed {
		return
	}
	// A reconnect or a drop by the client library happened before this
	// message was received: anything stored in between may be missing.
	reason := ""
	if gen != r.gen {
		r.gen, reason = gen, resyncReconnect
	} else if dropped != r.dropped {
		r.dropped, reason = dropped, resyncDropped
	}
	if r.sync == nil {
		if seq <= r.last {
			return // a re-sync read it first
		}
		if reason == "" && prev > r.last {
			reason = resyncGap // the previous event of this subject never came
		}
		if reason == "" {
			r.last = seq
			if f != nil {
				r.fanoutQueued(f)
			}
			return
		}
		r.startSyncLocked(reason)
	} else if reason != "" || prev > max(r.last, r.heldTop) {
		// Live delivery missed something after the frames held so far:
		// they are no longer a gap-free run. Start a new run with this
		// message; the re-sync reads up to it.
		r.resetHeldLocked()
	}
	r.holdLocked(seq, f)
}

// holdLocked keeps a live message back while re-syncing (f nil: not a
// valid event, only its seq counts).
func (r *room) holdLocked(seq uint64, f *frame) {
	if seq <= r.last || seq <= r.heldTop {
		return
	}
	r.heldTop = seq
	if r.runFrom == 0 {
		r.runFrom = seq
	}
	if f == nil {
		return
	}
	if r.held.full(heldFrames) {
		// Let the oldest go: the run is still gap-free from the next one,
		// and the re-sync reads the one let go.
		r.held.pop()
		r.runFrom = r.held.first().seq
	}
	r.held.push(f, heldFrames)
}

func (r *room) resetHeldLocked() {
	r.held.reset()
	r.runFrom = 0
	r.heldTop = 0
}

// fanout offers f to every client; fmu is held.
func (r *room) fanout(f *frame) {
	for _, cl := range *r.clients.Load() {
		cl.offer(f, true)
	}
}

// fanoutQueued is fanout without poking the writers: the caller pokes
// them (pokeUnlessMore), with fmu held.
func (r *room) fanoutQueued(f *frame) {
	for _, cl := range *r.clients.Load() {
		cl.offer(f, false)
	}
	r.unpoked++
}

// disturb starts a re-sync of r after an event seen outside its messages:
// a reconnect (only if r has not seen it yet) or a leader election.
func (r *room) disturb(reason string) {
	r.fmu.Lock()
	defer r.fmu.Unlock()
	if r.closed {
		return
	}
	if reason == resyncReconnect {
		gen := r.b.reconnects()
		if gen == r.gen {
			return
		}
		r.gen = gen
	}
	r.startSyncLocked(reason)
}

// startSyncLocked (re)starts the re-sync from the last seq fanned out.
// Live frames held by a previous run are let go: the new run reads them.
func (r *room) startSyncLocked(reason string) {
	if r.closed {
		return
	}
	if r.sync != nil {
		r.sync.cancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	rs := &resync{cancel: cancel, from: r.last + 1, reason: reason}
	r.sync = rs
	r.resetHeldLocked()
	r.b.counters.resyncs.Add(1)
	r.b.log.Info("re-syncing live delivery", zap.String("subject", r.filter), zap.String("reason", reason), zap.Uint64("from_seq", rs.from))
	spec := readSpec{filters: []string{r.filter}, startSeq: rs.from}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer cancel()
		r.b.readStream(ctx, spec, func(it storedItem) bool { return r.resyncStep(rs, it) })
	}()
}

// resyncStep takes one event the re-sync read; it returns false when the
// run is over (caught up, or replaced by a newer run).
func (r *room) resyncStep(rs *resync, it storedItem) bool {
	r.fmu.Lock()
	defer r.fmu.Unlock()
	if r.sync != rs {
		return false
	}
	if r.runFrom != 0 && it.seq >= r.runFrom {
		// The stream caught up with what came live, a gap-free run from
		// runFrom: release the held frames and go live.
		r.finishLocked()
		return false
	}
	if it.seq > r.last {
		r.last = it.seq
		if it.frame != nil {
			r.fanout(it.frame)
			rs.recovered++
			r.b.counters.resynced.Add(1)
		}
	}
	if it.pending == 0 && r.runFrom == 0 {
		// Nothing more in the stream when this was read, and nothing came
		// live since this run started: what is stored later comes live.
		r.finishLocked()
		return false
	}
	return true
}

// finishLocked releases the held frames and ends the re-sync.
func (r *room) finishLocked() {
	for f := r.held.pop(); f != nil; f = r.held.pop() {
		if f.seq > r.last {
			r.last = f.seq
			r.fanout(f)
		}
	}
	r.last = max(r.last, r.heldTop)
	r.resetHeldLocked()
	rs := r.sync
	r.sync = nil
	rs.cancel()
	r.b.log.Info("live delivery re-synced", zap.String("subject", r.filter), zap.String("reason", rs.reason),
		zap.Uint64("from_seq", rs.from), zap.Uint64("recovered", rs.recovered), zap.Uint64("last_seq", r.last))
}

// frameOf parses a live message with stream sequence seq into a shared
// frame, or returns nil if it is not a valid event (the statistics
// subscription counts those).
func (b *Bridge) frameOf(m *nats.Msg, seq uint64) *frame {
	ev, err := parseEvent(m.Subject, true, m.Data, m.Header, b.cfg.MaxEventSize)
	if err != nil {
		b.log.Debug("skipped live message", zap.String("subject", m.Subject), zap.Error(err))
		return nil
	}
	return b.newFrame(&ev, seq)
}

// reconnects is how many times the bridge's connection reconnected. It
// is incremented before the subscriptions are sent again, so a message
// received after a reconnect always sees the new count.
func (b *Bridge) reconnects() uint64 { return b.nc.Stats().Reconnects }

// disturbAll re-syncs every room (see room.disturb).
func (b *Bridge) disturbAll(reason string) {
	b.mu.Lock()
	rooms := make([]*room, 0, len(b.rooms))
	for _, r := range b.rooms {
		rooms = append(rooms, r)
	}
	b.mu.Unlock()
	for _, r := range rooms {
		select {
		case <-r.ready:
			if r.err == nil {
				r.disturb(reason)
			}
		default: // still subscribing: it reads the head after this
		}
	}
}

// minRing is the smallest storage of a frameRing.
const minRing = 16

// frameRing is a bounded FIFO of frames, allocated when first used, grown
// by doubling and let go when it empties after holding far fewer frames
// than it has room for (and by trim): an idle client holds no storage.
type frameRing struct {
	buf        []*frame
	head, size int
	bytes      int64 // the sum of len(buf) of the frames held
	peak       int   // the most frames held since the ring last emptied
}

func (q *frameRing) len() int            { return q.size }
func (q *frameRing) full(limit int) bool { return q.size >= limit }

// nearFull reports, after f was pushed, whether the ring holds at least
// half of maxFrames frames or of maxBytes bytes, or would not take two
// more frames of f's size (either bound <= 0: no such bound). Half full
// alone is not enough when frames are larger than a quarter of maxBytes:
// the next frame would then overflow before a writer poked now had run.
// (In frames, half full comes no later than that.)
func (q *frameRing) nearFull(f *frame, maxFrames int, maxBytes int64) bool {
	n := int64(len(f.buf))
	return (maxFrames > 0 && 2*q.size >= maxFrames) ||
		(maxBytes > 0 && (2*q.bytes >= maxBytes || q.bytes+2*n > maxBytes))
}

// fits reports whether f may be pushed with at most maxFrames frames and
// maxBytes bytes held (either <= 0: no such bound). An empty ring takes
// any frame, so one frame larger than maxBytes does not stall a client.
func (q *frameRing) fits(f *frame, maxFrames int, maxBytes int64) bool {
	if q.size == 0 {
		return true
	}
	return (maxFrames <= 0 || q.size < maxFrames) && (maxBytes <= 0 || q.bytes+int64(len(f.buf)) <= maxBytes)
}

// push appends f; the caller makes room first (the ring grows up to limit
// frames, <= 0: no limit).
func (q *frameRing) push(f *frame, limit int) {
	if q.size == len(q.buf) {
		n := max(2*len(q.buf), minRing)
		if limit > 0 {
			n = min(n, limit)
		}
		grown := make([]*frame, n)
		for i := range q.size {
			grown[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = grown, 0
	}
	q.buf[(q.head+q.size)%len(q.buf)] = f
	q.size++
	q.bytes += int64(len(f.buf))
	q.peak = max(q.peak, q.size)
}

// pop removes and returns the oldest frame, nil if empty.
func (q *frameRing) pop() *frame {
	if q.size == 0 {
		return nil
	}
	f := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) % len(q.buf)
	q.size--
	q.bytes -= int64(len(f.buf))
	if q.size == 0 {
		// Empty: let storage go that the last run used less than a
		// quarter of (a burst is over); the next push starts small.
		if len(q.buf) > minRing && q.peak <= len(q.buf)/4 {
			q.buf = nil
		}
		q.head, q.peak = 0, 0
	}
	return f
}

// first returns the oldest frame without removing it, nil if empty.
func (q *frameRing) first() *frame {
	if q.size == 0 {
		return nil
	}
	return q.buf[q.head]
}

// trim lets the storage of an empty ring go.
func (q *frameRing) trim() {
	if q.size == 0 {
		*q = frameRing{}
	}
}

// reset empties the ring and lets its storage go.
func (q *frameRing) reset() { *q = frameRing{} }
