package subscriber

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultStream is the stream [Consume] and [Replay] read: the EVENTS
// stream that the broker provisions (broker.StreamName).
const DefaultStream = "EVENTS"

// Stream makes [Consume] or [Replay] read the stream name instead of
// [DefaultStream].
func Stream(name string) Option {
	return func(o *options) error {
		o.restrict("Stream", modeDurable|modeReplay)
		if err := validName(name); err != nil {
			return fmt.Errorf("%w: Stream(%q): %w", ErrInvalidOption, name, err)
		}
		o.stream = name
		return nil
	}
}

// setDeliver records one deliver option; a second one is a conflict.
func (o *options) setDeliver(name string, p jetstream.DeliverPolicy) error {
	o.restrict(name, modeDurable|modeReplay)
	if o.deliverBy != "" && o.deliverBy != name {
		return fmt.Errorf("%w: %s conflicts with %s: give one start position", ErrInvalidOption, name, o.deliverBy)
	}
	o.deliverBy = name
	o.deliver = p
	return nil
}

// DeliverAll starts at the first event the stream holds: the default of
// [Consume] and [Replay].
//
// With [Consume], the start position applies when the durable consumer is
// created; an existing durable consumer resumes where it left off,
// whatever the start option.
func DeliverAll() Option {
	return func(o *options) error { return o.setDeliver("DeliverAll", jetstream.DeliverAllPolicy) }
}

// DeliverNew starts with the events stored after the consumer is created:
// none of the history. See [DeliverAll] about existing durable consumers.
func DeliverNew() Option {
	return func(o *options) error { return o.setDeliver("DeliverNew", jetstream.DeliverNewPolicy) }
}

// StartSeq starts at stream sequence seq (>= 1): the first event delivered
// is the one stored at seq, or the next one that the filter selects. See
// [DeliverAll] about existing durable consumers.
func StartSeq(seq uint64) Option {
	return func(o *options) error {
		if seq == 0 {
			return fmt.Errorf("%w: StartSeq(0): stream sequences start at 1 (DeliverAll for everything)", ErrInvalidOption)
		}
		if err := o.setDeliver("StartSeq", jetstream.DeliverByStartSequencePolicy); err != nil {
			return err
		}
		o.startSeq = seq
		return nil
	}
}

// StartTime starts with the first event the stream stored at or after t
// (the time the broker stored it, not the event's timestamp). t must not
// be zero. See [DeliverAll] about existing durable consumers.
func StartTime(t time.Time) Option {
	return func(o *options) error {
		if t.IsZero() {
			return fmt.Errorf("%w: StartTime: zero time", ErrInvalidOption)
		}
		if err := o.setDeliver("StartTime", jetstream.DeliverByStartTimePolicy); err != nil {
			return err
		}
		o.startTime = t
		return nil
	}
}

// MaxDeliver sets how many times [Consume] delivers an event whose handler
// fails (default [DefaultMaxDeliver]): when the handler fails on the n-th
// delivery or a later one, the event is dead-lettered. 1 means no retry.
// n must be 1 to 2^20.
func MaxDeliver(n int) Option {
	return func(o *options) error {
		o.restrict("MaxDeliver", modeDurable)
		if n < 1 || n > maxMaxDeliver {
			return fmt.Errorf("%w: MaxDeliver(%d): want 1 to %d", ErrInvalidOption, n, maxMaxDeliver)
		}
		o.maxDeliver = n
		return nil
	}
}

// Backoff sets the delays before the retries of a failed event on a
// [Consume] subscription (default [DefaultBackoff]): after the k-th
// delivery fails, the event comes again after delays[k-1], the last delay
// repeating. Each delay must be 0 to 24 h; 1 to 64 delays.
func Backoff(delays ...time.Duration) Option {
	return func(o *options) error {
		o.restrict("Backoff", modeDurable)
		if len(delays) == 0 || len(delays) > maxBackoffSteps {
			return fmt.Errorf("%w: Backoff: want 1 to %d delays, got %d", ErrInvalidOption, maxBackoffSteps, len(delays))
		}
		for _, d := range delays {
			if d < 0 || d > 24*time.Hour {
				return fmt.Errorf("%w: Backoff: delay %v: want 0 to 24h", ErrInvalidOption, d)
			}
		}
		o.backoff = append([]time.Duration(nil), delays...)
		return nil
	}
}

// AckWait sets how long the server waits for a [Consume] subscription to
// settle an event it delivered before delivering it again, to this
// subscription or another one of the durable (default [DefaultAckWait]).
// A handler that runs longer keeps its event (the subscription tells the
// server it is in progress), but the time an event waits in the
// subscription before its handler starts counts: up to [MaxAckPending]
// handler calls, spread over the [Concurrency] workers, must fit in d, or
// waiting events are delivered again (and handled twice). d must be 1 s
// to 24 h.
func AckWait(d time.Duration) Option {
	return func(o *options) error {
		o.restrict("AckWait", modeDurable)
		if d < time.Second || d > 24*time.Hour {
			return fmt.Errorf("%w: AckWait(%v): want 1s to 24h", ErrInvalidOption, d)
		}
		o.ackWait = d
		return nil
	}
}

// MaxAckPending sets how many events of the durable consumer may be
// delivered and not yet settled, across all its subscriptions (default
// [DefaultMaxAckPending]); the server sends no more until some are
// settled. MaxAckPending(1) handles the events one at a time in stream
// order, retries included, whatever the number of subscriptions. n must
// be 1 to 2^20.
func MaxAckPending(n int) Option {
	return func(o *options) error {
		o.restrict("MaxAckPending", modeDurable)
		if n < 1 || n > maxAckPending {
			return fmt.Errorf("%w: MaxAckPending(%d): want 1 to %d", ErrInvalidOption, n, maxAckPending)
		}
		o.maxAckPending = n
		return nil
	}
}

// NoDeadLetter makes [Consume] drop an event whose handler failed
// [MaxDeliver] times (it is logged and terminated) instead of publishing
// it to the dead-letter stream; Consume then does not create that stream.
func NoDeadLetter() Option {
	return func(o *options) error {
		o.restrict("NoDeadLetter", modeDurable)
		o.deadLetter = false
		return nil
	}
}

// DeadLetterInvalid makes [Consume] also dead-letter messages that are not
// valid events, with a reason starting "invalid: ". Without it they are
// counted, logged and terminated (never delivered again).
func DeadLetterInvalid() Option {
	return func(o *options) error {
		o.restrict("DeadLetterInvalid", modeDurable)
		o.deadLetterInvalid = true
		return nil
	}
}

// backoffFor returns the delay after the attempt-th delivery failed.
func (o *options) backoffFor(attempt int) time.Duration {
	if len(o.backoff) == 0 {
		return 0
	}
	i := min(max(attempt, 1), len(o.backoff)) - 1
	return o.backoff[i]
}
