package subscriber

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/subjects"
)

// message is one message on its way through a subscription: from core
// NATS (nm) or from a JetStream consumer (jm), with its subject as route
// parsed it.
type message struct {
	nm   *nats.Msg
	jm   jetstream.Msg
	subj subjects.Subject
}

func (m message) subject() string {
	if m.jm != nil {
		return m.jm.Subject()
	}
	return m.nm.Subject
}

func (m message) data() []byte {
	if m.jm != nil {
		return m.jm.Data()
	}
	return m.nm.Data
}

func (m message) header() nats.Header {
	if m.jm != nil {
		return m.jm.Headers()
	}
	return m.nm.Header
}

// dispatch moves messages from the inbox to the queue of their library's
// worker, in the order NATS delivered them. It closes the queues when it
// returns: once the inbox is empty after input ended, or on a hard stop.
func (s *Subscription) dispatch() {
	defer func() {
		for _, q := range s.queues {
			close(q)
		}
	}()
	for {
		m, ok := s.next()
		if !ok || !s.route(m) {
			return
		}
	}
}

// next waits for the next message of the inbox. It reports false once the
// inbox is empty after input ended, or on a hard stop.
func (s *Subscription) next() (message, bool) {
	// Under load a message is waiting: take it without the select of
	// every case (route sees a hard stop at the latest when a worker's
	// queue is full). A nil inbox is never ready.
	select {
	case m := <-s.inbox:
		return message{nm: m}, true
	default:
	}
	select {
	case m := <-s.jsInbox:
		return message{jm: m}, true
	default:
	}
	for {
		select {
		case m := <-s.inbox:
			return message{nm: m}, true
		case m := <-s.jsInbox:
			return message{jm: m}, true
		case <-s.inputDone:
			// Nothing is put in the inboxes any more: go on until they
			// are empty (the cases above take what is left).
			if len(s.inbox) == 0 && len(s.jsInbox) == 0 {
				return message{}, false
			}
		case <-s.quit:
			return message{}, false
		}
	}
}

// route checks the subject of m and queues m for its library's worker,
// waiting while that queue is full. It reports false on a hard stop.
func (s *Subscription) route(m message) bool {
	if s.dedup && s.duplicate(m.nm) {
		return true
	}
	s.received.Add(1)
	subject := m.subject()
	var err error
	m.subj, err = subjects.Parse(subject)
	if err == nil && m.subj.Prefix != s.opts.prefix {
		err = fmt.Errorf("%w: %q: prefix is not %q", subjects.ErrInvalidSubject, subject, s.opts.prefix)
	}
	if err != nil {
		s.reject(m, err)
		return true
	}
	if s.js != nil && !s.js.selects(subject) {
		// The consumer's filter is wider than the patterns (they overlap).
		s.filtered.Add(1)
		s.ack(m.jm)
		return true
	}
	s.pending.Add(1)
	q := s.queues[workerIndex(m.subj.LibraryID, len(s.queues))]
	select { // room in the queue, as under load
	case q <- m:
		return true
	default:
	}
	select {
	case q <- m:
		return true
	case <-s.quit:
		s.discard(m)
		return false
	}
}

// duplicate reports whether m is the copy of a message that an earlier
// pattern of s also matches: with overlapping patterns, each NATS
// subscription delivers its own copy, and only the one on the first
// matching pattern is kept. Not for queue groups, where the server sends
// each message to one subscription of the group, on any of the patterns.
func (s *Subscription) duplicate(m *nats.Msg) bool {
	if m.Sub == nil {
		return false
	}
	for _, p := range s.patterns {
		if p == m.Sub.Subject {
			return false
		}
		if subjects.MatchPattern(p, m.Subject) {
			return true
		}
	}
	return false
}

// workerIndex picks the worker of a library among n: FNV-1a of the id.
func workerIndex(libraryID string, n int) int {
	if n <= 1 {
		return 0
	}
	h := uint32(2166136261)
	for i := 0; i < len(libraryID); i++ {
		h ^= uint32(libraryID[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}

// work handles the messages of queue q of worker i, one at a time, until
// the queue is closed or a hard stop. A worker waiting for its next
// message learns of a hard stop from dispatch, which closes the queues.
func (s *Subscription) work(i int, q <-chan message) {
	for m := range q {
		select { // a hard stop wins over queued messages
		case <-s.quit:
			s.discard(m) // sweep discards the rest
			return
		default:
		}
		s.handle(i, m)
	}
}

// handle decodes and checks m, passes it to the handler, and settles it
// with the server (durable consumers).
func (s *Subscription) handle(worker int, m message) {
	defer s.pending.Add(-1)
	var ev event.Event
	var err error
	if m.nm != nil {
		// The payload of a core NATS message is the message's own (nats.go
		// copies each one) and nothing else reads it once the event is
		// handled: the event reads it in place. A JetStream message may be
		// dead-lettered after the handler, with its payload as it came, so
		// its event gets a copy the handler may change.
		ev, err = event.DecodeShared(m.nm.Data, s.opts.maxEventSize)
	} else {
		ev, err = event.Decode(m.data(), s.opts.maxEventSize)
	}
	if err == nil {
		err = ev.CheckParsedSubject(m.subj, m.subject())
	}
	if err != nil {
		s.reject(m, err)
		return
	}
	if ev.ID == "" {
		ev.ID = idFromHeader(ev, m.header())
	}
	d := Delivery{Event: ev, Subject: m.subject(), Header: m.header(), Attempt: 1}
	if m.jm != nil {
		if meta, err := m.jm.Metadata(); err == nil {
			d.Seq = meta.Sequence.Stream
			d.Attempt = int(min(meta.NumDelivered, uint64(maxMaxDeliver)))
		}
	}
	durable := s.mode == modeDurable && m.jm != nil
	if durable {
		f := &inflight{msg: m.jm}
		if s.opts.handlerTimeout > 0 {
			f.giveUp = time.Now().Add(s.opts.handlerTimeout).UnixNano()
		}
		s.inflight[worker].Store(f)
	}
	matched, err := s.deliver(&d)
	if durable {
		s.inflight[worker].Store(nil)
	}
	switch {
	case err != nil:
		s.failed.Add(1)
		if err != errPanicked {
			s.log.Warn("handler failed", deliveryFields(&d, zap.Error(err))...)
		}
	case !matched:
		s.filtered.Add(1)
	default:
		s.handled.Add(1)
	}
	if durable {
		s.settle(m.jm, &d, err)
	}
}

// errPanicked stands for a recovered panic, logged where it was recovered.
var errPanicked = errors.New("subscriber: handler panicked")

// deliver runs the Match predicate and the handler on d. A panic in
// either is recovered, logged and returned as errPanicked.
func (s *Subscription) deliver(d *Delivery) (matched bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("handler panicked", deliveryFields(d, zap.Any("panic", r), zap.Stack("stack"))...)
			err = errPanicked
		}
	}()
	if s.match != nil && !s.match(d.Event) {
		return false, nil
	}
	ctx := s.runCtx
	if s.opts.handlerTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opts.handlerTimeout)
		defer cancel()
	}
	return true, s.handler(ctx, *d)
}

// reject counts and logs an invalid message; a durable consumer
// terminates it (and dead-letters it with [DeadLetterInvalid]).
func (s *Subscription) reject(m message, err error) {
	s.invalid.Add(1)
	s.log.Warn("invalid message skipped", zap.String("subject", m.subject()), zap.Int("size", len(m.data())), zap.Error(err))
	if s.mode == modeDurable && m.jm != nil {
		s.settleInvalid(m.jm, err)
	}
}

// idFromHeader returns the Nats-Msg-Id header as the id of ev, which has
// none, or "" when the header is missing or not a valid id.
func idFromHeader(ev event.Event, h nats.Header) string {
	id := h.Get(nats.MsgIdHdr)
	if id == "" {
		return ""
	}
	ev.ID = id
	if ev.Validate() != nil {
		return ""
	}
	return id
}

func deliveryFields(d *Delivery, more ...zap.Field) []zap.Field {
	return append([]zap.Field{
		zap.String("subject", d.Subject),
		zap.String("event_id", d.ID),
		zap.String("library_id", d.LibraryID),
		zap.String("type", d.Type),
	}, more...)
}
