package subscriber

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/subjects"
)

// ErrInvalidOption is wrapped by the error [Subscribe] returns for an
// option with a bad value.
var ErrInvalidOption = errors.New("subscriber: invalid option")

// Defaults of the options.
const (
	// DefaultWorkerQueue is the capacity of each worker's queue.
	DefaultWorkerQueue = 256
	// DefaultPendingLimit is how many messages wait between NATS and the
	// workers before NATS drops further ones ([Subscribe]).
	DefaultPendingLimit = 4096
	// DefaultJetStreamPending is how many messages wait between a
	// JetStream consumer and the workers ([Consume], [Replay]); the
	// consumer waits while it is full.
	DefaultJetStreamPending = 256
	// DefaultMaxDeliver is how many times [Consume] delivers an event
	// whose handler fails before dead-lettering it.
	DefaultMaxDeliver = 5
	// DefaultAckWait is how long the server waits for a [Consume]
	// subscription to settle an event before delivering it again.
	DefaultAckWait = 30 * time.Second
	// DefaultMaxAckPending is how many events of a durable consumer may be
	// delivered and not yet settled, across all its subscriptions. It
	// bounds how long an event waits in a subscription before its handler
	// runs: 256 handler calls of 100 ms on one worker fit in the default
	// [AckWait].
	DefaultMaxAckPending = 256
)

// DefaultBackoff is the delay before each retry of a failed event on a
// [Consume] subscription: the k-th retry waits DefaultBackoff[k-1], the
// last value repeating.
var DefaultBackoff = []time.Duration{time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second, time.Minute}

// Upper bounds of the options, so that a typo cannot allocate gigabytes.
const (
	maxQueueNameLen = 255
	maxConcurrency  = 1024
	maxWorkerQueue  = 1 << 20
	maxPendingLimit = 1 << 24
	maxMaxDeliver   = 1 << 20
	maxBackoffSteps = 64
	maxAckPending   = 1 << 20
)

// Option configures [Subscribe], [Consume] or [Replay]. An option with a
// bad value, or one that the entry point does not take, makes it fail with
// an error wrapping [ErrInvalidOption].
type Option func(*options) error

// mode is the kind of subscription an entry point makes.
type mode uint8

const (
	modeCore    mode = 1 << iota // Subscribe: core NATS
	modeDurable                  // Consume: durable JetStream consumer
	modeReplay                   // Replay: ordered ephemeral consumer
)

func (m mode) entryPoint() string {
	switch m {
	case modeDurable:
		return "Consume"
	case modeReplay:
		return "Replay"
	default:
		return "Subscribe"
	}
}

// restriction records an option that only some entry points take.
type restriction struct {
	option string
	modes  mode
}

type options struct {
	prefix          string
	queue           string
	concurrency     int
	workerQueue     int
	pendingLimit    int
	pendingLimitSet bool
	handlerTimeout  time.Duration
	maxEventSize    int
	log             *zap.Logger

	// JetStream (Consume, Replay)
	stream    string
	deliver   jetstream.DeliverPolicy
	startSeq  uint64
	startTime time.Time
	deliverBy string // the deliver option given, for conflicts

	// Consume only
	maxDeliver        int
	backoff           []time.Duration
	ackWait           time.Duration
	maxAckPending     int
	deadLetter        bool
	deadLetterInvalid bool

	restricted []restriction
}

func defaultOptions() options {
	return options{
		prefix:        subjects.DefaultPrefix,
		concurrency:   1,
		workerQueue:   DefaultWorkerQueue,
		pendingLimit:  DefaultPendingLimit,
		maxEventSize:  event.DefaultMaxSize,
		log:           zap.NewNop(),
		stream:        DefaultStream,
		deliver:       jetstream.DeliverAllPolicy,
		maxDeliver:    DefaultMaxDeliver,
		backoff:       DefaultBackoff,
		ackWait:       DefaultAckWait,
		maxAckPending: DefaultMaxAckPending,
		deadLetter:    true,
	}
}

// restrict notes that option is only for the entry points in modes.
func (o *options) restrict(option string, modes mode) {
	o.restricted = append(o.restricted, restriction{option, modes})
}

// apply applies opts for the entry point of m and checks that m takes
// them all.
func (o *options) apply(m mode, opts []Option) error {
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(o); err != nil {
			return err
		}
	}
	for _, r := range o.restricted {
		if r.modes&m == 0 {
			var takers []string
			for _, mm := range []mode{modeCore, modeDurable, modeReplay} {
				if r.modes&mm != 0 {
					takers = append(takers, mm.entryPoint())
				}
			}
			return fmt.Errorf("%w: %s is an option of %s, not of %s", ErrInvalidOption, r.option, strings.Join(takers, " and "), m.entryPoint())
		}
	}
	if m != modeCore && !o.pendingLimitSet {
		o.pendingLimit = DefaultJetStreamPending
	}
	return nil
}

// WithPrefix sets the subject prefix (default "events"): one or more
// dot-separated tokens of [A-Za-z0-9_-]. A bad prefix's error also wraps
// [subjects.ErrInvalidPrefix].
func WithPrefix(prefix string) Option {
	return func(o *options) error {
		if err := subjects.ValidatePrefix(prefix); err != nil {
			return fmt.Errorf("%w: WithPrefix: %w", ErrInvalidOption, err)
		}
		o.prefix = prefix
		return nil
	}
}

// Queue makes the subscription a member of the NATS queue group name:
// every event is handled by one member of the group, so N subscriptions
// (in one process or many) split the load. The name must be non-empty, at
// most 255 bytes, without whitespace or control characters.
//
// Order holds within one member only: two events of one library may be
// handled by different members at the same time.
//
// Only [Subscribe] takes it: subscriptions of [Consume] share the work by
// using the same durable name.
func Queue(name string) Option {
	return func(o *options) error {
		o.restrict("Queue", modeCore)
		if name == "" || len(name) > maxQueueNameLen || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return fmt.Errorf("%w: Queue(%q): want 1 to %d bytes without whitespace or control characters", ErrInvalidOption, name, maxQueueNameLen)
		}
		o.queue = name
		return nil
	}
}

// Concurrency runs the handler on n workers (default 1). The library id
// picks the worker, so events of one library are handled one at a time,
// in order, while up to n libraries are handled in parallel. n must be
// 1 to 1024.
func Concurrency(n int) Option {
	return func(o *options) error {
		if n < 1 || n > maxConcurrency {
			return fmt.Errorf("%w: Concurrency(%d): want 1 to %d", ErrInvalidOption, n, maxConcurrency)
		}
		o.concurrency = n
		return nil
	}
}

// WorkerQueue sets the capacity of each worker's queue (default
// [DefaultWorkerQueue]). When the queue of an event's worker is full,
// reading from NATS waits. n must be 1 to 2^20.
func WorkerQueue(n int) Option {
	return func(o *options) error {
		if n < 1 || n > maxWorkerQueue {
			return fmt.Errorf("%w: WorkerQueue(%d): want 1 to %d", ErrInvalidOption, n, maxWorkerQueue)
		}
		o.workerQueue = n
		return nil
	}
}

// PendingLimit sets how many messages NATS may buffer for the subscription
// while the workers are busy (default [DefaultPendingLimit] for
// [Subscribe], [DefaultJetStreamPending] for [Consume] and [Replay]). On a
// core NATS subscription, NATS drops further messages and [Stats.Dropped]
// counts them; a JetStream consumer waits instead. The buffer is allocated
// up front (24 bytes a message); the memory it can hold is bounded by n
// times the server's max payload. n must be 1 to 2^24.
func PendingLimit(n int) Option {
	return func(o *options) error {
		if n < 1 || n > maxPendingLimit {
			return fmt.Errorf("%w: PendingLimit(%d): want 1 to %d", ErrInvalidOption, n, maxPendingLimit)
		}
		o.pendingLimit = n
		o.pendingLimitSet = true
		return nil
	}
}

// HandlerTimeout gives each handler call a context with deadline d (no
// deadline by default). The handler must still return: the deadline only
// cancels its context. d must be > 0.
func HandlerTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("%w: HandlerTimeout(%v): want > 0", ErrInvalidOption, d)
		}
		o.handlerTimeout = d
		return nil
	}
}

// MaxEventSize sets the largest encoded event accepted (default
// [event.DefaultMaxSize], 1 MiB); larger messages count as invalid.
// n must be >= 1.
func MaxEventSize(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("%w: MaxEventSize(%d): want >= 1", ErrInvalidOption, n)
		}
		o.maxEventSize = n
		return nil
	}
}

// WithLogger sets the logger for invalid messages and failed handlers
// (default none). nil means [zap.NewNop].
func WithLogger(log *zap.Logger) Option {
	return func(o *options) error {
		if log == nil {
			log = zap.NewNop()
		}
		o.log = log
		return nil
	}
}
