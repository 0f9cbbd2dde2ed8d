package subscriber

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/subjects"
)

// The dead-letter stream (DESIGN §4): outside the prefix, so dead letters
// never mix with change events.
const (
	// DLQStream is the name of the stream that keeps dead letters.
	DLQStream = "DLQ"
	// DLQSubjectPrefix is put before the subject of a dead-lettered event:
	// "dlq.events.library.<id>.document.added".
	DLQSubjectPrefix = "dlq"
	// DefaultDLQMaxAge is how long the dead-letter stream keeps a dead
	// letter when [EnsureDLQ] creates it.
	DefaultDLQMaxAge = 30 * 24 * time.Hour
)

// Headers of a dead letter, besides the original message's own headers
// (other than the Nats-* ones) and its unchanged body.
const (
	// HeaderDLQReason says why: the handler's error on the last delivery,
	// or "invalid: " and what is wrong with the message. One line, at most
	// 1024 bytes.
	HeaderDLQReason = "Arrwcdc-Dlq-Reason"
	// HeaderDLQSubject is the subject the event was stored on.
	HeaderDLQSubject = "Arrwcdc-Dlq-Subject"
	// HeaderDLQStream is the stream the event was stored in ("EVENTS").
	HeaderDLQStream = "Arrwcdc-Dlq-Stream"
	// HeaderDLQSeq is the event's sequence in that stream.
	HeaderDLQSeq = "Arrwcdc-Dlq-Seq"
	// HeaderDLQConsumer is the durable consumer that gave up.
	HeaderDLQConsumer = "Arrwcdc-Dlq-Consumer"
	// HeaderDLQAttempts is how many times the consumer had delivered it.
	HeaderDLQAttempts = "Arrwcdc-Dlq-Attempts"
	// HeaderDLQTime is when it was dead-lettered, RFC 3339 UTC.
	HeaderDLQTime = "Arrwcdc-Dlq-Time"
	// HeaderDLQEventID is the event's id, when it has one.
	HeaderDLQEventID = "Arrwcdc-Dlq-Event-Id"
)

// maxReasonLen bounds HeaderDLQReason.
const maxReasonLen = 1024

// dlqPublishTimeout bounds the publish of one dead letter.
const dlqPublishTimeout = 5 * time.Second

// DLQSubjects returns the subjects the dead-letter stream captures for
// prefix: "dlq.events.>".
func DLQSubjects(prefix string) string { return DLQSubjectPrefix + "." + prefix + ".>" }

// DLQSpec returns the configuration [EnsureDLQ] gives the dead-letter
// stream for prefix: file storage, limits by age ([DefaultDLQMaxAge]),
// replicas as given.
func DLQSpec(prefix string, replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        DLQStream,
		Description: "arrwcdc dead letters",
		Subjects:    []string{DLQSubjects(prefix)},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      DefaultDLQMaxAge,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		Replicas:    max(replicas, 1),
		Duplicates:  2 * time.Minute,
	}
}

// EnsureDLQ creates the dead-letter stream [DLQStream] for prefix if it
// does not exist, with [DLQSpec] and the replicas of the [DefaultStream]
// (1 if it cannot be read). An existing stream is kept as it is, except
// that the subjects of prefix are added when it does not capture them yet
// (one stream serves every prefix of the account). [Consume] calls it
// unless [NoDeadLetter] is given; it is safe to call concurrently.
//
// Errors: a bad prefix wraps [subjects.ErrInvalidPrefix]; JetStream errors
// are wrapped.
func EnsureDLQ(ctx context.Context, js jetstream.JetStream, prefix string) (jetstream.Stream, error) {
	if err := subjects.ValidatePrefix(prefix); err != nil {
		return nil, fmt.Errorf("subscriber: dead-letter stream: %w", err)
	}
	return ensureDLQ(ctx, js, prefix, DefaultStream)
}

func ensureDLQ(ctx context.Context, js jetstream.JetStream, prefix, events string) (jetstream.Stream, error) {
	replicas := 1
	if st, err := js.Stream(ctx, events); err == nil {
		replicas = st.CachedInfo().Config.Replicas
	}
	want := DLQSpec(prefix, replicas)
	subject := want.Subjects[0]
	st, err := js.CreateStream(ctx, want)
	if err == nil {
		return st, nil
	}
	if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return nil, fmt.Errorf("subscriber: create stream %s: %w", DLQStream, err)
	}
	st, err = js.Stream(ctx, DLQStream)
	if err != nil {
		return nil, fmt.Errorf("subscriber: stream %s: %w", DLQStream, err)
	}
	cfg := st.CachedInfo().Config
	probe := DLQSubjectPrefix + "." + prefix + ".library.x.entity.action"
	if slices.ContainsFunc(cfg.Subjects, func(p string) bool { return subjects.MatchPattern(p, probe) }) {
		return st, nil
	}
	cfg.Subjects = append(cfg.Subjects, subject)
	st, err = js.UpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("subscriber: add %s to stream %s: %w", subject, DLQStream, err)
	}
	return st, nil
}

// settle acknowledges, retries or dead-letters a message of a durable
// consumer once its handler returned err.
func (s *Subscription) settle(m jetstream.Msg, d *Delivery, err error) {
	switch {
	case err == nil: // handled, or rejected by Filter.Match
		s.ack(m)
	case s.runCtx.Err() != nil:
		// Stopping hard: the handler's ctx was cancelled. Not a failure of
		// the event; it comes again at once.
		s.giveBack(m)
	case d.Attempt >= s.opts.maxDeliver:
		s.deadLetter(m, d.ID, err.Error(), zap.Int("attempt", d.Attempt), zap.Error(err))
	default:
		delay := s.opts.backoffFor(d.Attempt)
		if nerr := m.NakWithDelay(delay); nerr != nil && !ackGone(nerr) {
			s.log.Warn("retry", deliveryFields(d, zap.Error(nerr))...)
			return
		}
		s.retried.Add(1)
		s.log.Debug("retry", deliveryFields(d, zap.Int("attempt", d.Attempt), zap.Duration("delay", delay))...)
	}
}

// settleInvalid terminates an invalid message of a durable consumer, so
// that it is never delivered again, dead-lettering it first with
// DeadLetterInvalid.
func (s *Subscription) settleInvalid(m jetstream.Msg, cause error) {
	reason := "invalid: " + cause.Error()
	if s.opts.deadLetterInvalid {
		s.deadLetter(m, "", reason, zap.Error(cause))
		return
	}
	if err := m.TermWithReason(oneLine(reason, 256)); err != nil && !ackGone(err) {
		s.log.Warn("terminate invalid message", zap.Error(err))
	}
}

// deadLetter publishes m to the dead-letter stream with reason, then
// terminates it. If the publish fails, m is given back with the backoff
// delay, to be tried again; with NoDeadLetter it is only terminated.
func (s *Subscription) deadLetter(m jetstream.Msg, eventID, reason string, fields ...zap.Field) {
	fields = append(fields, zap.String("subject", m.Subject()), zap.String("event_id", eventID))
	meta, merr := m.Metadata()
	if merr != nil {
		meta = &jetstream.MsgMetadata{Stream: s.js.stream, Consumer: s.js.consumer}
	}
	fields = append(fields, zap.Uint64("seq", meta.Sequence.Stream))
	if !s.opts.deadLetter {
		if err := m.TermWithReason(oneLine(reason, 256)); err != nil && !ackGone(err) {
			s.log.Warn("terminate", append(fields, zap.NamedError("term_error", err))...)
		}
		s.log.Error("event dropped after its last delivery", fields...)
		return
	}
	dl := s.deadLetterMsg(m, meta, eventID, reason)
	ctx, cancel := context.WithTimeout(s.runCtx, dlqPublishTimeout)
	defer cancel()
	msgID := fmt.Sprintf("%s-%s-%d", meta.Stream, meta.Consumer, meta.Sequence.Stream)
	if _, err := s.js.js.PublishMsg(ctx, dl, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(DLQStream)); err != nil {
		s.log.Error("dead-letter publish failed; the event comes again", append(fields, zap.NamedError("publish_error", err))...)
		if nerr := m.NakWithDelay(s.opts.backoffFor(int(meta.NumDelivered))); nerr != nil && !ackGone(nerr) {
			s.log.Warn("retry", zap.Error(nerr))
		}
		return
	}
	s.deadLettered.Add(1)
	if err := m.TermWithReason("dead-lettered"); err != nil && !ackGone(err) {
		s.log.Warn("terminate dead letter", append(fields, zap.NamedError("term_error", err))...)
	}
	s.log.Warn("event dead-lettered", fields...)
}

// deadLetterMsg builds the dead letter of m: same body, the original
// headers but the Nats-* ones, and the Arrwcdc-Dlq-* headers.
func (s *Subscription) deadLetterMsg(m jetstream.Msg, meta *jetstream.MsgMetadata, eventID, reason string) *nats.Msg {
	dl := nats.NewMsg(DLQSubjectPrefix + "." + m.Subject())
	for k, v := range m.Headers() {
		if strings.HasPrefix(strings.ToLower(k), "nats-") {
			continue
		}
		dl.Header[k] = slices.Clone(v)
	}
	dl.Data = m.Data()
	if eventID == "" {
		eventID = m.Headers().Get(nats.MsgIdHdr)
	}
	dl.Header.Set(HeaderDLQReason, oneLine(reason, maxReasonLen))
	dl.Header.Set(HeaderDLQSubject, m.Subject())
	dl.Header.Set(HeaderDLQStream, meta.Stream)
	dl.Header.Set(HeaderDLQSeq, strconv.FormatUint(meta.Sequence.Stream, 10))
	dl.Header.Set(HeaderDLQConsumer, meta.Consumer)
	dl.Header.Set(HeaderDLQAttempts, strconv.FormatUint(meta.NumDelivered, 10))
	dl.Header.Set(HeaderDLQTime, time.Now().UTC().Format(time.RFC3339Nano))
	if eventID != "" {
		dl.Header.Set(HeaderDLQEventID, oneLine(eventID, maxReasonLen))
	}
	return dl
}

// oneLine makes s fit a header value: control characters become spaces,
// and it is cut at n bytes on a rune boundary.
func oneLine(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
