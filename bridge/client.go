package bridge

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// maxBatchFrames bounds the frames written in one round of a writer.
const maxBatchFrames = 64

// maxBatch is how many frames one write of a client takes at most:
// maxBatchFrames, or fewer with a smaller frame bound on the queue.
func (b *Bridge) maxBatch() int {
	if q := b.cfg.ClientQueue; q > 0 {
		return min(maxBatchFrames, q)
	}
	return maxBatchFrames
}

// typePattern is one entry of ?types=: entity and action, either "*".
type typePattern struct{ entity, action string }

// client is one WebSocket or SSE client: its filters, its bounded queue
// and, while it catches up with the stream, its replay.
//
// Its writer is a goroutine that runs only while there is something to
// do: a frame queued, a keep-alive or the token's expiry due (the timer),
// the client overflowed, the bridge shutting down, or a replay going on.
// It exits when that is done, so an idle client holds no writer
// goroutine; poke starts it again. The goroutine that owns the connection
// (the WebSocket's reader, or the SSE handler) calls start, waits for the
// peer to go (or for over), then calls finish.
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
	// The writer's run state (mu).
	w       *writer // set by start; nil: not started, pokes are ignored
	work    bool    // poked since the writer last looked
	running bool    // a writer goroutine runs
	ended   bool    // finish was called: no writer starts any more

	// wake is a poke for a writer waiting on its replay; made (mu) when
	// the replay starts.
	wake chan struct{}
	// over, if set (before start), is closed when the writer ended the
	// client: an SSE handler waits on it.
	over chan struct{}

	kicked   atomic.Bool // set once when the queue overflowed
	due      atomic.Bool // the timer fired: a keep-alive or the expiry is due
	writers  sync.WaitGroup
	timer    *time.Timer // keep-alive and token expiry
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

// offer queues f without blocking, and pokes the writer if poke is set
// (otherwise the caller does, with pokeIfQueued or writeNow) or if the
// queue nears its bound (nearFull): a room that defers its pokes never
// makes a client overflow for it. A full queue (in bytes,
// or frames if bounded so) drops the oldest frames until f fits while
// catching up (silently) or under drop_oldest (reported by a gap frame);
// otherwise it marks the client slow, and pokes the writer to close it.
func (cl *client) offer(f *frame, poke bool) {
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
			kick := cl.kicked.CompareAndSwap(false, true)
			var spawn bool
			if kick {
				cl.b.counters.slow.Add(1)
				spawn = cl.pokeLocked()
			}
			cl.mu.Unlock()
			cl.started(spawn)
			return
		}
	}
	cl.q.push(f, maxFrames)
	var spawn bool
	if (poke || cl.q.nearFull(f, maxFrames, maxBytes)) && !cl.catching {
		spawn = cl.pokeLocked()
	}
	cl.mu.Unlock()
	cl.started(spawn)
}

// pokeIfQueued pokes the writer if frames wait for it (and the client is
// not catching up, when the replay's hand-over wakes it).
func (cl *client) pokeIfQueued() {
	cl.mu.Lock()
	cl.pokeIfQueuedLocked()
}

// pokeIfQueuedLocked is pokeIfQueued with mu held; it unlocks mu.
func (cl *client) pokeIfQueuedLocked() {
	var spawn bool
	if cl.q.len() > 0 && !cl.catching {
		spawn = cl.pokeLocked()
	}
	cl.mu.Unlock()
	cl.started(spawn)
}

// trim lets the storage of an empty queue go (an idle client).
func (cl *client) trim() {
	cl.mu.Lock()
	cl.q.trim()
	cl.mu.Unlock()
}

// poke makes the writer look at the client: it starts the writer's
// goroutine unless one runs (which then looks again before it exits).
func (cl *client) poke() {
	cl.mu.Lock()
	spawn := cl.pokeLocked()
	cl.mu.Unlock()
	cl.started(spawn)
}

// pokeLocked is poke with mu held; it reports whether the caller is to
// start the writer's goroutine (with started, after unlocking).
func (cl *client) pokeLocked() (spawn bool) {
	if cl.w == nil || cl.ended {
		return false
	}
	cl.work = true
	if cl.running {
		cl.wakeLocked()
		return false
	}
	cl.running = true
	cl.writers.Add(1)
	return true
}

// wakeLocked wakes a writer waiting on its replay (mu held).
func (cl *client) wakeLocked() {
	select {
	case cl.wake <- struct{}{}: // nil (no replay): never
	default:
	}
}

// started starts the writer's goroutine if spawn.
func (cl *client) started(spawn bool) {
	if spawn {
		go cl.write()
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

// take removes up to n frames for the writer, and the pending gap; with
// maxBytes > 0, it takes no more frames than fit in maxBytes (at least
// one), and leaves the rest queued, where they are counted.
func (cl *client) take(batch []*frame, n int, maxBytes int) (out []*frame, gapFrom, gapTo uint64, more bool) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	gapFrom, gapTo = cl.gapFrom, cl.gapTo
	cl.gapFrom, cl.gapTo = 0, 0
	taken := 0
	for len(batch) < n {
		f := cl.q.first()
		if f == nil || (maxBytes > 0 && len(batch) > 0 && taken+len(f.buf) > maxBytes) {
			break
		}
		cl.q.pop()
		taken += len(f.buf)
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
	// begin starts a batch of sends; end writes it out (after anything
	// a tryEnd left).
	begin()
	end() error
	// tryBegin starts a batch that tryEnd writes with one attempt that
	// never blocks, if the transport can now (false: the writer writes).
	// done is false if bytes were left: the next end writes them.
	tryBegin() bool
	tryEnd() (done bool, err error)
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
	// drop ends the connection after the writer ended the client, if
	// the calls above did not (a failed write).
	drop()
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

// writer is the state of a client's writer, kept between its runs.
type writer struct {
	cl       *client
	t        transport
	st       *start // until the first run has written the connected frame
	lastSent uint64
	expires  time.Time // the token's expiry (zero: never)
	nextPing time.Time
	rp       *replayer // the replay, until finish waits for it
	items    <-chan storedItem
	owes     bool // a direct write left bytes for end to write
	failed   bool // a direct write failed: the writer ends the client
	// owedFrames are the frames of a direct write that left bytes owed:
	// counted delivered once end wrote them.
	owedFrames []*frame
}

// errNoDirect: the transport writes from its client's writer only.
var errNoDirect = errors.New("bridge: no direct write on this transport")

// framesPool recycles the writers' batches of frames: a writer holds one
// only while it runs.
var framesPool = sync.Pool{New: func() any { s := make([]*frame, 0, maxBatchFrames); return &s }}

// start begins writing to t: the connected frame, then the replay (if
// asked) and the hand-over to live, then the queued frames, until the
// client overflows, stalls, its token expires or the bridge shuts down;
// frames with seq <= the last seq sent are dropped, so replay and live
// never send one event twice. start returns at once: the writer runs on
// its own goroutine when there is work. The caller calls finish when the
// peer has gone or over is closed. The bridge's Shutdown pokes every
// client it has (addClient), after closing b.done.
func (cl *client) start(t transport, st start) {
	b := cl.b
	now := time.Now()
	w := &writer{cl: cl, t: t, st: &st, lastSent: st.lastSent, expires: st.expires, nextPing: now.Add(b.cfg.PingInterval)}
	cl.timer = time.AfterFunc(w.nextTimer(now), cl.onTimer)
	cl.mu.Lock()
	cl.w = w
	spawn := cl.pokeLocked()
	cl.mu.Unlock()
	cl.started(spawn)
}

// onTimer runs when a keep-alive or the token's expiry is due.
func (cl *client) onTimer() {
	cl.due.Store(true)
	cl.poke()
}

// nextTimer is the time from now to the next keep-alive or the expiry.
func (w *writer) nextTimer(now time.Time) time.Duration {
	next := w.nextPing
	if !w.expires.IsZero() && w.expires.Before(next) {
		next = w.expires
	}
	return next.Sub(now)
}

// finish ends the client after its connection ended (or the writer ended
// it): no writer starts any more, a running one is stopped and waited
// for, and so is the replay.
func (cl *client) finish() {
	cl.mu.Lock()
	cl.ended = true
	w := cl.w
	cl.wakeLocked()
	cl.mu.Unlock()
	if w == nil {
		return
	}
	cl.writers.Wait()
	cl.timer.Stop()
	if w.rp != nil {
		w.rp.stop()
	}
}

// write is the writer's goroutine: it works while poked (or replaying),
// and exits when idle or when the client is over.
func (cl *client) write() {
	defer cl.writers.Done()
	w := cl.w
	yielded := false
	for {
		cl.mu.Lock()
		if !cl.ended && !cl.work && w.items == nil && !cl.catching && cl.q.len() > 0 {
			cl.work = true // queued while this writer ran, its poke deferred (room.pokeUnlessMore)
		}
		if !cl.ended && !cl.work && w.items == nil && !yielded {
			// Nothing to do: give the fan-out one turn before leaving.
			// Under load the next frames are often queued by then, and
			// this writer sends them together instead of a new writer
			// starting for each; when idle it costs one yield.
			yielded = true
			cl.mu.Unlock()
			runtime.Gosched()
			continue
		}
		if cl.ended || (!cl.work && w.items == nil) {
			cl.running = false
			cl.mu.Unlock()
			return
		}
		yielded = false
		cl.work = false
		cl.mu.Unlock()
		if !w.step() {
			cl.end()
			return
		}
	}
}

// end ends the client from its writer, which gives up the writer's role:
// the connection is dropped, and no writer starts any more.
func (cl *client) end() {
	cl.w.t.drop()
	cl.mu.Lock()
	cl.ended = true
	cl.running = false
	cl.mu.Unlock()
	if cl.over != nil {
		close(cl.over)
	}
}

// writeNow is how a room hands over a live frame when nothing more waits
// in its subscription, so that there is nothing to batch (see
// room.pokeUnlessMore): if the client's writer is idle and the transport
// can write without blocking (tryBegin), the room's goroutine takes the
// writer's role and writes the queued frames itself, with one attempt
// (tryEnd); whatever it leaves (the socket was full, more frames came)
// goes to the writer's goroutine, started then. Otherwise it pokes the
// writer, as pokeIfQueued. It never blocks on the client.
//
// This spares a goroutine start, its scheduling and its exit for each
// frame, and keeps the fan-out of a live event on one goroutine, in
// order, instead of making a writer goroutine runnable for every client
// at once: those fill every P's run queue, and the scheduler polls the
// network (the NATS connections, other clients' reads) only once they
// are all done.
func (cl *client) writeNow() {
	cl.mu.Lock()
	w := cl.w
	if w == nil || cl.ended || cl.running || cl.catching || cl.q.len() == 0 ||
		w.st != nil || w.items != nil || w.owes || cl.kicked.Load() || cl.due.Load() {
		cl.pokeIfQueuedLocked()
		return
	}
	cl.running = true // the writer's role, as pokeLocked gives it
	cl.writers.Add(1)
	cl.work = false
	cl.mu.Unlock()
	done, ok := w.flushNow()
	cl.mu.Lock()
	if ok && done && !cl.work && !cl.ended && cl.q.len() == 0 {
		cl.running = false
		cl.mu.Unlock()
		cl.writers.Done()
		return
	}
	// The writer's goroutine takes over the role; if the write failed,
	// it ends the client (w.failed), so that the room never waits for
	// the connection to close.
	cl.work = true
	cl.mu.Unlock()
	go cl.write()
}

// step does what the client needs now; false: the client is over.
func (w *writer) step() bool {
	cl, t, b := w.cl, w.t, w.cl.b
	if w.failed || (w.st != nil && !w.hello()) {
		return false
	}
	select {
	case <-t.gone():
		return false
	case <-b.done:
		t.goingAway()
		return false
	default:
	}
	if cl.kicked.Load() {
		cl.closeSlow(t, w.lastSent)
		return false
	}
	if cl.due.Swap(false) && !w.tick() {
		return false
	}
	if w.items != nil {
		return w.replayItems()
	}
	return w.flushQueue()
}

// hello writes the connected frame (and a gap frame for an expired part
// of the requested resume), and starts the replay if asked.
func (w *writer) hello() bool {
	st, t, cl := w.st, w.t, w.cl
	w.st = nil
	t.begin()
	err := t.send(kindConnected, 0, st.hello)
	if err == nil && st.expiredFrom > 0 {
		err = t.send(kindGap, 0, gapFrame(st.expiredFrom, st.expiredTo, "expired"))
	}
	if err := joinErr(err, t.end()); err != nil {
		return false
	}
	if st.replay != nil {
		cl.mu.Lock()
		cl.wake = make(chan struct{}, 1)
		// finish may have run since this writer last looked: its wake-up
		// found no channel to send on, and the replay's wait for items
		// would not see it.
		ended := cl.ended
		cl.mu.Unlock()
		if ended {
			return false
		}
		w.rp = cl.b.startReplay(*st.replay)
		w.items = w.rp.items
		cl.b.log.Debug("client replays", zap.String("client", cl.kind), zap.String("remote_addr", cl.addr),
			zap.Strings("filters", st.replay.filters), zap.Uint64("from_seq", st.replay.startSeq), zap.Time("from_time", st.replay.startTime))
	}
	return true
}

// tick expires the client or pings it, whichever is due, and sets the
// timer for the next.
func (w *writer) tick() bool {
	cl, t, b := w.cl, w.t, w.cl.b
	now := time.Now()
	if !w.expires.IsZero() && !now.Before(w.expires) {
		b.log.Debug("token expired", zap.String("client", cl.kind), zap.String("remote_addr", cl.addr))
		t.expired()
		return false
	}
	if !now.Before(w.nextPing) {
		cl.trim()
		if t.keepAlive() != nil {
			select {
			case <-b.done: // the ping gave up for the shutdown
				t.goingAway()
			default:
			}
			return false
		}
		now = time.Now()
		w.nextPing = now.Add(b.cfg.PingInterval)
	}
	cl.timer.Reset(w.nextTimer(now))
	return true
}

// replayItems writes what the replay read, until a poke (the caller looks
// at it and comes back) or the hand-over to live.
func (w *writer) replayItems() bool {
	cl := w.cl
	for {
		select {
		case it := <-w.items:
			live, ok := w.replay(it, w.items)
			if !ok {
				return false
			}
			if live {
				w.items = nil
				w.rp.cancel() // finish waits for it
				cl.poke()     // the queued frames
				cl.b.log.Debug("client caught up", zap.String("client", cl.kind), zap.String("remote_addr", cl.addr), zap.Uint64("last_seq", w.lastSent))
				return true
			}
		case <-cl.wake: // made before w.items was set, by this goroutine
			return true
		case <-w.t.gone():
			return false
		}
	}
}

// flushQueue writes one batch of queued frames (and a pending gap frame
// first), and looks again if more are queued; it reports false when the
// client is finished.
func (w *writer) flushQueue() bool {
	cl := w.cl
	bp := framesPool.Get().(*[]*frame)
	defer framesPool.Put(bp)
	n := cl.b.maxBatch()
	frames, gapFrom, gapTo, more := cl.take((*bp)[:0], n, 0)
	defer func() { clear(frames); *bp = frames[:0] }()
	if len(frames) == 0 && gapTo <= w.lastSent && !w.owes {
		return true
	}
	w.t.begin()
	sent, err := w.sendFrames(frames, gapFrom, gapTo)
	err = joinErr(err, w.t.end())
	w.owes = false
	if err == nil {
		w.count(w.owedFrames)
	}
	clear(w.owedFrames)
	w.owedFrames = w.owedFrames[:0]
	w.count(sent)
	if err != nil {
		return false
	}
	if more {
		cl.poke()
	}
	return true
}

// flushNow is flushQueue written with tryBegin and tryEnd, on a room's
// goroutine (writeNow): done is false if the writer is to go on (the
// transport could not write now, bytes were left, or more frames are
// queued); ok is false when the write failed: the writer's goroutine is
// to end the client (w.failed).
func (w *writer) flushNow() (done, ok bool) {
	cl := w.cl
	if !w.t.tryBegin() {
		return false, true
	}
	bp := framesPool.Get().(*[]*frame)
	defer framesPool.Put(bp)
	n := cl.b.maxBatch()
	// About maxBatchBytes at most, as a blocking batch writes at once:
	// what the socket does not take is copied to be owed, outside the
	// queue's bounds.
	frames, gapFrom, gapTo, more := cl.take((*bp)[:0], n, maxBatchBytes)
	defer func() { clear(frames); *bp = frames[:0] }()
	sent, err := w.sendFrames(frames, gapFrom, gapTo)
	done, terr := w.t.tryEnd()
	w.owes = !done
	if done {
		w.count(sent)
	} else {
		w.owedFrames = append(w.owedFrames, sent...) // counted when end wrote them
	}
	if joinErr(err, terr) != nil {
		w.failed = true
		return false, false
	}
	return done && !more, true
}

// sendFrames sends a pending gap frame (gapTo above the last seq sent)
// and then the frames with a seq above the last sent, until the client
// overflows (kicked); sent is the frames sent, a prefix of frames.
func (w *writer) sendFrames(frames []*frame, gapFrom, gapTo uint64) (sent []*frame, err error) {
	cl := w.cl
	if gapTo > w.lastSent { // dropped frames at or below lastSent were duplicates
		err = w.t.send(kindGap, 0, gapFrame(max(gapFrom, w.lastSent+1), gapTo, "slow"))
	}
	sent = frames[:0]
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
	return sent, err
}

// replay writes it and the events already read after it (one batch),
// until the hand-over to live; live reports that it happened.
func (w *writer) replay(it storedItem, items <-chan storedItem) (live, ok bool) {
	cl := w.cl
	bp := framesPool.Get().(*[]*frame)
	defer framesPool.Put(bp)
	sent := (*bp)[:0]
	defer func() { clear(sent); *bp = sent[:0] }()
	limit := cl.b.maxBatch()
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
		if live || len(sent) >= limit {
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
	w.cl.b.counters.countDelivered(sent, time.Now())
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
