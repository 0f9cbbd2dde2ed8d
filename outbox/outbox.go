package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/event"
)

var (
	// ErrFull is wrapped by the error of Add when the outbox holds
	// [WithMaxRows] rows: the event was not written, and the caller's
	// transaction should roll back (or go on without the event, knowingly).
	ErrFull = errors.New("outbox: full")
	// ErrDuplicateID is wrapped by the error of Add when a row with the
	// event's id is already waiting in the outbox. On PostgreSQL the
	// caller's transaction is then aborted, as after any failed statement.
	ErrDuplicateID = errors.New("outbox: duplicate event id")
)

// Outbox writes events into a table of the caller's database, in the
// caller's transactions; a [Relay] publishes them. Create one with [New];
// it is safe for concurrent use.
type Outbox struct {
	db      *sql.DB
	dialect Dialect
	table   string
	q       queries
	maxRows int64
	prefix  string
	source  string
	maxSize int
	log     *zap.Logger

	relayed atomic.Uint64 // events acknowledged and deleted by this process's relays
	errs    atomic.Uint64 // publishes that failed and will be retried

	mu     sync.Mutex
	relays map[chan struct{}]struct{} // wake channels of the running relays

	// writeTurn serializes this process's SQLite writers that go through
	// Tx and the relays' deletes (see Tx).
	writeTurn chan struct{}
}

// Stats is a snapshot of an outbox. Depth, OldestAge and Dead are read
// from the database, so they cover every process; Relayed and Retries
// count what this process's relays did since [New].
type Stats struct {
	// Depth is the number of rows waiting to be published.
	Depth int64
	// OldestAge is how long the oldest waiting row has waited; 0 when the
	// outbox is empty.
	OldestAge time.Duration
	// Dead is the number of rows in the dead-letter table: events that can
	// never be published as they are (see the package doc).
	Dead int64
	// Relayed counts events published, acknowledged and deleted.
	Relayed uint64
	// Retries counts publishes that failed (broker unreachable, no ack in
	// time…) and are retried.
	Retries uint64
}

// New returns an Outbox on db, which the caller keeps owning. It does not
// touch the database: call [Outbox.Migrate] once to create the table. It
// returns an error wrapping [ErrInvalidOption] for a bad option, a nil db
// or an unknown dialect.
func New(db *sql.DB, dialect Dialect, opts ...Option) (*Outbox, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if db == nil {
		return nil, fmt.Errorf("%w: nil *sql.DB", ErrInvalidOption)
	}
	if !dialect.valid() {
		return nil, fmt.Errorf("%w: dialect %v", ErrInvalidOption, dialect)
	}
	return &Outbox{
		db:        db,
		dialect:   dialect,
		table:     o.table,
		q:         dialect.queries(o.table),
		maxRows:   o.maxRows,
		prefix:    o.prefix,
		source:    o.source,
		maxSize:   o.maxSize,
		log:       o.log.Named("outbox").With(zap.String("table", o.table)),
		relays:    make(map[chan struct{}]struct{}),
		writeTurn: make(chan struct{}, 1),
	}, nil
}

// Table returns the outbox table's name.
func (o *Outbox) Table() string { return o.table }

// Dialect returns the outbox's dialect.
func (o *Outbox) Dialect() Dialect { return o.dialect }

// Migrate creates the outbox table and its dead-letter table if they do
// not exist. It is idempotent; on PostgreSQL concurrent calls from several
// processes are serialized by an advisory lock.
func (o *Outbox) Migrate(ctx context.Context) error {
	tx, err := o.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("outbox: migrate: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if o.dialect == PostgreSQL {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey(o.table)); err != nil {
			return fmt.Errorf("outbox: migrate: %w", err)
		}
	}
	for _, stmt := range o.dialect.schema(o.table) {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("outbox: migrate %s: %w", o.table, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("outbox: migrate: %w", err)
	}
	return nil
}

// Add writes ev into the outbox inside tx, the caller's transaction, and
// returns the event's id. The event is published only if tx commits; a
// rollback leaves nothing to publish.
//
// Like [publisher.Publisher.Publish], Add fills an empty ID (a UUIDv7
// from [event.NewID]), Source ([WithSource]) and Timestamp (now), then
// validates and encodes the event. Errors: an event unfit for the bus
// wraps [event.ErrInvalid] or [event.ErrTooLarge] and nothing is written;
// [ErrFull] when the outbox holds [WithMaxRows] rows; [ErrDuplicateID]
// when a row with the same id is waiting; otherwise the database's error.
// After an error the caller should roll tx back.
//
// After tx commits, [Outbox.Notify] wakes the relays of this process at
// once instead of at their next poll.
func (o *Outbox) Add(ctx context.Context, tx *sql.Tx, ev event.Event) (string, error) {
	if tx == nil {
		return "", errors.New("outbox: add: nil *sql.Tx")
	}
	payload, subject, err := o.prepare(&ev)
	if err != nil {
		return "", err
	}
	args := []any{ev.ID, subject, payload, o.dialect.timeArg(time.Now())}
	err = o.insert(ctx, tx, args)
	if uniqueViolation(err) {
		return "", fmt.Errorf("%w: %s", ErrDuplicateID, ev.ID)
	}
	if err != nil {
		return "", err
	}
	return ev.ID, nil
}

// insert writes one row unless the outbox holds maxRows rows. The id span
// is an upper bound of the row count (ids have gaps where rows were
// rolled back or relayed out of order); only when it reaches the limit are
// the rows counted.
func (o *Outbox) insert(ctx context.Context, tx *sql.Tx, args []any) error {
	res, err := tx.ExecContext(ctx, o.q.insertIfRoom, append(args[:len(args):len(args)], o.maxRows)...)
	if err != nil {
		return o.addErr(args, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return o.addErr(args, err)
	} else if n == 1 {
		return nil
	}
	var rows int64
	if err := tx.QueryRowContext(ctx, o.q.count).Scan(&rows); err != nil {
		return o.addErr(args, err)
	}
	if rows >= o.maxRows {
		return fmt.Errorf("%w: %d rows waiting, limit %d", ErrFull, rows, o.maxRows)
	}
	if _, err := tx.ExecContext(ctx, o.q.insert, args...); err != nil {
		return o.addErr(args, err)
	}
	return nil
}

func (o *Outbox) addErr(args []any, err error) error {
	return fmt.Errorf("outbox: add %s: %w", args[0], err)
}

// AddDB is Add in a transaction of its own (see [Outbox.Tx]), for callers
// whose change does not live in the outbox's database — typically a
// publisher that buffers its events in a local SQLite file so that they
// survive broker outages and restarts.
func (o *Outbox) AddDB(ctx context.Context, ev event.Event) (string, error) {
	var id string
	err := o.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		id, err = o.Add(ctx, tx, ev)
		return err
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// Tx runs fn in a transaction on the outbox's database and commits it if
// fn returns nil (it rolls back otherwise and returns fn's error), then
// wakes the relays of this process ([Outbox.Notify]). fn does the
// application's change and calls [Outbox.Add] with tx.
//
// On SQLite, Tx also takes turns with the relays of this process for the
// database's single write lock, first come first served. SQLite's own
// busy handler is not fair: a goroutine that commits back to back can
// keep a relay from deleting what it published for long stretches, and
// concurrent writers waste time sleeping between retries. Writers that
// use Tx (or AddDB) instead of their own transactions avoid both.
func (o *Outbox) Tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if o.dialect == SQLite {
		if err := o.lockWrite(ctx); err != nil {
			return fmt.Errorf("outbox: tx: %w", err)
		}
		defer o.unlockWrite()
	}
	tx, err := o.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("outbox: tx: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("outbox: tx: commit: %w", err)
	}
	o.Notify()
	return nil
}

// lockWrite takes the outbox's in-process write turn, or returns ctx's
// error. The channel is a mutex whose waiters can give up.
func (o *Outbox) lockWrite(ctx context.Context) error {
	select {
	case o.writeTurn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (o *Outbox) unlockWrite() { <-o.writeTurn }

// prepare fills ev's empty fields as the publisher does, validates and
// encodes it.
func (o *Outbox) prepare(ev *event.Event) (payload []byte, subject string, err error) {
	ev.Fill(o.source)
	payload, err = event.Encode(ev, o.maxSize) // validates
	if err != nil {
		return nil, "", fmt.Errorf("outbox: add: %w", err)
	}
	subject, err = ev.Subject(o.prefix)
	if err != nil { // Encode validated type and library id
		return nil, "", fmt.Errorf("outbox: add: %w: %w", event.ErrInvalid, err)
	}
	return payload, subject, nil
}

// Notify wakes every relay of this outbox running in this process, so
// that an event committed a moment ago is published now rather than at the
// next poll. It never blocks; call it after committing a transaction that
// called Add. (Add cannot do it itself: the row is invisible to the relay
// until the caller commits.)
func (o *Outbox) Notify() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for ch := range o.relays {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (o *Outbox) register(ch chan struct{}) {
	o.mu.Lock()
	o.relays[ch] = struct{}{}
	o.mu.Unlock()
}

func (o *Outbox) unregister(ch chan struct{}) {
	o.mu.Lock()
	delete(o.relays, ch)
	o.mu.Unlock()
}

// Stats reads the depth, the oldest row's age and the dead-letter count
// from the database and adds this process's counters.
func (o *Outbox) Stats(ctx context.Context) (Stats, error) {
	s := Stats{Relayed: o.relayed.Load(), Retries: o.errs.Load()}
	if err := o.db.QueryRowContext(ctx, o.q.count).Scan(&s.Depth); err != nil {
		return s, fmt.Errorf("outbox: stats: %w", err)
	}
	var created any
	switch err := o.db.QueryRowContext(ctx, o.q.oldest).Scan(&created); {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return s, fmt.Errorf("outbox: stats: %w", err)
	default:
		t, err := scanTime(created)
		if err != nil {
			return s, fmt.Errorf("outbox: stats: %w", err)
		}
		s.OldestAge = max(time.Since(t), 0)
	}
	if err := o.db.QueryRowContext(ctx, o.q.deadN).Scan(&s.Dead); err != nil {
		return s, fmt.Errorf("outbox: stats: %w", err)
	}
	return s, nil
}
