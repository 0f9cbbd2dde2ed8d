package subscriber

import (
	"errors"
	"fmt"
	"strings"
	"time"

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
	// workers before NATS drops further ones.
	DefaultPendingLimit = 4096
)

// Upper bounds of the options, so that a typo cannot allocate gigabytes.
const (
	maxQueueNameLen = 255
	maxConcurrency  = 1024
	maxWorkerQueue  = 1 << 20
	maxPendingLimit = 1 << 24
)

// Option configures [Subscribe]. An option with a bad value makes Subscribe
// fail with an error wrapping [ErrInvalidOption].
type Option func(*options) error

type options struct {
	prefix         string
	queue          string
	concurrency    int
	workerQueue    int
	pendingLimit   int
	handlerTimeout time.Duration
	maxEventSize   int
	log            *zap.Logger
}

func defaultOptions() options {
	return options{
		prefix:       subjects.DefaultPrefix,
		concurrency:  1,
		workerQueue:  DefaultWorkerQueue,
		pendingLimit: DefaultPendingLimit,
		maxEventSize: event.DefaultMaxSize,
		log:          zap.NewNop(),
	}
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
func Queue(name string) Option {
	return func(o *options) error {
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
// while the workers are busy (default [DefaultPendingLimit]); beyond that,
// NATS drops messages and [Stats.Dropped] counts them. The buffer is
// allocated up front (8 bytes a message); the memory it can hold is bounded
// by n times the server's max payload. n must be 1 to 2^24.
func PendingLimit(n int) Option {
	return func(o *options) error {
		if n < 1 || n > maxPendingLimit {
			return fmt.Errorf("%w: PendingLimit(%d): want 1 to %d", ErrInvalidOption, n, maxPendingLimit)
		}
		o.pendingLimit = n
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
