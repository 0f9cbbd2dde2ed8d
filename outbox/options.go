package outbox

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/subjects"
)

// Defaults of the options.
const (
	// DefaultTable is the outbox table's name. Its dead-letter table is
	// the same name plus "_dead".
	DefaultTable = "arrwcdc_outbox"
	// DefaultMaxRows bounds the outbox: Add fails with [ErrFull] beyond it.
	// A million events of about 300 bytes is about 300 MB.
	DefaultMaxRows = 1_000_000
	// DefaultBatchSize is how many rows a relay claims and publishes at a
	// time. A SQLite relay has at most six batches' worth of publishes
	// awaiting their acks (see [Relay.Run]): 3,072 by default, below the
	// publisher's default [publisher.DefaultMaxPending] of 4,096, so that
	// it never stalls there.
	DefaultBatchSize = 512
	// DefaultPollInterval is how often an idle relay looks for new rows
	// when nobody calls Notify.
	DefaultPollInterval = 100 * time.Millisecond
	// DefaultMinBackoff and DefaultMaxBackoff bound the relay's wait after a
	// failed batch; the wait doubles from min to max and resets after a
	// batch that went through.
	DefaultMinBackoff = 50 * time.Millisecond
	DefaultMaxBackoff = 2 * time.Second

	deadSuffix   = "_dead"
	maxBatchSize = 10_000 // placeholders in one DELETE stay well below both engines' limits
)

// ErrInvalidOption is wrapped by the errors of [New] and [NewRelay] for a
// bad setting; the message names the option and the value.
var ErrInvalidOption = errors.New("outbox: invalid option")

// Option configures an [Outbox]. An Option given a bad value makes [New]
// fail with an error wrapping [ErrInvalidOption].
type Option func(*options) error

type options struct {
	table   string
	maxRows int64
	prefix  string
	source  string
	maxSize int
	log     *zap.Logger
}

func defaultOptions() options {
	return options{
		table:   DefaultTable,
		maxRows: DefaultMaxRows,
		prefix:  subjects.DefaultPrefix,
		source:  event.DefaultSource(),
		maxSize: event.DefaultMaxSize,
		log:     zap.NewNop(),
	}
}

// identifier is a table name, optionally schema-qualified, that is safe to
// splice into SQL: PostgreSQL's 63-byte limit, no quoting needed.
var identifier = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]{0,62}\.)?[A-Za-z_][A-Za-z0-9_]{0,57}$`)

// WithTable sets the outbox table's name, "schema.name" or "name"
// (letters, digits and underscores). The default is "arrwcdc_outbox"; the
// dead-letter table is the name plus "_dead".
func WithTable(name string) Option {
	return func(o *options) error {
		if !identifier.MatchString(name) {
			return fmt.Errorf("%w: WithTable: %q: want [schema.]name of letters, digits and _", ErrInvalidOption, name)
		}
		o.table = name
		return nil
	}
}

// WithMaxRows bounds the number of rows waiting in the outbox; Add fails
// with [ErrFull] when it is reached. The default is [DefaultMaxRows]; n <= 0
// is an error. On PostgreSQL the bound is checked in each writer's own
// transaction, so concurrent writers can overshoot it by their number.
func WithMaxRows(n int64) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("%w: WithMaxRows: %d: must be positive", ErrInvalidOption, n)
		}
		o.maxRows = n
		return nil
	}
}

// WithPrefix sets the subject prefix written into each row's subject
// column, such as "prod.events"; the default is "events". It should match
// the prefix of the [publisher.Publisher] the relay uses, which is the
// one that decides where events are published.
func WithPrefix(prefix string) Option {
	return func(o *options) error {
		if err := subjects.ValidatePrefix(prefix); err != nil {
			return fmt.Errorf("%w: WithPrefix: %w", ErrInvalidOption, err)
		}
		o.prefix = prefix
		return nil
	}
}

// WithSource sets the source written into events that have none, as
// [publisher.WithSource] does; the default is the host name. "" leaves
// the source empty, and the relay's publisher then fills in its own.
func WithSource(source string) Option {
	return func(o *options) error {
		if err := event.ValidateSource(source); err != nil {
			return fmt.Errorf("%w: WithSource: %w", ErrInvalidOption, err)
		}
		o.source = source
		return nil
	}
}

// WithMaxEventSize sets the largest encoded event, in bytes; Add rejects a
// larger one with an error wrapping [event.ErrTooLarge]. The default is
// [event.DefaultMaxSize] (1 MiB); n <= 0 is an error. Keep it no larger
// than the publisher's [publisher.WithMaxEventSize], or the relay has to
// dead-letter the events between the two limits.
func WithMaxEventSize(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("%w: WithMaxEventSize: %d: must be positive", ErrInvalidOption, n)
		}
		o.maxSize = n
		return nil
	}
}

// WithLogger sets the logger of the outbox and its relays; nil means
// zap.NewNop().
func WithLogger(log *zap.Logger) Option {
	return func(o *options) error {
		if log == nil {
			log = zap.NewNop()
		}
		o.log = log
		return nil
	}
}

// RelayOption configures a [Relay]. An option given a bad value makes
// [NewRelay] fail with an error wrapping [ErrInvalidOption].
type RelayOption func(*relayOptions) error

type relayOptions struct {
	batch      int
	poll       time.Duration
	minBackoff time.Duration
	maxBackoff time.Duration
}

func defaultRelayOptions() relayOptions {
	return relayOptions{
		batch:      DefaultBatchSize,
		poll:       DefaultPollInterval,
		minBackoff: DefaultMinBackoff,
		maxBackoff: DefaultMaxBackoff,
	}
}

// WithBatchSize sets how many rows the relay claims and publishes at a
// time. The default is 512; n must be 1 to 10,000. A PostgreSQL relay
// waits for a batch's acks and deletes it before it claims the next, and
// holds that many rows locked meanwhile; a SQLite relay publishes the next
// batches while the earlier ones await their acks, up to six batches'
// worth in all, so keep n at most a sixth of the publisher's
// [publisher.WithMaxPending] (or raise that), or PublishAsync blocks.
func WithBatchSize(n int) RelayOption {
	return func(o *relayOptions) error {
		if n < 1 || n > maxBatchSize {
			return fmt.Errorf("%w: WithBatchSize: %d: want 1 to %d", ErrInvalidOption, n, maxBatchSize)
		}
		o.batch = n
		return nil
	}
}

// WithPollInterval sets how often an idle relay looks for new rows; a
// [Relay.Notify] or [Outbox.Notify] wakes it at once. The default is
// 100 ms; d <= 0 is an error.
func WithPollInterval(d time.Duration) RelayOption {
	return func(o *relayOptions) error {
		if d <= 0 {
			return fmt.Errorf("%w: WithPollInterval: %v: must be positive", ErrInvalidOption, d)
		}
		o.poll = d
		return nil
	}
}

// WithBackoff sets the relay's wait after a failed batch: it starts at
// minWait, doubles after each failure up to maxWait and resets after a
// batch that went through. The default is 50 ms to 2 s; both must be
// positive and minWait <= maxWait.
func WithBackoff(minWait, maxWait time.Duration) RelayOption {
	return func(o *relayOptions) error {
		if minWait <= 0 || maxWait < minWait {
			return fmt.Errorf("%w: WithBackoff: %v, %v: want 0 < min <= max", ErrInvalidOption, minWait, maxWait)
		}
		o.minBackoff, o.maxBackoff = minWait, maxWait
		return nil
	}
}
