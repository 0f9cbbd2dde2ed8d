package publisher

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/subjects"
)

var (
	// ErrClosed is returned by every publish after [Publisher.Close].
	ErrClosed = errors.New("publisher: closed")
	// ErrTooManyPending is wrapped by the error of [Publisher.PublishAsync]
	// when [WithMaxPending] publishes stayed in flight for the whole
	// default timeout.
	ErrTooManyPending = errors.New("publisher: too many pending async publishes")
)

// Header names set on every message.
const (
	hdrMsgID       = jetstream.MsgIDHeader // "Nats-Msg-Id"
	hdrContentType = "Content-Type"
	hdrSpecVersion = "ce-specversion"
	hdrID          = "ce-id"
	hdrType        = "ce-type"
	hdrSource      = "ce-source"
	hdrTime        = "ce-time"
	numHeaders     = 7
	// headerRoom is an upper bound of the headers' size: id and source
	// are at most 256 bytes each, the id appears twice.
	headerRoom = 1024
)

// Ack is the outcome of a publish that JetStream acknowledged.
type Ack struct {
	// ID is the event's id (filled by the publisher when it was empty).
	ID string
	// Seq is the event's sequence in the EVENTS stream; 0 with
	// [WithCoreNATS].
	Seq uint64
	// Duplicate reports that the stream already held an event with this
	// ID within its duplicate window and dropped this one; Seq is then the
	// sequence of the stored one.
	Duplicate bool
}

// Stats are a publisher's counters since [New].
type Stats struct {
	// Published counts acknowledged events, duplicates included (with
	// WithCoreNATS: events handed to the connection).
	Published uint64
	// Failed counts publishes that were not acknowledged: those sent and
	// failed (broker or connection errors, no stream, timeouts, a context
	// that ended while waiting for the ack, pending async publishes failed
	// by Close), and those never sent although the event was valid (a
	// closed connection, [ErrTooManyPending], a failed subscription for
	// the acks). [ErrClosed] is not counted.
	Failed uint64
	// Invalid counts events rejected before sending: validation, size.
	Invalid uint64
	// Duplicates counts acks that reported a duplicate.
	Duplicates uint64
	// Pending is the number of async publishes awaiting their ack.
	Pending int
}

// Publisher publishes events to JetStream. Create one with [New]; it is
// safe for concurrent use.
type Publisher struct {
	nc         *nats.Conn
	js         jetstream.JetStream // for Publish; nil with WithCoreNATS
	prefix     string
	source     string
	timeout    time.Duration
	maxSize    int
	maxPending int
	core       bool
	log        *zap.Logger
	async      asyncAcks // PublishAsync's pending publishes (async.go)
	published  atomic.Uint64
	failed     atomic.Uint64
	invalid    atomic.Uint64
	duplicates atomic.Uint64

	// mu orders Close against the start of publishes: a publish takes the
	// read lock to check closed and count itself in inflight; Close takes
	// the write lock to set closed, after which inflight only decreases.
	mu       sync.RWMutex
	closed   atomic.Bool
	inflight atomic.Int64  // publishes accepted and not yet finished
	idle     chan struct{} // closed once when closed and inflight is 0
	idleOnce sync.Once
}

// New returns a Publisher that publishes on nc, which the caller keeps
// owning: [Publisher.Close] does not close it. It returns an error
// wrapping [ErrInvalidOption] when an option is bad.
func New(nc *nats.Conn, opts ...Option) (*Publisher, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if nc == nil {
		return nil, fmt.Errorf("%w: nil *nats.Conn", ErrInvalidOption)
	}
	p := &Publisher{
		nc:         nc,
		prefix:     o.prefix,
		source:     o.source,
		timeout:    o.timeout,
		maxSize:    o.maxSize,
		maxPending: o.maxPending,
		core:       o.core,
		log:        o.log.Named("publisher"),
		idle:       make(chan struct{}),
	}
	if !o.core {
		// Publish only; PublishAsync has its own machinery (async.go).
		js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(o.timeout))
		if err != nil {
			return nil, fmt.Errorf("publisher: jetstream: %w", err)
		}
		p.js = js
	}
	if mp := nc.MaxPayload(); mp > 0 && int64(o.maxSize)+headerRoom > mp {
		p.log.Warn("max event size exceeds the server's max payload; large events will fail",
			zap.Int("max_event_size", o.maxSize), zap.Int64("max_payload", mp))
	}
	p.log.Debug("publisher ready", zap.String("prefix", p.prefix), zap.String("source", p.source),
		zap.Bool("core_nats", p.core), zap.Duration("default_timeout", p.timeout))
	return p, nil
}

// Publish publishes ev and returns after JetStream acknowledged it. Empty
// ID, Source and Timestamp are filled first (see the package doc).
//
// Errors: [ErrClosed] after Close; an event unfit for the bus wraps
// [event.ErrInvalid] or [event.ErrTooLarge] and nothing is sent; otherwise
// "publish <subject>: <cause>", where the cause may be ctx's error
// (the default timeout applies when ctx has no deadline). After an error
// other than a validation error the event may still have been stored:
// publishing it again with the same ID is safe within the stream's
// duplicate window.
func (p *Publisher) Publish(ctx context.Context, ev event.Event) (Ack, error) {
	if !p.acquire() {
		return Ack{}, ErrClosed
	}
	defer p.release()
	var pr prepared
	if err := p.prepare(&ev, &pr); err != nil {
		return Ack{}, err
	}
	if err := ctx.Err(); err != nil {
		return Ack{}, fmt.Errorf("publish %s: %w", pr.subject, err)
	}
	if p.core {
		return p.publishCore(&pr)
	}
	// Without a deadline in ctx, the JetStream context applies the
	// default timeout (jetstream.WithDefaultTimeout in New).
	m := getMsg(&pr, "")
	pa, err := p.js.PublishMsg(ctx, &m.m)
	putMsg(m)
	if err != nil {
		p.failed.Add(1)
		return Ack{}, fmt.Errorf("publish %s: %w", pr.subject, err)
	}
	return p.acked(pr.id, pa.Sequence, pa.Duplicate), nil
}

// acked counts an acknowledged publish and returns its Ack.
func (p *Publisher) acked(id string, seq uint64, dup bool) Ack {
	p.published.Add(1)
	if dup {
		p.duplicates.Add(1)
	}
	return Ack{ID: id, Seq: seq, Duplicate: dup}
}

// PublishAsync prepares ev as [Publisher.Publish] does, sends it and
// returns a [Future] for its ack without waiting. Errors known at once are
// returned at once: [ErrClosed], an invalid event (nothing is sent), a
// closed connection, or [ErrTooManyPending] when [WithMaxPending] publishes
// stayed in flight for the default timeout. Later failures, including an
// ack that does not come within the default timeout, resolve the Future
// with an error.
func (p *Publisher) PublishAsync(ev event.Event) (*Future, error) {
	if !p.acquire() {
		return nil, ErrClosed
	}
	f := &Future{done: make(chan struct{})}
	if err := p.prepare(&ev, &f.msg); err != nil {
		p.release()
		return nil, err
	}
	return p.sendAsync(f)
}

// PublishEncodedAsync is [Publisher.PublishAsync] for an event whose
// encoding the caller holds already, such as the outbox relay, which
// decodes each row (validating it) and would otherwise have it encoded
// again: data is sent as it is. data must be what [event.Encode] wrote for
// ev, or what [event.Decode] read ev from; the publisher checks only the
// size limit and the subject (type and library id), not that the two
// agree. An event without ID, Source or Timestamp is filled and encoded
// again, as PublishAsync does, so that the publisher's source is written
// into the event as well as into ce-source. Errors are PublishAsync's.
//
// The publisher keeps data, not a copy, and sends it again after a "no
// responders" answer (twice, 250 ms apart): data must not be modified
// until the Future resolves.
func (p *Publisher) PublishEncodedAsync(ev *event.Event, data []byte) (*Future, error) {
	if ev.ID == "" || ev.Source == "" || ev.Timestamp.IsZero() {
		return p.PublishAsync(*ev)
	}
	if !p.acquire() {
		return nil, ErrClosed
	}
	f := &Future{done: make(chan struct{})}
	if err := p.prepareEncoded(ev, data, &f.msg); err != nil {
		p.release()
		return nil, err
	}
	return p.sendAsync(f)
}

// sendAsync sends the prepared f: JetStream through publishAsync, core
// NATS at once.
func (p *Publisher) sendAsync(f *Future) (*Future, error) {
	if p.core {
		ack, err := p.publishCore(&f.msg)
		p.release()
		if err != nil {
			return nil, err
		}
		f.resolve(ack, nil)
		return f, nil
	}
	if err := p.publishAsync(f); err != nil {
		p.release()
		if errors.Is(err, ErrClosed) { // Close gave up waiting meanwhile
			return nil, err
		}
		p.failed.Add(1)
		return nil, fmt.Errorf("publish %s: %w", f.msg.subject, err)
	}
	return f, nil
}

func (p *Publisher) publishCore(pr *prepared) (Ack, error) {
	if err := p.publishMsg(pr, ""); err != nil {
		p.failed.Add(1)
		return Ack{}, fmt.Errorf("publish %s: %w", pr.subject, err)
	}
	p.published.Add(1)
	return Ack{ID: pr.id}, nil
}

// prepared is an event ready to be sent: its subject, its encoding, and
// the values of its headers.
type prepared struct {
	subject string
	data    []byte
	id      string // Nats-Msg-Id, ce-id
	typ     string // ce-type
	source  string // ce-source
	time    string // ce-time
}

// prepare fills ev's empty fields, validates and encodes it into pr.
// Errors are counted as invalid.
func (p *Publisher) prepare(ev *event.Event, pr *prepared) error {
	ev.Fill(p.source)
	data, err := event.Encode(ev, p.maxSize) // validates
	if err != nil {
		p.invalid.Add(1)
		return fmt.Errorf("publish: %w", err)
	}
	// Encode validated the type and the library id, and WithPrefix the
	// prefix: the subject is built without validating them again, as
	// subjects.Build (ev.Subject) would.
	entity, action, _ := strings.Cut(ev.Type, ".")
	subj := subjects.Subject{Prefix: p.prefix, LibraryID: ev.LibraryID, Entity: entity, Action: action}.String()
	// The ce-time value goes into the room Encode leaves after the event
	// (or a buffer of its own if escapes took it), not into an
	// allocation of its own. data is capped so that nothing appended to
	// it can write over the time.
	t := event.AppendTime(data[len(data):], ev.Timestamp)
	ceTime := unsafe.String(unsafe.SliceData(t), len(t))
	p.fill(pr, ev, subj, data[:len(data):len(data)], ceTime)
	return nil
}

// prepareEncoded completes pr for ev, encoded as data, whose size and
// subject it checks. Errors are counted as invalid.
func (p *Publisher) prepareEncoded(ev *event.Event, data []byte, pr *prepared) error {
	if len(data) > p.maxSize {
		p.invalid.Add(1)
		return fmt.Errorf("publish: %w: %d bytes, limit %d", event.ErrTooLarge, len(data), p.maxSize)
	}
	subj, err := ev.Subject(p.prefix)
	if err != nil {
		p.invalid.Add(1)
		return fmt.Errorf("publish: %w: %w", event.ErrInvalid, err)
	}
	var tb [len(event.TimeLayout) + 8]byte
	p.fill(pr, ev, subj, data, string(event.AppendTime(tb[:0], ev.Timestamp)))
	return nil
}

// fill sets pr to ev's subject, encoding and header values.
func (p *Publisher) fill(pr *prepared, ev *event.Event, subj string, data []byte, ceTime string) {
	ceSource := ev.Source
	if ceSource == "" {
		ceSource = defaultCESource
	}
	*pr = prepared{subject: subj, data: data, id: ev.ID, typ: ev.Type, source: ceSource, time: ceTime}
}

// headerKeys are the headers of every message, in the order of outMsg.vals.
var headerKeys = [numHeaders]string{hdrMsgID, hdrContentType, hdrSpecVersion, hdrID, hdrType, hdrSource, hdrTime}

// outMsg is a nats.Msg whose header map is made once: its values are set
// through vals, the map's own one-element slices, without map writes.
// nats.go encodes a message into its write buffer before PublishMsg
// returns and keeps no reference to it, so one outMsg serves publish
// after publish (through outMsgs); a sent message is rebuilt from its
// prepared values when it has to be sent again.
type outMsg struct {
	m    nats.Msg
	vals [numHeaders][]string
}

var outMsgs = sync.Pool{New: func() any {
	o := &outMsg{}
	o.m.Header = make(nats.Header, numHeaders)
	backing := make([]string, numHeaders)
	for i, k := range headerKeys {
		o.vals[i] = backing[i : i+1 : i+1]
		o.m.Header[k] = o.vals[i]
	}
	return o
}}

// getMsg returns a message for pr with reply subject reply; give it back
// with putMsg once sent.
func getMsg(pr *prepared, reply string) *outMsg {
	o := outMsgs.Get().(*outMsg)
	o.m.Subject, o.m.Reply, o.m.Data = pr.subject, reply, pr.data
	v := &o.vals
	v[0][0], v[1][0], v[2][0], v[3][0], v[4][0], v[5][0], v[6][0] = pr.id, "application/json", "1.0", pr.id, pr.typ, pr.source, pr.time
	return o
}

// putMsg gives o back for reuse, unless its header map no longer holds
// exactly the slices of o.vals: a Header.Set (as jetstream.WithMsgID
// does), Add or Del, or a new key, would leave getMsg writing values the
// map does not hold, and a later message would carry a stale Nats-Msg-Id.
func putMsg(o *outMsg) {
	if len(o.m.Header) != numHeaders {
		return
	}
	for i, k := range headerKeys {
		if v := o.m.Header[k]; len(v) != 1 || &v[0] != &o.vals[i][0] {
			return
		}
	}
	o.m.Subject, o.m.Reply, o.m.Data = "", "", nil
	for _, v := range o.vals {
		v[0] = ""
	}
	outMsgs.Put(o)
}

// publishMsg publishes pr over core NATS with reply subject reply.
func (p *Publisher) publishMsg(pr *prepared, reply string) error {
	o := getMsg(pr, reply)
	err := p.nc.PublishMsg(&o.m)
	putMsg(o)
	return err
}

// acquire counts a publish in, unless the publisher is closed.
func (p *Publisher) acquire() bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed.Load() {
		return false
	}
	p.inflight.Add(1)
	return true
}

// release counts a publish out and wakes Close after the last one.
func (p *Publisher) release() {
	if p.inflight.Add(-1) == 0 && p.closed.Load() {
		p.idleOnce.Do(func() { close(p.idle) })
	}
}

// Close stops the publisher: from now on every publish returns
// [ErrClosed]. It waits until the publishes in flight are finished, async
// ones included, or until ctx ends. An async publish may wait up to the
// default timeout for a slot ([WithMaxPending]), then up to the default
// timeout and an eighth of it (at most 100 ms more) for its ack, and
// 2 × 250 ms more when answered "no responders" (each re-send awaits its
// answer afresh). Then Close fails the async publishes still pending
// (their Futures resolve with an error: the event may or may not be
// stored) and removes the publisher's subscription. With [WithCoreNATS]
// it flushes the connection instead. It does not close the connection.
// Close may be called more than once; it returns ctx's error if ctx
// ended first.
func (p *Publisher) Close(ctx context.Context) error {
	p.mu.Lock()
	p.closed.Store(true)
	p.mu.Unlock()
	if p.inflight.Load() == 0 {
		p.idleOnce.Do(func() { close(p.idle) })
	}

	var err error
	select {
	case <-p.idle:
	case <-ctx.Done():
		err = fmt.Errorf("publisher: close: %d publishes still in flight: %w", p.inflight.Load(), ctx.Err())
	}
	if p.core {
		if ferr := p.flush(ctx); ferr != nil && err == nil {
			err = fmt.Errorf("publisher: close: flush: %w", ferr)
		}
	} else {
		p.closeAsync() // fails what is still pending
	}
	p.log.Debug("publisher closed", zap.Uint64("published", p.published.Load()), zap.Uint64("failed", p.failed.Load()))
	return err
}

func (p *Publisher) flush(ctx context.Context) error {
	if ctx.Err() != nil || p.nc.IsClosed() {
		return nil // nothing more can be done
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	return p.nc.FlushWithContext(ctx)
}

// Stats returns a snapshot of the counters.
func (p *Publisher) Stats() Stats {
	return Stats{
		Published:  p.published.Load(),
		Failed:     p.failed.Load(),
		Invalid:    p.invalid.Load(),
		Duplicates: p.duplicates.Load(),
		Pending:    p.pendingAsync(),
	}
}

// LibraryCreated publishes a library.created event with a fresh id and the
// current time, as [Publisher.Publish] does.
func (p *Publisher) LibraryCreated(ctx context.Context, libraryID string, d event.LibraryCreated) (Ack, error) {
	return p.publishNew(ctx, event.TypeLibraryCreated, libraryID, d)
}

// LibraryDeleted publishes a library.deleted event, as [Publisher.Publish] does.
func (p *Publisher) LibraryDeleted(ctx context.Context, libraryID string, d event.LibraryDeleted) (Ack, error) {
	return p.publishNew(ctx, event.TypeLibraryDeleted, libraryID, d)
}

// DocumentAdded publishes a document.added event, as [Publisher.Publish] does.
func (p *Publisher) DocumentAdded(ctx context.Context, libraryID string, d event.DocumentAdded) (Ack, error) {
	return p.publishNew(ctx, event.TypeDocumentAdded, libraryID, d)
}

// DocumentDeleted publishes a document.deleted event, as [Publisher.Publish] does.
func (p *Publisher) DocumentDeleted(ctx context.Context, libraryID string, d event.DocumentDeleted) (Ack, error) {
	return p.publishNew(ctx, event.TypeDocumentDeleted, libraryID, d)
}

// SearchPerformed publishes a search.performed event, as [Publisher.Publish]
// does. A NaN or infinite DurationMS cannot be encoded: the error wraps
// [event.ErrInvalid].
func (p *Publisher) SearchPerformed(ctx context.Context, libraryID string, d event.SearchPerformed) (Ack, error) {
	return p.publishNew(ctx, event.TypeSearchPerformed, libraryID, d)
}

// publishNew builds an event with event.New (fresh id and time) and
// publishes it; a payload that does not encode counts as invalid.
func (p *Publisher) publishNew(ctx context.Context, typ, libraryID string, data any) (Ack, error) {
	if p.closed.Load() {
		return Ack{}, ErrClosed
	}
	ev, err := event.New(typ, libraryID, data)
	if err != nil {
		p.invalid.Add(1)
		return Ack{}, fmt.Errorf("publish: %w", err)
	}
	return p.Publish(ctx, ev)
}
