package publisher

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/subjects"
)

// Defaults of the options.
const (
	// DefaultTimeout bounds a Publish whose context has no deadline, the
	// wait for each async ack, and a PublishAsync blocked by MaxPending.
	DefaultTimeout = 5 * time.Second
	// DefaultMaxPending is the number of async publishes that may await
	// their ack at once.
	DefaultMaxPending = 4096
	// defaultCESource is the ce-source header of events without a source.
	defaultCESource = "arrwcdc"
)

// ErrInvalidOption is wrapped by the errors of [New] and [NewHooks] for a
// bad setting; the message names the option and the value.
var ErrInvalidOption = errors.New("publisher: invalid option")

// Option configures a [Publisher]. An Option that is given a bad value
// makes [New] fail with an error wrapping [ErrInvalidOption].
type Option func(*options) error

type options struct {
	prefix     string
	source     string
	timeout    time.Duration
	maxSize    int
	maxPending int
	core       bool
	log        *zap.Logger
}

func defaultOptions() options {
	return options{
		prefix:     subjects.DefaultPrefix,
		source:     event.DefaultSource(),
		timeout:    DefaultTimeout,
		maxSize:    event.DefaultMaxSize,
		maxPending: DefaultMaxPending,
		log:        zap.NewNop(),
	}
}

// WithPrefix sets the subject prefix, one or more tokens such as
// "prod.events". The default is "events". It must match the prefix the
// EVENTS stream captures, or Publish fails with no stream to answer.
func WithPrefix(prefix string) Option {
	return func(o *options) error {
		if err := subjects.ValidatePrefix(prefix); err != nil {
			return fmt.Errorf("%w: WithPrefix: %w", ErrInvalidOption, err)
		}
		o.prefix = prefix
		return nil
	}
}

// WithSource sets the source written into events that have none, such as
// "app-1". The default is the host name. "" leaves such events without a
// source (their ce-source header is then "arrwcdc"). The source follows
// the event's rules: at most 256 bytes of UTF-8 without control characters.
func WithSource(source string) Option {
	return func(o *options) error {
		if err := event.ValidateSource(source); err != nil {
			return fmt.Errorf("%w: WithSource: %w", ErrInvalidOption, err)
		}
		o.source = source
		return nil
	}
}

// WithDefaultTimeout bounds a Publish whose context has no deadline (a
// deadline of the context always wins), the wait for each async ack, and
// how long PublishAsync blocks while [WithMaxPending] publishes are in
// flight. The default is 5 s; d <= 0 is an error.
func WithDefaultTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("%w: WithDefaultTimeout: %v: must be positive", ErrInvalidOption, d)
		}
		o.timeout = d
		return nil
	}
}

// WithMaxEventSize sets the largest encoded event, in bytes; a larger one
// is rejected with an error wrapping [event.ErrTooLarge]. The default is
// [event.DefaultMaxSize] (1 MiB); n <= 0 is an error. Keep it below the
// server's max_payload minus room for the headers.
func WithMaxEventSize(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("%w: WithMaxEventSize: %d: must be positive", ErrInvalidOption, n)
		}
		o.maxSize = n
		return nil
	}
}

// WithMaxPending sets how many async publishes may await their ack at
// once; PublishAsync blocks beyond that. The default is 4096; n <= 0 is an
// error.
func WithMaxPending(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("%w: WithMaxPending: %d: must be positive", ErrInvalidOption, n)
		}
		o.maxPending = n
		return nil
	}
}

// WithCoreNATS publishes over core NATS, fire-and-forget: no JetStream
// ack, so [Ack.Seq] is 0 and an event can be lost without an error (the
// EVENTS stream still stores what reaches it). Use it only where losing
// events is acceptable; the default is JetStream with acks.
func WithCoreNATS() Option {
	return func(o *options) error {
		o.core = true
		return nil
	}
}

// WithLogger sets the logger; nil means zap.NewNop().
func WithLogger(log *zap.Logger) Option {
	return func(o *options) error {
		if log == nil {
			log = zap.NewNop()
		}
		o.log = log
		return nil
	}
}
