package bridge

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/broker"
)

const (
	// replayPullMsgs and replayPullBytes bound what an ordered consumer
	// buffers in the bridge ahead of its reader (see replayPull),
	// whichever comes first: 1 000 events of 300 bytes take about 450 kB
	// with their headers, and the byte bound holds it to 2 MiB whatever the
	// event size, so that a thousand clients resuming at once after a
	// bridge restart hold at most 0.5–2 GB in pulls rather than 2 GB
	// always. Pulls of 256 messages left the replay waiting on round
	// trips, pulls of 1 000 to 4 000 did not.
	replayPullMsgs  = 1000
	replayPullBytes = 2 << 20
	// replayAhead is how many read events wait for a resuming client's
	// writer; with the pull bounds, what the bridge holds for one
	// resuming client at most.
	replayAhead = 64
	// replayInactive lets the server delete an ordered consumer whose
	// bridge vanished without deleting it.
	replayInactive = time.Minute
	// replayRetryMax caps the wait between attempts to read the stream.
	replayRetryMax = 2 * time.Second
	// consumerDeleteTimeout bounds the deletion of a finished consumer.
	consumerDeleteTimeout = 2 * time.Second
)

// readSpec says what to read from the EVENTS stream: the subjects, and
// from which sequence (or, if startSeq is 0, from which time).
type readSpec struct {
	filters   []string
	startSeq  uint64
	startTime time.Time
}

// storedItem is one event read from the stream, or (seq 0) the news that
// nothing matched when the consumer was created.
type storedItem struct {
	seq uint64
	// pending is how many stored events of the filters came after this
	// one when the server sent it.
	pending uint64
	frame   *frame // nil if not a valid event
}

// readStream reads the stream through an ordered consumer and hands each
// event to fn, in stream order, until fn returns false or ctx ends. A
// consumer created with nothing to deliver is reported as an item with seq
// 0 and pending 0. When reading fails (the stream unreachable, the
// connection closed), it tries again from the next sequence, backing off,
// until ctx ends. The consumer is deleted when done.
func (b *Bridge) readStream(ctx context.Context, spec readSpec, fn func(storedItem) bool) {
	wait := 50 * time.Millisecond
	for ctx.Err() == nil {
		next, ok, err := b.readOnce(ctx, spec, fn)
		if !ok {
			return
		}
		if next > spec.startSeq {
			spec.startSeq, wait = next, 50*time.Millisecond
		}
		if ctx.Err() != nil {
			return
		}
		b.log.Debug("reading the stream", zap.Strings("filters", spec.filters), zap.Uint64("from_seq", spec.startSeq), zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, replayRetryMax)
	}
}

// readOnce runs one consumer. It returns the sequence to go on from,
// whether to go on, and why it stopped.
//
// The consumer's messages come through Consume, whose handler runs on the
// subscription's own goroutine, rather than through Messages and Next:
// Next arms and stops a heartbeat timer and selects over three channels
// for every message, and then the message crosses to our goroutine as
// well; with Consume a replay read 100 000 stored events 10–45% faster
// (bench --scenario replay, A/B on one machine). fn runs on that
// goroutine, one message at a time, and may block: the pulls stay bounded
// by replayPull meanwhile. It blocks only while the client's writer is
// behind; if it blocked for two heartbeats (10 s, as long as a write may
// take before the client is dropped), the ordered consumer would recreate
// itself from the last message handled.
func (b *Bridge) readOnce(ctx context.Context, spec readSpec, fn func(storedItem) bool) (next uint64, goOn bool, err error) {
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:    spec.filters,
		InactiveThreshold: replayInactive,
	}
	switch {
	case spec.startSeq > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, spec.startSeq
	case !spec.startTime.IsZero():
		t := spec.startTime
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	default:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	cctx, cancel := context.WithTimeout(ctx, streamInfoTimeout)
	cons, err := b.js.OrderedConsumer(cctx, broker.StreamName, cfg)
	cancel()
	if err != nil {
		return 0, true, err
	}
	if h := consumerHook.Load(); h != nil {
		(*h)(+1)
	}
	defer b.deleteConsumer(cons)
	if ci := cons.CachedInfo(); ci != nil && ci.NumPending == 0 {
		if !fn(storedItem{}) {
			return 0, false, nil
		}
	}
	h := &consumeHandler{b: b, fn: fn, finished: make(chan struct{})}
	cc, err := cons.Consume(h.handle, jetstream.PullMaxMessagesWithBytesLimit(replayPullMsgs, b.replayPull()))
	if err != nil {
		return 0, true, err
	}
	// Stop also ends the library's own attempts to recreate the consumer.
	closed := cc.Closed()
	select {
	case <-ctx.Done():
		err = ctx.Err()
	case <-h.finished:
	case <-closed: // the connection closed: try again from next
		err = errConsumeClosed
	}
	cc.Stop()
	next, more := h.halt()
	return next, more && ctx.Err() == nil, err
}

// errConsumeClosed reports a consumer that the client library stopped (the
// connection closed) before the reader was done.
var errConsumeClosed = errors.New("bridge: the stream's consumer stopped")

// consumeHandler hands a consumer's messages to fn until fn returns false.
// Its mutex is held while fn runs, so that halt returns only once no call
// is running and none will start.
type consumeHandler struct {
	b        *Bridge
	fn       func(storedItem) bool
	finished chan struct{} // closed when fn returned false

	mu     sync.Mutex
	halted bool
	done   bool   // fn returned false
	next   uint64 // the sequence after the last one read
}

func (h *consumeHandler) handle(m jetstream.Msg) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.halted {
		return
	}
	it, err := h.b.storedItem(m)
	if err != nil {
		h.b.log.Warn("stored message without metadata", zap.String("subject", m.Subject()), zap.Error(err))
		return
	}
	h.next = it.seq + 1
	if !h.fn(it) {
		h.halted, h.done = true, true
		close(h.finished)
	}
}

// halt stops the calls of fn, waiting for one that is running, and returns
// the sequence to go on from and whether fn wants more.
func (h *consumeHandler) halt() (next uint64, more bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.halted = true
	return h.next, !h.done
}

// replayPull is the byte bound of a replay consumer's pulls: at least
// replayPullBytes, and room for two of the largest messages the server
// accepts (its max payload counts the headers too): a pull smaller than
// a message would stall (nats.go PullMaxBytes). A message stored under a
// larger limit than this server's (another node, an older setting) is
// refused by the server for that pull, and nats.go pulls again.
func (b *Bridge) replayPull() int {
	return int(max(replayPullBytes, 2*b.nc.MaxPayload()))
}

// deleteConsumer deletes a finished ordered consumer rather than leaving
// it to its inactivity threshold.
func (b *Bridge) deleteConsumer(cons jetstream.Consumer) {
	ci := cons.CachedInfo()
	if ci == nil || !b.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), consumerDeleteTimeout)
	defer cancel()
	if err := b.js.DeleteConsumer(ctx, broker.StreamName, ci.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		b.log.Debug("delete replay consumer", zap.String("consumer", ci.Name), zap.Error(err))
		return
	}
	if h := consumerHook.Load(); h != nil {
		(*h)(-1)
	}
}

// consumerHook, if set (tests), sees each ordered consumer a replay or
// re-sync obtained (+1) and deleted (-1).
var consumerHook atomic.Pointer[func(delta int)]

// storedItem parses a message read from the stream.
func (b *Bridge) storedItem(m jetstream.Msg) (storedItem, error) {
	var it storedItem
	var ok bool
	if it.seq, it.pending, ok = ackPosition(m.Reply()); !ok {
		md, err := m.Metadata() // says what is wrong
		if err != nil {
			return storedItem{}, err
		}
		it.seq, it.pending = md.Sequence.Stream, md.NumPending
	}
	ev, err := parseEvent(m.Subject(), false, m.Data(), m.Headers(), b.cfg.MaxEventSize)
	if err != nil {
		b.log.Debug("skipped stored message", zap.String("subject", m.Subject()), zap.Uint64("seq", it.seq), zap.Error(err))
		return it, nil
	}
	it.frame = b.newFrame(&ev, it.seq)
	return it, nil
}

// replayer reads the stream for one resuming client, as fast as the
// client's writer takes the events (items holds replayAhead at most).
type replayer struct {
	items  chan storedItem
	cancel context.CancelFunc
	done   chan struct{}
}

func (b *Bridge) startReplay(spec readSpec) *replayer {
	ctx, cancel := context.WithCancel(context.Background())
	rp := &replayer{items: make(chan storedItem, replayAhead), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rp.done)
		b.readStream(ctx, spec, func(it storedItem) bool {
			if it.frame != nil {
				it.frame.replayed = true
			}
			select {
			case rp.items <- it:
				return true
			case <-ctx.Done():
				return false
			}
		})
	}()
	return rp
}

// stop ends the replay and waits for its goroutine (and the deletion of
// its consumer).
func (rp *replayer) stop() {
	rp.cancel()
	<-rp.done
}
