package subscriber

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/event"
)

// flushTimeout bounds the round trip that confirms a subscription to the
// server, and the one that ends a drain, when the caller's ctx does not
// end sooner.
const flushTimeout = 10 * time.Second

// Handler handles one event. Its ctx carries the values of the ctx given
// to [Subscribe], the [HandlerTimeout] deadline if set, and is cancelled by
// [Subscription.Unsubscribe]. An error or a panic counts the event as
// failed and is logged; delivery goes on either way. The event's strings
// and Data may refer to the received message's payload (or to one buffer
// holding all of them): a handler that keeps one string for long, such
// as a map key, keeps a copy (strings.Clone) rather than the payload.
type Handler func(ctx context.Context, d Delivery) error

// Delivery is one valid event as a handler receives it.
type Delivery struct {
	// Event is the decoded, validated event. Its ID is the Nats-Msg-Id
	// header when the message had no "id".
	event.Event
	// Subject is the NATS subject the event arrived on.
	Subject string
	// Seq is the event's sequence in the stream: set on every event
	// delivered by [Consume] or [Replay]; 0 on core NATS subscriptions
	// ([Subscribe]), which do not know it.
	Seq uint64
	// Attempt counts the server's deliveries of this event to the
	// consumer, this one included: 1 the first time, more when [Consume]
	// delivers it again after a failure, an ack timeout or a restart. A
	// delivery lost in transit (one in flight while a subscription stops)
	// counts too, so Attempt may be higher than the handler calls. Always 1
	// with [Subscribe] and [Replay].
	Attempt int
	// Header holds the message's NATS headers (nil if it had none). It is
	// shared: read it, don't modify it.
	Header nats.Header
}

// Stats counts what a [Subscription] has seen, like the original event
// bus's get_statistics(). Counters only grow; every received message ends
// as Handled, Failed, Invalid, Filtered or Dropped, or is still Pending.
type Stats struct {
	// Received counts messages taken from NATS, valid or not.
	Received uint64
	// Handled counts handler calls that returned nil.
	Handled uint64
	// Failed counts handler calls that returned an error or panicked, and
	// events whose Filter.Match panicked.
	Failed uint64
	// Invalid counts messages that were not valid events for their subject
	// (never passed to the handler).
	Invalid uint64
	// Filtered counts valid events that Filter.Match rejected.
	Filtered uint64
	// Dropped counts messages lost: dropped by NATS because the pending
	// buffer was full (see [PendingLimit]; these were never Received), or
	// queued and discarded by [Subscription.Unsubscribe]. A [Consume]
	// subscription loses nothing: what it drops was not acknowledged, and
	// the server delivers it again.
	Dropped uint64
	// Retried counts failed events that a [Consume] subscription gave back
	// to the server to be delivered again after a backoff (a subset of
	// Failed).
	Retried uint64
	// DeadLettered counts events that a [Consume] subscription published
	// to the dead-letter stream: failed [MaxDeliver] times, or invalid with
	// [DeadLetterInvalid].
	DeadLettered uint64
	// Pending is how many messages wait in the buffer or a worker's queue
	// or are being handled right now.
	Pending int
}

// Subscription is a live subscription made by [Subscribe], [Consume] or
// [Replay]. Its methods are safe for concurrent use.
type Subscription struct {
	nc       *nats.Conn
	mode     mode
	opts     options
	log      *zap.Logger
	handler  Handler
	match    func(event.Event) bool
	patterns []string
	dedup    bool // patterns overlap outside a queue group: drop the copies

	subs       []*nats.Subscription       // core NATS; set before the supervisor starts, then fixed
	subDropped []atomic.Int64             // NATS drops of subs[i], saved before removal
	js         *jsSource                  // JetStream; set before the supervisor starts
	inbox      chan *nats.Msg             // core NATS: fed by NATS, never closed; nil for JetStream
	jsInbox    chan jetstream.Msg         // JetStream: fed by the consumer, never closed; nil for core NATS
	queues     []chan message             // one per worker, closed by the dispatcher
	inflight   []atomic.Pointer[inflight] // per worker: the JetStream message being handled
	laterMu    sync.Mutex
	later      []jetstream.Msg // durable: given back once the consumer stopped

	runCtx    context.Context // handler ctx parent: Subscribe's values, cancelled on stop
	cancelRun context.CancelFunc

	drainReq  chan struct{} // closed by Drain
	drainOnce sync.Once
	quit      chan struct{} // closed by stop: drop everything, exit now
	quitOnce  sync.Once
	inputDone chan struct{} // closed once NATS delivers no more
	done      chan struct{} // closed when every goroutine has exited
	workers   sync.WaitGroup
	err       error // of removing the NATS subscriptions; set before done closes

	received, handled, failed, invalid, filtered, dropped atomic.Uint64
	retried, deadLettered                                 atomic.Uint64
	pending                                               atomic.Int64
}

// Subscribe starts handling the events that filter selects on nc. It
// returns once the server has confirmed the NATS subscriptions, so events
// published after it returns are delivered.
//
// Errors: a bad filter wraps [ErrInvalidFilter] (and the subjects
// sentinel), a bad option [ErrInvalidOption]; a nil nc or handler, an
// ended ctx or a NATS failure (such as [nats.ErrConnectionClosed]) is
// returned as is or wrapped. On error nothing is left running.
//
// When ctx ends, the subscription drains as by [Subscription.Drain] without
// a deadline; [Subscription.Done] tells when it is over.
func Subscribe(ctx context.Context, nc *nats.Conn, filter Filter, handler Handler, opts ...Option) (*Subscription, error) {
	if nc == nil {
		return nil, errors.New("subscriber: nil *nats.Conn")
	}
	if handler == nil {
		return nil, errors.New("subscriber: nil Handler")
	}
	o := defaultOptions()
	if err := o.apply(modeCore, opts); err != nil {
		return nil, err
	}
	pats, err := filter.patterns(o.prefix)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("subscriber: %w", err)
	}

	s := start(ctx, nc, modeCore, o, pats, filter.Match, handler)
	fail := func(err error) (*Subscription, error) {
		s.stop()
		go s.supervise(ctx)
		<-s.done
		return nil, err
	}
	for _, p := range pats {
		// All patterns share one buffer, so the order in which the
		// connection reads messages is the order they are handled in.
		sub, err := nc.ChanQueueSubscribe(p, o.queue, s.inbox)
		if err != nil {
			return fail(fmt.Errorf("subscriber: subscribe %s: %w", p, err))
		}
		s.subs = append(s.subs, sub)
	}
	fctx, cancel := context.WithTimeout(ctx, flushTimeout)
	err = nc.FlushWithContext(fctx)
	cancel()
	if err != nil {
		return fail(fmt.Errorf("subscriber: confirm subscription: %w", err))
	}
	go s.supervise(ctx)
	s.log.Debug("subscribed", zap.Int("concurrency", o.concurrency))
	return s, nil
}

// start returns a subscription of mode m for pats with its dispatcher and
// workers running; the caller adds the NATS subscriptions on nc (core) or
// the consumer (JetStream), then starts supervise.
func start(ctx context.Context, nc *nats.Conn, m mode, o options, pats []string, match func(event.Event) bool, handler Handler) *Subscription {
	log := o.log.Named("subscriber").With(zap.Strings("subjects", pats))
	if o.queue != "" {
		log = log.With(zap.String("queue", o.queue))
	}
	s := &Subscription{
		nc:       nc,
		mode:     m,
		opts:     o,
		log:      log,
		handler:  handler,
		match:    match,
		patterns: pats,
		// In a queue group the server delivers each message to one
		// subscription of the group, whatever pattern matched: no copies.
		// A JetStream consumer delivers each stored message once.
		dedup:     m == modeCore && o.queue == "" && anyOverlap(pats),
		queues:    make([]chan message, o.concurrency),
		inflight:  make([]atomic.Pointer[inflight], o.concurrency),
		drainReq:  make(chan struct{}),
		quit:      make(chan struct{}),
		inputDone: make(chan struct{}),
		done:      make(chan struct{}),
	}
	if m == modeCore {
		s.subDropped = make([]atomic.Int64, len(pats))
		s.inbox = make(chan *nats.Msg, o.pendingLimit)
	} else {
		s.jsInbox = make(chan jetstream.Msg, o.pendingLimit)
	}
	s.runCtx, s.cancelRun = context.WithCancel(context.WithoutCancel(ctx))
	for i := range s.queues {
		q := make(chan message, o.workerQueue)
		s.queues[i] = q
		s.workers.Go(func() { s.work(i, q) })
	}
	s.workers.Go(s.dispatch)
	return s
}

// Drain stops receiving, waits until every event already received has
// been handled, and returns once every goroutine of the subscription has
// exited. If ctx ends first, Drain stops as [Subscription.Unsubscribe]
// does and returns ctx.Err(). Otherwise it returns the error, if any, of
// removing the NATS subscriptions or stopping the JetStream consumer (a
// closed connection is not an error). On a [Consume] subscription, the
// events handled are acknowledged before Drain returns. Drain is
// idempotent. Calling it from a handler deadlocks: use a goroutine.
func (s *Subscription) Drain(ctx context.Context) error {
	s.drainOnce.Do(func() { close(s.drainReq) })
	select {
	case <-s.done:
		return s.err
	case <-ctx.Done():
	}
	select {
	case <-s.done: // finished just as ctx ended
		return s.err
	default:
	}
	s.stop()
	<-s.done
	return ctx.Err()
}

// Unsubscribe stops at once: it removes the NATS subscriptions (or stops
// the JetStream consumer), drops the queued events (counted in
// [Stats.Dropped]; a [Consume] subscription gives them back to the server,
// which delivers them again at once), cancels the ctx of running handlers
// and waits for them to return, and returns once every goroutine of the
// subscription has exited. It returns the error, if any, of
// removing the NATS subscriptions (a closed connection is not an error).
// Unsubscribe is idempotent, and may follow or interrupt a Drain. Calling
// it from a handler deadlocks: use a goroutine.
func (s *Subscription) Unsubscribe() error {
	s.stop()
	<-s.done
	return s.err
}

// Done is closed when the subscription has stopped: after Drain,
// Unsubscribe, or the end of the ctx given to Subscribe.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Stats returns the subscription's counters. It is cheap and safe to call
// at any time, also after the subscription stopped.
func (s *Subscription) Stats() Stats {
	st := Stats{
		Received:     s.received.Load(),
		Handled:      s.handled.Load(),
		Failed:       s.failed.Load(),
		Invalid:      s.invalid.Load(),
		Filtered:     s.filtered.Load(),
		Dropped:      s.dropped.Load(),
		Retried:      s.retried.Load(),
		DeadLettered: s.deadLettered.Load(),
		Pending:      int(s.pending.Load()) + len(s.inbox) + len(s.jsInbox),
	}
	for i, sub := range s.subs {
		if n, err := sub.Dropped(); err == nil {
			st.Dropped += uint64(n)
		} else { // removed: what it had dropped until then
			st.Dropped += uint64(s.subDropped[i].Load())
		}
	}
	return st
}

// stop starts a hard stop.
func (s *Subscription) stop() {
	s.quitOnce.Do(func() {
		close(s.quit)
		s.cancelRun()
	})
}

// supervise waits for the end (ctx, Drain or stop), removes the NATS
// subscriptions, lets the dispatcher and workers finish, and closes done.
func (s *Subscription) supervise(ctx context.Context) {
	defer close(s.done)
	graceful := true
	select {
	case <-s.quit:
		graceful = false
	default:
		select {
		case <-ctx.Done():
		case <-s.drainReq:
		case <-s.quit:
			graceful = false
		}
	}
	if s.js != nil {
		s.err = s.js.close(s, graceful)
	} else {
		s.err = s.closeNATS(graceful)
	}
	close(s.inputDone)
	s.workers.Wait()
	s.sweep()
	s.cancelRun()
	if s.js != nil {
		s.js.finish(s)
	}
	s.log.Debug("stopped", zap.Bool("drained", graceful))
}

// closeNATS removes the NATS subscriptions. Gracefully, it first drains
// them: the server stops sending, and a round trip makes sure that what it
// sent before is in the inbox (in a queue group, nothing routed to this
// member is lost).
func (s *Subscription) closeNATS(graceful bool) error {
	var errs []error
	s.saveDropped()
	if graceful && len(s.subs) > 0 {
		for _, sub := range s.subs {
			if err := sub.Drain(); err != nil && !gone(err) {
				errs = append(errs, fmt.Errorf("subscriber: drain %s: %w", sub.Subject, err))
			}
		}
		ctx, cancel := context.WithTimeout(s.runCtx, flushTimeout)
		err := s.nc.FlushWithContext(ctx)
		cancel()
		if err != nil && !gone(err) && s.runCtx.Err() == nil {
			errs = append(errs, fmt.Errorf("subscriber: drain: %w", err))
		}
		s.saveDropped()
	}
	for _, sub := range s.subs {
		if err := sub.Unsubscribe(); err != nil && !gone(err) {
			errs = append(errs, fmt.Errorf("subscriber: unsubscribe %s: %w", sub.Subject, err))
		}
	}
	return errors.Join(errs...)
}

// saveDropped keeps the NATS drop counts of the live subscriptions.
func (s *Subscription) saveDropped() {
	for i, sub := range s.subs {
		if n, err := sub.Dropped(); err == nil {
			s.subDropped[i].Store(int64(n))
		}
	}
}

// sweep discards what is left once the goroutines have exited: queued
// events after a hard stop, and messages NATS put in the inbox.
// A JetStream message is given back to the server (Nak) so that it comes
// again at once, to this durable consumer's other subscriptions or after a
// restart.
func (s *Subscription) sweep() {
	for _, q := range s.queues {
		for m := range q {
			s.discard(m)
		}
	}
	for {
		select {
		case <-s.inbox:
			s.dropped.Add(1)
		case m := <-s.jsInbox:
			s.dropped.Add(1)
			s.giveBack(m)
		default:
			return
		}
	}
}

// discard drops m on a hard stop: counted in pending, never handled (taken
// from a worker's queue, or by route before it reached one).
func (s *Subscription) discard(m message) {
	s.pending.Add(-1)
	s.dropped.Add(1)
	s.giveBack(m.jm)
}

// gone reports errors that mean the NATS subscription is gone already.
func gone(err error) bool {
	return errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrBadSubscription) ||
		errors.Is(err, nats.ErrConnectionDraining)
}
