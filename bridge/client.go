package bridge

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// maxBatchFrames bounds the frames written in one round of a writer.
const maxBatchFrames = 64

// typePattern is one entry of ?types=: entity and action, either "*".
type typePattern struct{ entity, action string }

// client is one WebSocket or SSE client: its filters, its bounded queue
// and, while it catches up with the stream, its replay.
type client struct {
	b          *Bridge
	types      []typePattern // empty: every type
	exclude    []string      // sources to drop
	dropOldest bool          // on_slow=drop_oldest
	addr       string        // remote address, for logs
	kind       string        // "websocket" or "sse", for logs

	mu sync.Mutex
	q  frameRing // bounded by Config.ClientQueueBytes (and ClientQueue)
	// catching is set while the client replays from the stream: live
	// frames then wait in q for the hand-over, and when q is full the
	// oldest are let go silently (the replay reads them).
	catching    bool
	lostCatchup bool   // a frame was let go while catching
	gapFrom     uint64 // frames dropped under drop_oldest and not yet reported
	gapTo       uint64

	kicked   atomic.Bool   // set once when the queue overflowed
	kick     chan struct{} // closed when kicked is set
	wake     chan struct{} // a frame was queued
	closeNow atomic.Pointer[func()]
}

func newClient(b *Bridge, opts socketOptions, addr, kind string) *client {
	return &client{
		b:          b,
		addr:       addr,
		kind:       kind,
		types:      opts.types,
		exclude:    opts.exclude,
		dropOldest: opts.dropOldest,
		catching:   opts.since != nil,
		kick:       make(chan struct{}),
		wake:       make(chan struct{}, 1),
	}
}

// wants reports whether the client's filters select f.
func (cl *client) wants(f *frame) bool {
	for _, s := range cl.exclude {
		if s == f.source {
			return false
		}
	}
	if len(cl.types) == 0 {
		return true
	}
	entity, action, _ := strings.Cut(f.etype, ".")
	for _, t := range cl.types {
		if (t.entity == "*" || t.entity == entity) && (t.action == "*" || t.action == action) {
			return true
		}
	}
	return false
}

// offer queues f without blocking. A full queue (in bytes, or frames if
// bounded so) drops the oldest frames until f fits while catching up
// (silently) or under drop_oldest (reported by a gap frame); otherwise it
// marks the client slow.
func (cl *client) offer(f *frame) {
	if cl.kicked.Load() || !cl.wants(f) {
		return
	}
	maxFrames, maxBytes := cl.b.cfg.ClientQueue, cl.b.cfg.ClientQueueBytes
	cl.mu.Lock()
	for !cl.q.fits(f, maxFrames, maxBytes) {
		switch {
		case cl.catching:
			cl.q.pop()
			cl.lostCatchup = true
		case cl.dropOldest:
			old := cl.q.pop()
			if cl.gapFrom == 0 {
				cl.gapFrom = old.seq
			}
			cl.gapTo = old.seq
			cl.b.counters.dropped.Add(1)
		default:
			cl.mu.Unlock()
			if cl.kicked.CompareAndSwap(false, true) {
				cl.b.counters.slow.Add(1)
				close(cl.kick)
			}
			return
		}
	}
	cl.q.push(f, maxFrames)
	signal := !cl.catching
	cl.mu.Unlock()
	if signal {
		cl.signal()
	}
}

// trim lets the storage of an empty queue go (an idle client).
func (cl *client) trim() {
	cl.mu.Lock()
	cl.q.trim()
	cl.mu.Unlock()
}

func (cl *client) signal() {
	select {
	case cl.wake <- struct{}{}:
	default:
	}
}

// state is the number of frames queued, and whether the client is
// catching up.
func (cl *client) state() (queued int, catching bool) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.q.len(), cl.catching
}

// stopCatchingIfWhole ends the catch-up at once if no live frame was let
// go meanwhile (a client resuming from where live delivery starts anyway).
func (cl *client) stopCatchingIfWhole() bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.lostCatchup {
		return false
	}
	cl.catching = false
	return true
}

// take removes up to n frames for the writer, and the pending gap.
func (cl *client) take(batch []*frame, n int) (out []*frame, gapFrom, gapTo uint64, more bool) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	gapFrom, gapTo = cl.gapFrom, cl.gapTo
	cl.gapFrom, cl.gapTo = 0, 0
	for len(batch) < n {
		f := cl.q.pop()
		if f == nil {
			break
		}
		batch = append(batch, f)
	}
	return batch, gapFrom, gapTo, cl.q.len() > 0
}

// Kinds of frames for a transport.
type frameKind uint8

const (
	kindEvent     frameKind = iota // an event frame, with its seq
	kindConnected                  // the first frame
	kindGap                        // a gap frame
)

// transport is how a client's writer reaches its peer: a WebSocket or an
// SSE response.
type transport interface {
	// send writes one frame (or collects it until end).
	send(kind frameKind, seq uint64, buf []byte) error
	// begin starts a batch of sends; end writes it out.
	begin()
	end() error
	// keepAlive pings (WebSocket) or writes a comment (SSE).
	keepAlive() error
	// closeSlow ends the connection of an overflowed client with reason.
	closeSlow(reason string)
	// goingAway ends the connection because the bridge shuts down.
	goingAway()
	// expired ends the connection because the client's token expired.
	expired()
	// gone is closed when the peer left or the connection failed.
	gone() <-chan struct{}
}

// start is where a client's stream begins.
type start struct {
	hello    []byte    // the connected frame
	lastSent uint64    // frames up to this seq are not sent
	replay   *readSpec // nil: live only
	// expired is a range of sequences no longer in the stream that a
	// resuming client asked for (from 0: none).
	expiredFrom, expiredTo uint64
	// expires is when the client's token expires (zero: never, auth off).
	expires time.Time
}

// writer is the state of a client's writer goroutine.
type writer struct {
	cl         *client
	t          transport
	lastSent   uint64
	batch      []*frame
	stopReplay func()
}

// run writes the connected frame, then replays (if asked) and hands over
// to live, then writes the queued frames, until the client leaves,
// overflows, stalls or the bridge shuts down. Frames with seq <= the last
// seq sent are dropped, so replay and live never send one event twice.
func (cl *client) run(t transport, st start) {
	b := cl.b
	batch := maxBatchFrames
	if b.cfg.ClientQueue > 0 {
		batch = min(batch, b.cfg.ClientQueue)
	}
	w := &writer{cl: cl, t: t, lastSent: st.lastSent, batch: make([]*frame, 0, batch)}
	t.begin()
	err := t.send(kindConnected, 0, st.hello)
	if err == nil && st.expiredFrom > 0 {
		err = t.send(kindGap, 0, gapFrame(st.expiredFrom, st.expiredTo, "expired"))
	}
	if err := joinErr(err, t.end()); err != nil {
		return
	}
	var items <-chan storedItem
	if st.replay != nil {
		rp := b.startReplay(*st.replay)
		defer rp.stop()
		items = rp.items
		b.log.Debug("client replays", zap.String("client", cl.kind), zap.String("remote_addr", cl.addr),
			zap.Strings("filters", st.replay.filters), zap.Uint64("from_seq", st.replay.startSeq), zap.Time("from_time", st.replay.startTime))
		w.stopReplay = rp.cancel
	}
	ping := time.NewTicker(b.cfg.PingInterval)
	defer ping.Stop()
	var expired <-chan time.Time
	if !st.expires.IsZero() {
		tm := time.NewTimer(time.Until(st.expires))
		defer tm.Stop()
		expired = tm.C
	}
	for {
		select {
		case <-cl.wake:
			if !w.flushQueue() {
				return
			}
		case it := <-items:
			live, ok := w.replay(it, items)
			if !ok {
				return
			}
			if live {
				items = nil
				w.stopReplay() // the deferred stop waits for it
				cl.signal()
				b.log.Debug("client caught up", zap.String("client", cl.kind), zap.String("remote_addr", cl.addr), zap.Uint64("last_seq", w.lastSent))
			}
		case <-cl.kick:
		case <-ping.C:
			cl.trim()
			if t.keepAlive() != nil {
				select {
				case <-b.done: // the ping gave up for the shutdown
					t.goingAway()
				default:
				}
				return
			}
		case <-t.gone():
			return
		case <-expired:
			b.log.Debug("token expired", zap.String("client", cl.kind), zap.String("remote_addr", cl.addr))
			t.expired()
			return
		case <-b.done:
			t.goingAway()
			return
		}
		if cl.kicked.Load() {
			cl.closeSlow(t, w.lastSent)
			return
		}
	}
}

// flushQueue writes one batch of queued frames (and a pending gap frame
// first); it reports false when the client is finished.
func (w *writer) flushQueue() bool {
	cl := w.cl
	frames, gapFrom, gapTo, more := cl.take(w.batch[:0], cap(w.batch))
	if gapTo > w.lastSent { // dropped frames at or below lastSent were duplicates
		gapFrom = max(gapFrom, w.lastSent+1)
	} else {
		gapFrom = 0
	}
	if len(frames) == 0 && gapFrom == 0 {
		return true
	}
	w.t.begin()
	var err error
	if gapFrom > 0 {
		err = w.t.send(kindGap, 0, gapFrame(gapFrom, gapTo, "slow"))
	}
	sent := frames[:0]
	for _, f := range frames {
		if err != nil || cl.kicked.Load() {
			break // the close reason names the last seq actually sent
		}
		if f.seq > w.lastSent {
			if err = w.t.send(kindEvent, f.seq, f.buf); err == nil {
				w.lastSent = f.seq
				sent = append(sent, f)
			}
		}
	}
	err = joinErr(err, w.t.end())
	w.count(sent)
	clear(frames)
	if err != nil {
		return false
	}
	if more {
		cl.signal()
	}
	return true
}

// replay writes it and the events already read after it (one batch),
// until the hand-over to live; live reports that it happened.
func (w *writer) replay(it storedItem, items <-chan storedItem) (live, ok bool) {
	cl := w.cl
	sent := w.batch[:0]
	w.t.begin()
	var err error
	for {
		var write bool
		live, write = cl.handOver(it)
		if f := it.frame; write && f != nil && f.seq > w.lastSent && cl.wants(f) {
			if err = w.t.send(kindEvent, f.seq, f.buf); err != nil {
				break
			}
			w.lastSent = f.seq
			sent = append(sent, f)
		}
		if live || len(sent) >= cap(w.batch) {
			break
		}
		var more bool
		select {
		case it = <-items:
			more = true
		default:
		}
		if !more {
			break
		}
	}
	err = joinErr(err, w.t.end())
	w.count(sent)
	clear(sent)
	return live, err == nil
}

// handOver decides, for an event the replay read, whether the client
// goes live now, and whether that event is still to be written:
//
//   - Live frames are queued and the replay reached the first of them:
//     live, and the event is not written (the queue has it, or it comes
//     live after the queued ones). The queue is a gap-free run of live
//     frames from its first (the oldest are let go, never a middle one),
//     and the replay read everything before it.
//   - Nothing is queued and the server had nothing after this event when
//     it sent it (pending 0): live, after writing it. The replay's
//     consumer was created after the client joined its room, so whatever
//     is stored later comes live.
//   - Otherwise the replay goes on, and the event is written.
func (cl *client) handOver(it storedItem) (live, write bool) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if f := cl.q.first(); f != nil && it.seq >= f.seq {
		cl.catching = false
		return true, false
	}
	if it.pending == 0 && cl.q.len() == 0 {
		cl.catching = false
		return true, true
	}
	return false, true
}

// count counts written frames as delivered.
func (w *writer) count(sent []*frame) {
	if len(sent) == 0 {
		return
	}
	now := time.Now()
	for _, f := range sent {
		w.cl.b.counters.countDelivered(f, now)
	}
}

// closeSlow closes an overflowed client.
func (cl *client) closeSlow(t transport, lastSent uint64) {
	reason := fmt.Sprintf("slow consumer: resume with since_seq=%d", lastSent)
	cl.b.log.Info("closed slow consumer", zap.String("client", cl.kind), zap.String("remote_addr", cl.addr),
		zap.Int64("queue_bytes", cl.b.cfg.ClientQueueBytes), zap.Int("queue_frames", cl.b.cfg.ClientQueue), zap.Uint64("last_seq", lastSent))
	t.closeSlow(reason)
}

func joinErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
