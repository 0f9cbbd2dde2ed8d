package publisher

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The publisher's own asynchronous JetStream publishing.
//
// An async publish is a core NATS publish whose reply subject is
// "<inbox>.<token>": JetStream answers there with its ack, which one
// wildcard subscription receives and matches by token to the publish's
// [Future]. This is what nats.go's jetstream.PublishMsgAsync does too;
// it is done here because its bookkeeping cost more than the publisher's
// own work. A CPU profile of `arrwcdc bench --scenario publish --mode
// async` against a separate broker (client only) showed, of 2.09 s for
// 200 000 events: PublishMsgAsync 0.65 s, of which 0.44 s is the core
// publish every client pays (nats.go's header encoding, the write), the
// rest its future, a pubOpts per call for the stall wait, a reply string,
// and a time.AfterFunc timer per message because the Future needs an ack
// timeout; the ack handler 0.27 s, two thirds of it encoding/json on every
// PubAck; then the publisher's own futures map beside nats.go's own; about
// 12 of the 32 allocations an event. Here there is one map from token to
// Future, acks are parsed by hand (encoding/json only for error acks and
// shapes the parser does not know), and a single watcher goroutine fails
// the publishes whose ack is late, instead of a timer each.
//
// The behaviours kept from nats.go: at most maxPending publishes await
// their ack, and a publish beyond that waits up to the default timeout for
// a slot ([ErrTooManyPending], wrapping [jetstream.ErrTooManyStalledMsgs]);
// a "no responders" answer (no stream, or none yet: a leader election) is
// retried twice, 250 ms apart, before it fails with
// [jetstream.ErrNoStreamResponse]; an ack that does not come within the
// default timeout fails with [jetstream.ErrAsyncPublishTimeout] (checked
// every eighth of the timeout, so it fails up to an eighth late); an error
// ack fails with the server's *[jetstream.APIError]; a reconnect fails
// every publish then pending with [nats.ErrDisconnected] (its ack may have
// been lost with the connection), the connection's close with
// [nats.ErrConnectionClosed]; Close fails what is left with
// [jetstream.ErrJetStreamPublisherClosed] and removes the subscription.

const (
	// noResponderRetries and noResponderWait are nats.go's defaults for
	// a publish answered "no responders".
	noResponderRetries = 2
	noResponderWait    = 250 * time.Millisecond
)

// asyncAcks is the state of the async publishes, guarded by mu.
type asyncAcks struct {
	mu      sync.Mutex
	stopped bool // Close cleaned up: nothing may be registered any more
	prefix  string
	sub     *nats.Subscription // nil until the first async publish
	status  chan nats.Status
	pending map[uint64]*Future
	next    uint64        // the last token handed out
	stall   chan struct{} // closed when a slot frees up; nil when nobody waits
	kick    chan struct{} // wakes the watcher when pending becomes non-empty
	quit    chan struct{} // closed by Close: the watcher returns
	watcher sync.WaitGroup
}

// start subscribes to the reply subjects and starts the watcher, once.
// Called with a.mu held.
func (p *Publisher) startAsync() error {
	a := &p.async
	if a.sub != nil {
		return nil
	}
	prefix := p.nc.NewInbox() + "."
	sub, err := p.nc.Subscribe(prefix+"*", p.onReply)
	if err != nil {
		return err
	}
	a.prefix, a.sub = prefix, sub
	a.pending = make(map[uint64]*Future)
	a.kick = make(chan struct{}, 1)
	a.quit = make(chan struct{})
	a.status = p.nc.StatusChanged(nats.RECONNECTING, nats.CLOSED)
	a.watcher.Go(func() { p.watch(a.status, a.kick, a.quit) })
	return nil
}

// publishAsync registers f, waiting for a slot if maxPending publishes
// are pending, and sends it. An error is returned only when f was not
// resolved: if the ack or a failure got to f first, f carries the outcome.
func (p *Publisher) publishAsync(f *Future) error {
	if err := p.register(f); err != nil {
		return err
	}
	if err := p.send(f); err != nil {
		if p.take(f) {
			return err
		}
	}
	return nil
}

// register gives f a token and adds it to the pending publishes, after
// waiting up to the default timeout for a slot.
func (p *Publisher) register(f *Future) error {
	a := &p.async
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	a.mu.Lock()
	for {
		if a.stopped {
			a.mu.Unlock()
			return ErrClosed
		}
		if err := p.startAsync(); err != nil {
			a.mu.Unlock()
			return fmt.Errorf("async reply subscription: %w", err)
		}
		if len(a.pending) < p.maxPending {
			break
		}
		if a.stall == nil {
			a.stall = make(chan struct{})
		}
		stall := a.stall
		a.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(p.timeout)
		}
		select {
		case <-stall:
		case <-timer.C:
			return fmt.Errorf("%w: %w", ErrTooManyPending, jetstream.ErrTooManyStalledMsgs)
		}
		a.mu.Lock()
	}
	a.next++
	f.token = a.next
	f.deadline = time.Now().Add(p.timeout)
	if len(a.pending) == 0 {
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
	a.pending[f.token] = f
	a.mu.Unlock()
	return nil
}

// send publishes f's message with its reply subject.
func (p *Publisher) send(f *Future) error {
	var buf [64]byte
	reply := string(strconv.AppendUint(append(buf[:0], p.async.prefix...), f.token, 36))
	return p.publishMsg(&f.msg, reply)
}

// take removes f from the pending publishes and frees its slot. It
// reports whether f was still pending: whoever takes f resolves it.
func (p *Publisher) take(f *Future) bool {
	a := &p.async
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pending[f.token] != f {
		return false
	}
	p.remove(f)
	return true
}

// remove deletes f from pending and wakes a publish waiting for a slot.
// Called with a.mu held.
func (p *Publisher) remove(f *Future) {
	a := &p.async
	delete(a.pending, f.token)
	if f.retry != nil {
		f.retry.Stop()
		f.retry = nil
	}
	if a.stall != nil && len(a.pending) < p.maxPending {
		close(a.stall)
		a.stall = nil
	}
}

// onReply handles JetStream's answer to an async publish. It runs on the
// subscription's goroutine.
func (p *Publisher) onReply(m *nats.Msg) {
	a := &p.async
	if len(m.Subject) <= len(a.prefix) {
		return
	}
	token, err := strconv.ParseUint(m.Subject[len(a.prefix):], 36, 64)
	if err != nil {
		return
	}
	noResponders := len(m.Data) == 0 && m.Header.Get("Status") == "503"
	a.mu.Lock()
	f := a.pending[token]
	if f == nil || f.retry != nil { // resolved already, or a stale answer
		a.mu.Unlock()
		return
	}
	if noResponders && f.retries < noResponderRetries {
		f.retries++
		f.retry = time.AfterFunc(noResponderWait, func() { p.resend(f) })
		a.mu.Unlock()
		return
	}
	p.remove(f)
	a.mu.Unlock()
	if noResponders {
		p.fail(f, jetstream.ErrNoStreamResponse)
		return
	}
	seq, dup, err := parseAck(m.Data)
	if err != nil {
		p.fail(f, err)
		return
	}
	p.succeed(f, seq, dup)
}

// resend publishes f again after a "no responders" answer.
func (p *Publisher) resend(f *Future) {
	a := &p.async
	a.mu.Lock()
	if a.pending[f.token] != f || f.retry == nil {
		a.mu.Unlock()
		return
	}
	f.retry = nil
	f.deadline = time.Now().Add(p.timeout)
	a.mu.Unlock()
	if err := p.send(f); err != nil && p.take(f) {
		p.fail(f, err)
	}
}

// watch fails the publishes whose ack is overdue, every eighth of the
// timeout while any are pending, and all those pending when the
// connection reconnects or closes. It returns when quit is closed or the
// connection is closed.
func (p *Publisher) watch(status <-chan nats.Status, kick, quit <-chan struct{}) {
	interval := min(max(p.timeout/8, time.Millisecond), 100*time.Millisecond)
	tick := time.NewTimer(interval)
	tick.Stop()
	defer tick.Stop()
	armed := false
	for {
		select {
		case <-quit:
			return
		case s, ok := <-status:
			if !ok {
				status = nil
				continue
			}
			if s == nats.CLOSED {
				p.failAll(nats.ErrConnectionClosed)
				return
			}
			p.failAll(nats.ErrDisconnected)
		case <-kick:
			if !armed {
				tick.Reset(interval)
				armed = true
			}
		case now := <-tick.C:
			armed = p.expire(now) > 0
			if armed {
				tick.Reset(interval)
			}
		}
	}
}

// expire fails the pending publishes whose deadline passed (not those
// waiting to be sent again) and returns how many are left pending.
func (p *Publisher) expire(now time.Time) int {
	a := &p.async
	var late []*Future
	a.mu.Lock()
	for _, f := range a.pending {
		if f.retry == nil && now.After(f.deadline) {
			late = append(late, f)
		}
	}
	for _, f := range late {
		p.remove(f)
	}
	left := len(a.pending)
	a.mu.Unlock()
	for _, f := range late {
		p.fail(f, jetstream.ErrAsyncPublishTimeout)
	}
	return left
}

// failAll fails every pending publish with err.
func (p *Publisher) failAll(err error) {
	fs, _ := p.takeAll(false)
	for _, f := range fs {
		p.fail(f, err)
	}
}

// takeAll removes and returns every pending publish. With stop it also
// forbids new ones, and first reports whether this was the first stop
// after the subscription was made (whoever gets true tears it down).
func (p *Publisher) takeAll(stop bool) (fs []*Future, first bool) {
	a := &p.async
	a.mu.Lock()
	defer a.mu.Unlock()
	if stop {
		first = a.sub != nil && !a.stopped
		a.stopped = true
	}
	fs = make([]*Future, 0, len(a.pending))
	for _, f := range a.pending {
		fs = append(fs, f)
	}
	for _, f := range fs {
		p.remove(f) // wakes the publishes waiting for a slot, who see stopped
	}
	return fs, first
}

// pendingAsync is the number of async publishes awaiting their ack.
func (p *Publisher) pendingAsync() int {
	p.async.mu.Lock()
	defer p.async.mu.Unlock()
	return len(p.async.pending)
}

// closeAsync fails the publishes still pending with
// ErrJetStreamPublisherClosed, removes the reply subscription and stops
// the watcher.
func (p *Publisher) closeAsync() {
	fs, first := p.takeAll(true)
	if a := &p.async; first {
		_ = a.sub.Unsubscribe()
		p.nc.RemoveStatusListener(a.status)
		close(a.quit)
		a.watcher.Wait()
	}
	for _, f := range fs {
		p.fail(f, jetstream.ErrJetStreamPublisherClosed)
	}
}

// succeed resolves f with its ack. Counters first, so that Stats agrees
// with a resolved Future; release last, so that Close returns only after
// the Future resolved.
func (p *Publisher) succeed(f *Future, seq uint64, dup bool) {
	f.resolve(p.acked(f.msg.id, seq, dup), nil)
	p.release()
}

// fail resolves f with err.
func (p *Publisher) fail(f *Future, err error) {
	p.failed.Add(1)
	f.resolve(Ack{}, fmt.Errorf("publish %s: %w", f.msg.subject, err))
	p.release()
}

// parseAck reads JetStream's answer to a publish: the sequence and the
// duplicate flag, or the error it reports (a *jetstream.APIError), or
// jetstream.ErrInvalidJSAck.
func parseAck(data []byte) (seq uint64, dup bool, err error) {
	if seq, dup, ok := parsePubAck(data); ok {
		return seq, dup, nil
	}
	var resp struct {
		Error     *jetstream.APIError `json:"error"`
		Stream    string              `json:"stream"`
		Seq       uint64              `json:"seq"`
		Duplicate bool                `json:"duplicate"`
	}
	if err := json.Unmarshal(data, &resp); err != nil {
		return 0, false, jetstream.ErrInvalidJSAck
	}
	if resp.Error != nil {
		return 0, false, resp.Error
	}
	if resp.Stream == "" {
		return 0, false, jetstream.ErrInvalidJSAck
	}
	return resp.Seq, resp.Duplicate, nil
}

// parsePubAck reads a successful ack as nats-server writes it, such as
// {"stream":"EVENTS","seq":42} or, for a duplicate,
// {"stream":"EVENTS","seq":42,"duplicate": true} (with that space),
// members in any order, "domain" and "val" strings allowed, JSON
// whitespace allowed between tokens. ok is false for anything else,
// error acks included: parseAck then asks encoding/json.
func parsePubAck(b []byte) (seq uint64, dup, ok bool) {
	// ws returns the index of the first byte from i on that is not JSON
	// whitespace.
	ws := func(i int) int {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
			i++
		}
		return i
	}
	// str returns the index past the string starting at b[i], or -1 if
	// there is none or it holds an escape or a control character.
	str := func(i int) int {
		if i >= len(b) || b[i] != '"' {
			return -1
		}
		for j := i + 1; j < len(b); j++ {
			switch c := b[j]; {
			case c == '"':
				return j + 1
			case c == '\\' || c < 0x20:
				return -1
			}
		}
		return -1
	}
	i := ws(0)
	if i >= len(b) || b[i] != '{' {
		return 0, false, false
	}
	var stream, haveSeq bool
	for i++; ; {
		i = ws(i)
		end := str(i)
		if end < 0 {
			return 0, false, false
		}
		key := b[i+1 : end-1]
		if i = ws(end); i >= len(b) || b[i] != ':' {
			return 0, false, false
		}
		i = ws(i + 1)
		switch string(key) {
		case "stream", "domain", "val":
			end := str(i)
			if end < 0 {
				return 0, false, false
			}
			if string(key) == "stream" {
				stream = end-i > 2
			}
			i = end
		case "seq":
			start := i
			for i < len(b) && b[i] >= '0' && b[i] <= '9' {
				i++
			}
			if i == start || b[start] == '0' && i-start > 1 { // none, or a leading zero
				return 0, false, false
			}
			n, err := strconv.ParseUint(string(b[start:i]), 10, 64) // refuses an overflow
			if err != nil {
				return 0, false, false
			}
			seq, haveSeq = n, true
		case "duplicate":
			switch {
			case bytes.HasPrefix(b[i:], []byte("true")):
				dup, i = true, i+4
			case bytes.HasPrefix(b[i:], []byte("false")):
				dup, i = false, i+5
			default:
				return 0, false, false
			}
		default:
			return 0, false, false
		}
		switch i = ws(i); {
		case i < len(b) && b[i] == ',':
			i++
		case i < len(b) && b[i] == '}' && ws(i+1) == len(b):
			return seq, dup, stream && haveSeq
		default:
			return 0, false, false
		}
	}
}
