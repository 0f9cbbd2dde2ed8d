package bridge

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
)

// errClosing is answered (503) to sockets opened during shutdown.
var errClosing = errors.New("bridge: shutting down")

// room is one interest-based live subscription and the clients it feeds.
// Rooms are keyed by their live subject; sockets with the same subject
// share one.
type room struct {
	b   *Bridge
	key string // live subject: "live.events.library.<id>.>"

	// Guarded by Bridge.mu.
	refs int

	ready chan struct{} // closed once sub and err are set
	sub   *nats.Subscription
	err   error

	mu      sync.Mutex                // serialises writers of clients
	clients atomic.Pointer[[]*client] // read without a lock by onMsg
}

// join adds cl to the room of live subject key, subscribing first if cl is
// its first client. After join returns, every live message of key that the
// server receives reaches cl's queue.
func (b *Bridge) join(key string, cl *client) (*room, error) {
	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
		return nil, errClosing
	}
	r := b.rooms[key]
	create := r == nil
	if create {
		r = &room{b: b, key: key, ready: make(chan struct{})}
		r.clients.Store(new([]*client))
		b.rooms[key] = r
	}
	r.refs++
	b.mu.Unlock()

	if create {
		sub, err := b.nc.Subscribe(key, r.onMsg)
		if err == nil {
			// The server must hold the interest before the caller reads the
			// stream's last sequence.
			if err = b.nc.FlushTimeout(b.cfg.WriteTimeout); err != nil {
				_ = sub.Unsubscribe()
				sub = nil
			}
		}
		if err == nil {
			b.log.Debug("live subscription", zap.String("subject", key))
		}
		r.sub, r.err = sub, err
		close(r.ready)
	} else {
		<-r.ready
	}
	if r.err != nil {
		b.leave(r, nil)
		return nil, fmt.Errorf("subscribe %s: %w", key, r.err)
	}
	r.mu.Lock()
	old := *r.clients.Load()
	next := append(slices.Clip(old), cl)
	r.clients.Store(&next)
	r.mu.Unlock()
	return r, nil
}

// leave removes cl (if not nil) from r and drops one reference; the last
// reference unsubscribes.
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
	var sub *nats.Subscription
	if r.refs == 0 {
		if b.rooms[r.key] == r {
			delete(b.rooms, r.key)
		}
		sub = r.sub
	}
	b.mu.Unlock()
	if sub != nil {
		if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			b.log.Warn("unsubscribe", zap.String("subject", r.key), zap.Error(err))
		}
		b.log.Debug("live subscription closed", zap.String("subject", r.key))
	}
}

// onMsg is the room's subscription handler (nats.go calls it serially):
// parse once, encode once, offer the same frame to every client.
func (r *room) onMsg(m *nats.Msg) {
	f := r.b.frameOf(m)
	if f == nil {
		return
	}
	for _, cl := range *r.clients.Load() {
		cl.offer(f)
	}
}

// frameOf parses a live message into a shared frame, or returns nil if it
// is not a valid event (the statistics subscription counts those).
func (b *Bridge) frameOf(m *nats.Msg) *frame {
	ev, seq, err := parseLive(m, b.cfg.MaxEventSize)
	if err != nil {
		b.log.Debug("skipped live message", zap.String("subject", m.Subject), zap.Error(err))
		return nil
	}
	f := &frame{
		buf:    appendEventFrame(make([]byte, 0, frameSize(&ev)), &ev, seq),
		seq:    seq,
		tsUS:   ev.Timestamp.UnixMicro(),
		typ:    b.counters.typ(ev.Type),
		etype:  ev.Type,
		source: ev.Source,
	}
	return f
}

// typePattern is one entry of ?types=: entity and action, either "*".
type typePattern struct{ entity, action string }

// client is one WebSocket client: its filter and its bounded queue.
type client struct {
	b       *Bridge
	queue   chan *frame
	types   []typePattern                  // empty: every type
	exclude []string                       // sources to drop
	kicked  atomic.Bool                    // set once when the queue overflowed
	kick    chan struct{}                  // closed when kicked is set
	conn    atomic.Pointer[websocket.Conn] // set once upgraded
	addr    string                         // remote address, for logs
}

func newClient(b *Bridge, opts socketOptions, addr string) *client {
	return &client{
		b:       b,
		addr:    addr,
		queue:   make(chan *frame, b.cfg.ClientQueue),
		types:   opts.types,
		exclude: opts.exclude,
		kick:    make(chan struct{}),
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

// offer queues f without blocking; a full queue marks the client slow.
func (cl *client) offer(f *frame) {
	if cl.kicked.Load() || !cl.wants(f) {
		return
	}
	select {
	case cl.queue <- f:
	default:
		if cl.kicked.CompareAndSwap(false, true) {
			cl.b.counters.slow.Add(1)
			close(cl.kick)
		}
	}
}
