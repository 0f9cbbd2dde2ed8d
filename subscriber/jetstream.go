package subscriber

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/subjects"
)

// maxNameLen bounds stream and consumer names, as JetStream does.
const maxNameLen = 255

// pullBatch is how many messages a JetStream subscription asks the server
// for at a time; the client asks for more when half are consumed.
const pullBatch = 256

// Consume starts handling, on the durable JetStream consumer named durable
// (created on the [DefaultStream] if it does not exist), the stored events
// that filter selects. It returns once the consumer exists on the server.
//
// Each event is settled after the handler returns: acknowledged when the
// handler returned nil (or Filter.Match rejected the event), given back
// to the server to be delivered again after a [Backoff] delay when the
// handler failed, and dead-lettered when the handler failed on the
// [MaxDeliver]-th delivery or a later one. An acknowledged event is not
// delivered to this durable consumer again. See the package documentation
// for the guarantees, the dead-letter stream and order.
//
// Subscriptions with the same durable name, in one process or many, share
// the events: each is delivered to one of them at a time. They must use
// the same filter and options, since each Consume updates the consumer on
// the server to its own. The consumer stays on the server after the
// subscription stops, and the next Consume with its name resumes where it
// left off.
//
// Errors: a bad durable name, filter or option wraps [ErrInvalidFilter] or
// [ErrInvalidOption]; a nil js or handler, an ended ctx, and JetStream
// errors (such as [jetstream.ErrStreamNotFound]) are returned as is or
// wrapped. On error nothing is left running.
func Consume(ctx context.Context, js jetstream.JetStream, durable string, filter Filter, handler Handler, opts ...Option) (*Subscription, error) {
	if err := validName(durable); err != nil {
		return nil, fmt.Errorf("%w: durable name %q: %w", ErrInvalidOption, durable, err)
	}
	o, pats, err := prepareJS(ctx, js, modeDurable, filter, handler, opts)
	if err != nil {
		return nil, err
	}
	if o.deadLetterInvalid && !o.deadLetter {
		return nil, fmt.Errorf("%w: DeadLetterInvalid conflicts with NoDeadLetter", ErrInvalidOption)
	}
	filters, client := serverFilters(o.prefix, filter, pats)
	if o.deadLetter {
		if _, err := ensureDLQ(ctx, js, o.prefix, o.stream); err != nil {
			return nil, err
		}
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       durable,
		Description:   "arrwcdc subscriber",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.ackWait,
		MaxDeliver:    -1, // the subscription counts and dead-letters
		MaxAckPending: o.maxAckPending,
	}
	setFilters(&cfg.FilterSubject, &cfg.FilterSubjects, filters)
	setDeliver(&cfg.DeliverPolicy, &cfg.OptStartSeq, &cfg.OptStartTime, o)
	cons, err := ensureConsumer(ctx, js, o.stream, cfg)
	if err != nil {
		return nil, err
	}
	src := &jsSource{js: js, stream: o.stream, consumer: durable, cons: cons, client: client}
	return startJS(ctx, js, modeDurable, o, pats, filter, handler, src)
}

// Replay starts handling the stored events that filter selects through an
// ordered, ephemeral JetStream consumer on the [DefaultStream]: from the
// first stored event by default, or from [StartSeq], [StartTime] or
// [DeliverNew], in stream order, then each new event as it is stored,
// until the subscription stops. Nothing is acknowledged: a handler error
// is counted and logged, and delivery goes on. The consumer is removed
// from the server when the subscription stops.
//
// Errors are those of [Consume], without the durable name.
func Replay(ctx context.Context, js jetstream.JetStream, filter Filter, handler Handler, opts ...Option) (*Subscription, error) {
	o, pats, err := prepareJS(ctx, js, modeReplay, filter, handler, opts)
	if err != nil {
		return nil, err
	}
	filters, client := serverFilters(o.prefix, filter, pats)
	var cfg jetstream.OrderedConsumerConfig
	var one string
	setFilters(&one, &cfg.FilterSubjects, filters)
	if one != "" {
		cfg.FilterSubjects = []string{one}
	}
	setDeliver(&cfg.DeliverPolicy, &cfg.OptStartSeq, &cfg.OptStartTime, o)
	cons, err := js.OrderedConsumer(ctx, o.stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("subscriber: replay from stream %s: %w", o.stream, err)
	}
	src := &jsSource{js: js, stream: o.stream, cons: cons, client: client}
	return startJS(ctx, js, modeReplay, o, pats, filter, handler, src)
}

// prepareJS checks the arguments shared by Consume and Replay.
func prepareJS(ctx context.Context, js jetstream.JetStream, m mode, filter Filter, handler Handler, opts []Option) (options, []string, error) {
	if js == nil {
		return options{}, nil, errors.New("subscriber: nil jetstream.JetStream")
	}
	if handler == nil {
		return options{}, nil, errors.New("subscriber: nil Handler")
	}
	o := defaultOptions()
	if err := o.apply(m, opts); err != nil {
		return options{}, nil, err
	}
	pats, err := filter.patterns(o.prefix)
	if err != nil {
		return options{}, nil, err
	}
	if err := ctx.Err(); err != nil {
		return options{}, nil, fmt.Errorf("subscriber: %w", err)
	}
	return o, pats, nil
}

// startJS starts the pipeline of a JetStream subscription and its
// consumer's delivery.
func startJS(ctx context.Context, js jetstream.JetStream, m mode, o options, pats []string, filter Filter, handler Handler, src *jsSource) (*Subscription, error) {
	s := start(ctx, js.Conn(), m, o, pats, filter.Match, handler)
	s.js = src
	s.log = s.log.With(zap.String("stream", src.stream))
	if src.consumer != "" {
		s.log = s.log.With(zap.String("consumer", src.consumer))
	}
	batch := pullBatch
	if m == modeDurable {
		batch = min(batch, o.maxAckPending)
	}
	cc, err := src.cons.Consume(s.onJSMsg,
		jetstream.PullMaxMessages(batch),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if s.runCtx.Err() == nil {
				s.log.Warn("consumer", zap.Error(err))
			}
		}))
	if err != nil {
		s.js = nil
		s.stop()
		go s.supervise(ctx)
		<-s.done
		if m == modeReplay {
			src.deleteConsumer(s)
		}
		return nil, fmt.Errorf("subscriber: consume: %w", err)
	}
	src.cc = cc
	src.closed = cc.Closed()
	if m == modeDurable {
		src.keeperStop = make(chan struct{})
		src.keeperDone = make(chan struct{})
		go s.keepAlive(src.keeperStop, src.keeperDone)
	}
	go s.supervise(ctx)
	s.log.Debug("consuming", zap.Int("concurrency", o.concurrency))
	return s, nil
}

// jsSource is the JetStream side of a subscription.
type jsSource struct {
	js       jetstream.JetStream
	stream   string
	consumer string // durable name; "" for Replay
	cons     jetstream.Consumer
	cc       jetstream.ConsumeContext
	closed   <-chan struct{} // cc.Closed()
	// client holds the patterns when the consumer's filter is wider
	// (patterns that overlap); nil when the server filters exactly.
	client []string

	keeperStop, keeperDone chan struct{}
}

// selects reports whether a message on subject is for the handler.
func (src *jsSource) selects(subject string) bool {
	if src.client == nil {
		return true
	}
	for _, p := range src.client {
		if subjects.MatchPattern(p, subject) {
			return true
		}
	}
	return false
}

// onJSMsg is the consumer's callback: it queues m, waiting while the
// inbox is full (the consumer then stops asking the server for more).
func (s *Subscription) onJSMsg(m jetstream.Msg) {
	select {
	case s.jsInbox <- m:
	case <-s.quit:
		s.dropped.Add(1)
		s.giveBack(m)
	}
}

// close stops the consumer's delivery and returns once the consumer
// delivers no more. Gracefully, what the server has sent already still
// reaches the inbox. On a hard stop, a durable consumer is drained all the
// same, so that nothing the server sent is dropped on the floor (it would
// come again only after AckWait): onJSMsg gives it back instead of
// queueing it. A replay just stops.
func (src *jsSource) close(s *Subscription, graceful bool) error {
	if graceful || s.mode == modeDurable {
		src.cc.Drain()
	} else {
		src.cc.Stop()
	}
	timer := time.NewTimer(flushTimeout)
	defer timer.Stop()
	quit := s.quit
	if s.mode == modeDurable {
		quit = nil // a hard stop does not cut the drain short
	}
	select {
	case <-src.closed:
		return nil
	case <-quit:
	case <-timer.C:
	}
	src.cc.Stop()
	timer.Reset(flushTimeout)
	select {
	case <-src.closed:
		return nil
	case <-timer.C:
		return errors.New("subscriber: consumer did not stop")
	}
}

// finish runs once the workers have exited: it stops keeping messages
// alive, gives back the messages left unhandled, sends the last
// acknowledgements, and removes a replay's consumer.
func (src *jsSource) finish(s *Subscription) {
	if src.keeperStop != nil {
		close(src.keeperStop)
		<-src.keeperDone
	}
	if s.mode == modeDurable {
		// Only now: a give-back that reached the server while the
		// subscription still asked for messages would be delivered to it
		// again, and dropped.
		s.laterMu.Lock()
		later := s.later
		s.later = nil
		s.laterMu.Unlock()
		for _, m := range later {
			if err := m.Nak(); err != nil && !ackGone(err) {
				s.log.Debug("give back", zap.Error(err))
			}
		}
		if err := s.nc.FlushTimeout(flushTimeout); err != nil && !gone(err) {
			s.log.Warn("flush acknowledgements", zap.Error(err))
		}
	}
	if s.mode == modeReplay {
		src.deleteConsumer(s)
	}
}

// deleteConsumer removes a replay's ephemeral consumer (the server would
// after its inactivity threshold); failures are ignored.
func (src *jsSource) deleteConsumer(s *Subscription) {
	info := src.cons.CachedInfo()
	if info == nil || s.nc.IsClosed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := src.js.DeleteConsumer(ctx, src.stream, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		s.log.Debug("delete replay consumer", zap.String("name", info.Name), zap.Error(err))
	}
}

// inflight is the message a worker of a durable subscription is handling.
type inflight struct {
	msg     jetstream.Msg
	touched atomic.Int64 // unix nanos of the last InProgress sent; 0 none
	giveUp  int64        // unix nanos after which it is no longer kept alive; 0 never
}

// keepAlive tells the server that the messages whose handler runs long are
// in progress, so that they are not delivered again while handled. Every
// running handler gets an InProgress within a third of AckWait, then at
// most every third, until its HandlerTimeout passes.
func (s *Subscription) keepAlive(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	period := s.opts.ackWait / 3
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			n := now.UnixNano()
			for i := range s.inflight {
				f := s.inflight[i].Load()
				if f == nil || (f.giveUp != 0 && n > f.giveUp) || n-f.touched.Load() < int64(period) {
					continue
				}
				if err := f.msg.InProgress(); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
					s.log.Debug("in progress", zap.Error(err))
				}
				f.touched.Store(n)
			}
		}
	}
}

// ensureConsumer creates the durable consumer cfg, or updates an existing
// one while keeping its start position (a consumer that exists resumes
// where it left off).
func ensureConsumer(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	cons, err := js.CreateConsumer(ctx, stream, cfg)
	if err == nil {
		return cons, nil
	}
	if !errors.Is(err, jetstream.ErrConsumerExists) {
		return nil, fmt.Errorf("subscriber: create consumer %s on stream %s: %w", cfg.Durable, stream, err)
	}
	existing, err := js.Consumer(ctx, stream, cfg.Durable)
	if err != nil {
		return nil, fmt.Errorf("subscriber: consumer %s on stream %s: %w", cfg.Durable, stream, err)
	}
	cur := existing.CachedInfo().Config
	cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = cur.DeliverPolicy, cur.OptStartSeq, cur.OptStartTime
	cons, err = js.UpdateConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("subscriber: update consumer %s on stream %s: %w", cfg.Durable, stream, err)
	}
	return cons, nil
}

// setDeliver copies the start position of o into a consumer config.
func setDeliver(p *jetstream.DeliverPolicy, seq *uint64, at **time.Time, o options) {
	*p = o.deliver
	switch o.deliver {
	case jetstream.DeliverByStartSequencePolicy:
		*seq = o.startSeq
	case jetstream.DeliverByStartTimePolicy:
		t := o.startTime
		*at = &t
	}
}

// setFilters sets one filter subject, or several.
func setFilters(one *string, many *[]string, filters []string) {
	if len(filters) == 1 {
		*one = filters[0]
	} else {
		*many = filters
	}
}

// serverFilters returns the consumer's filter subjects for pats. JetStream
// refuses overlapping filters, so patterns that another covers are left
// out; if some still overlap, the filter is the library (or everything)
// and client holds the patterns to check on each message.
func serverFilters(prefix string, f Filter, pats []string) (filters, client []string) {
	for i, p := range pats {
		covered := false
		for j, q := range pats {
			if i != j && subsumes(q, p) && (!subsumes(p, q) || j < i) {
				covered = true
				break
			}
		}
		if !covered {
			filters = append(filters, p)
		}
	}
	if !anyOverlap(filters) {
		return filters, nil
	}
	wide := subjects.All(prefix)
	if f.LibraryID != "" {
		if lib, err := subjects.Library(prefix, f.LibraryID); err == nil {
			wide = lib
		}
	}
	return []string{wide}, pats
}

// subsumes reports whether every subject that pattern b matches also
// matches pattern a.
func subsumes(a, b string) bool {
	for {
		at, arest, amore := strings.Cut(a, ".")
		bt, brest, bmore := strings.Cut(b, ".")
		switch {
		case at == ">":
			return true
		case bt == ">":
			return false
		case at != "*" && at != bt:
			return false
		}
		if !amore || !bmore {
			return amore == bmore
		}
		a, b = arest, brest
	}
}

// validName checks a stream or consumer name as JetStream does: 1 to 255
// bytes, no whitespace, '.', '*', '>', path separators or control
// characters.
func validName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("want 1 to %d bytes", maxNameLen)
	}
	if strings.ContainsFunc(name, func(r rune) bool {
		return r <= ' ' || r == 0x7f || strings.ContainsRune(".*>/\\", r)
	}) {
		return errors.New("no whitespace, '.', '*', '>', '/', '\\' or control characters")
	}
	return nil
}

// ack acknowledges a message of a durable consumer (nil-safe; nothing for
// Replay).
func (s *Subscription) ack(m jetstream.Msg) {
	if m == nil || s.mode != modeDurable {
		return
	}
	if err := m.Ack(); err != nil && !ackGone(err) {
		s.log.Warn("ack", zap.Error(err))
	}
}

// giveBack notes an unhandled message of a durable consumer that is
// stopping; finish returns it to the server (Nak), to be delivered again
// at once to the durable's other subscriptions or the next one.
func (s *Subscription) giveBack(m jetstream.Msg) {
	if m == nil || s.mode != modeDurable {
		return
	}
	s.laterMu.Lock()
	s.later = append(s.later, m)
	s.laterMu.Unlock()
}

// ackGone reports errors of settling a message that mean there is nothing
// left to do: it was settled already, or the connection is gone.
func ackGone(err error) bool {
	return errors.Is(err, jetstream.ErrMsgAlreadyAckd) || errors.Is(err, nats.ErrConnectionClosed) ||
		errors.Is(err, nats.ErrConnectionDraining)
}
