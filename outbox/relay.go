package outbox

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/publisher"
)

// ErrRelayRunning is returned by [Relay.Run] when the relay is already
// running.
var ErrRelayRunning = errors.New("outbox: relay already running")

const (
	// batchTimeout bounds the wait for one batch's acks, and one delete
	// transaction (the publisher's own ack timeout, 5 s by default, should
	// be well below it). A batch cut short is sent again later.
	batchTimeout = time.Minute
	// pipelineDepth is how many published batches the SQLite relay lets
	// queue up for their acks while it claims and publishes the next one.
	// Awaiting their acks at once are at most pipelineDepth+2 batches: a
	// full queue, the batch whose acks are awaited, and the batch being
	// published.
	pipelineDepth = 4
	// deleteDepth is how many acknowledged batches may wait for their
	// delete while one commits; beyond it, awaiting acks waits for the
	// disk, and publishing for the acks.
	deleteDepth = 8
	// deleteTerms bounds the placeholders of one DELETE statement.
	deleteTerms = 1000
)

// Relay publishes an outbox's rows in id order and deletes each row once
// JetStream acknowledged its event. Create one with [NewRelay] and call
// [Relay.Run]. With SQLite run one relay per database file; with
// PostgreSQL any number, in any processes.
type Relay struct {
	o       *Outbox
	pub     *publisher.Publisher
	opts    relayOptions
	log     *zap.Logger
	wake    chan struct{}
	running atomic.Bool
	failing bool // the last batch failed; only Run's goroutine uses it
}

// NewRelay returns a relay that publishes o's rows through pub, which the
// caller keeps owning (the relay never closes it). Reusing a Publisher
// keeps the headers (Nats-Msg-Id = event id, the CloudEvents ones) in one
// place. It returns an error wrapping [ErrInvalidOption] for a bad option
// or a nil argument.
func NewRelay(o *Outbox, pub *publisher.Publisher, opts ...RelayOption) (*Relay, error) {
	ro := defaultRelayOptions()
	for _, opt := range opts {
		if err := opt(&ro); err != nil {
			return nil, err
		}
	}
	if o == nil || pub == nil {
		return nil, fmt.Errorf("%w: NewRelay needs an outbox and a publisher", ErrInvalidOption)
	}
	return &Relay{
		o:    o,
		pub:  pub,
		opts: ro,
		log:  o.log.Named("relay"),
		wake: make(chan struct{}, 1),
	}, nil
}

// Notify wakes the relay at once if it is idle. It never blocks.
func (r *Relay) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run relays until ctx ends, then returns nil. It returns at once with
// [ErrRelayRunning] if the relay is already running, and with an error
// wrapping [publisher.ErrClosed] if the publisher is closed under it.
//
// The relay claims up to [WithBatchSize] rows at a time in id order,
// publishes them asynchronously, waits for the acks (each within the
// publisher's default timeout) and deletes the acknowledged rows. On
// SQLite the batches are pipelined: while a batch awaits its acks, the
// next ones are claimed and published (at most six batches await their
// acks at once), and acks are awaited while earlier batches are deleted;
// the rows acknowledged while a delete commits are deleted together in
// the next transaction. On
// PostgreSQL each batch is claimed, published, acknowledged and deleted
// in turn, inside the transaction that holds its row locks.
//
// Rows whose publish failed stay: the relay stops publishing, lets the
// publishes in flight settle, deletes what was acknowledged, waits a
// backoff ([WithBackoff]) and sends the lowest remaining row alone before
// it goes on with whole batches (see "Ordering" in the package doc).
// When ctx ends, Run stops publishing and waiting for acks, deletes the
// rows already acknowledged and returns; the others are sent again by the
// next relay, and the stream's duplicate window drops the repeats.
func (r *Relay) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return ErrRelayRunning
	}
	defer r.running.Store(false)
	r.o.register(r.wake)
	defer r.o.unregister(r.wake)

	backoff := r.opts.minBackoff
	probe := false // the last attempt failed: send one row first
	// Since Go 1.23 Stop and Reset leave no stale tick behind: no draining.
	idle := time.NewTimer(r.opts.poll)
	idle.Stop()
	defer idle.Stop()
	for ctx.Err() == nil {
		var (
			n   int
			err error
		)
		switch {
		case probe:
			n, err = r.round(ctx, 1)
		case r.o.dialect == SQLite:
			n, err = r.pipeline(ctx)
		default:
			n, err = r.round(ctx, r.opts.batch)
		}
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, publisher.ErrClosed):
			return fmt.Errorf("outbox: relay: %w", err)
		case err != nil:
			probe = true
			r.noteFailure(err, backoff)
			idle.Reset(backoff)
			select {
			case <-ctx.Done():
				return nil
			case <-idle.C:
			}
			backoff = min(2*backoff, r.opts.maxBackoff)
			continue
		}
		probe = false
		if r.failing {
			r.failing = false
			r.log.Info("relay recovered")
		}
		backoff = r.opts.minBackoff
		if n > 0 {
			continue // there may be more right behind
		}
		idle.Reset(r.opts.poll)
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
			idle.Stop()
		case <-idle.C:
		}
	}
	return nil
}

// noteFailure logs the first failure of a run of failures as a warning,
// the repeats at debug level.
func (r *Relay) noteFailure(err error, backoff time.Duration) {
	if r.failing {
		r.log.Debug("relay batch failed again", zap.Error(err), zap.Duration("backoff", backoff))
		return
	}
	r.failing = true
	r.log.Warn("relay batch failed; retrying with backoff", zap.Error(err), zap.Duration("backoff", backoff))
}

// row is one claimed outbox row.
type row struct {
	id      int64
	eventID string
	payload []byte
}

// dead is a row that can never be published as it is.
type dead struct {
	id     int64
	reason string
}

// inflight is a row whose event was handed to the publisher.
type inflight struct {
	id int64
	f  *publisher.Future
}

// flight is a claimed batch after publishing: the rows sent, in id order,
// and the rows found unpublishable.
type flight struct {
	sent     []inflight
	dead     []dead
	deadline time.Time // for the acks
}

// round relays one batch of up to limit rows and waits until it is done:
// claim, publish, acks, delete. It returns the number of rows claimed and
// the first publish error, if any; rows acknowledged before or after that
// error are deleted all the same.
func (r *Relay) round(ctx context.Context, limit int) (int, error) {
	// The round's context is not Run's: after a cancellation the round
	// still records the acks it got, so that those events are not sent
	// again needlessly. It only stops waiting for the others.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchTimeout)
	defer cancel()
	var (
		tx  *sql.Tx
		err error
	)
	if r.o.dialect == PostgreSQL {
		// SKIP LOCKED needs the claim to hold its row locks until the
		// batch is done, so the transaction is held while publishing.
		if tx, err = r.o.db.BeginTx(bctx, nil); err != nil {
			return 0, fmt.Errorf("outbox: relay: begin: %w", err)
		}
		defer func() { _ = tx.Rollback() }()
	}
	// The claim itself may stop with Run: nothing is in flight yet.
	claimCtx, stopClaim := context.WithCancel(bctx)
	unhook := context.AfterFunc(ctx, stopClaim)
	rows, err := r.claim(claimCtx, tx, math.MinInt64, limit)
	unhook()
	stopClaim()
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	f, sendErr := r.send(rows, nil)
	acked, ackErr := r.await(ctx, f)
	if err := r.finish(bctx, tx, acked, f.dead); err != nil {
		// The acknowledged rows stay and are sent again: duplicates the
		// stream drops.
		return len(rows), errors.Join(sendErr, ackErr, err)
	}
	r.o.relayed.Add(uint64(len(acked)))
	return len(rows), cmp.Or(sendErr, ackErr)
}

// pipeline drains a SQLite outbox with batches in flight, in three
// stages: this goroutine claims each batch after the previous one (WHERE
// id > the last id claimed) and publishes it; a second awaits the acks of
// the batches sent, in order; a third deletes the acknowledged rows,
// taking whatever was acknowledged while its last transaction committed
// into the next one. At most pipelineDepth batches wait between the first
// two and deleteDepth between the last two. Awaiting acks does not wait
// for the disk, so the broker is kept busy while a delete commits (an
// fsync each), and the deletes keep up however slow the disk is.
//
// It returns when a claim finds no more rows, at the first failure (a
// publish or an ack that failed, a delete that failed) or when ctx ends,
// and always after the other two have settled every batch sent: the
// acknowledged rows are deleted, and the next call claims from the lowest
// id again. It returns the number of rows claimed and the errors.
//
// The cursor is safe on SQLite because one connection writes at a time and
// AUTOINCREMENT ids never go back: a row committed after a claim has a
// higher id than every row that claim saw. (On PostgreSQL a sequence
// hands out ids before commit, so a lower id can become visible later;
// that dialect goes through round, whose claims always start at the
// lowest id.)
func (r *Relay) pipeline(ctx context.Context) (int, error) {
	var halt atomic.Bool // stop publishing: ctx ended or a batch failed
	unhook := context.AfterFunc(ctx, func() { halt.Store(true) })
	defer unhook()
	flights := make(chan *flight, pipelineDepth)
	settled := make(chan error, 1)
	go func() { settled <- r.settle(ctx, flights, &halt) }()

	var (
		claimed int
		after   = int64(math.MinInt64)
		err     error
	)
	for !halt.Load() {
		rows, cerr := r.claim(ctx, nil, after, r.opts.batch)
		if cerr != nil || len(rows) == 0 {
			err = cerr
			break
		}
		claimed += len(rows)
		after = rows[len(rows)-1].id
		f, serr := r.send(rows, &halt)
		flights <- f // settle keeps receiving until the channel closes
		if serr != nil {
			err = serr
			break
		}
	}
	close(flights)
	return claimed, errors.Join(err, <-settled)
}

// settle awaits the acks of each flight in turn and hands the
// acknowledged and the dead rows to a goroutine of its own that deletes
// them (deleteSettled), until flights is closed. At the first failure it
// sets halt, so that nothing more is published, and goes on settling what
// was sent. It returns after every delete, with the first failure and the
// errors of failed deletes.
func (r *Relay) settle(ctx context.Context, flights <-chan *flight, halt *atomic.Bool) error {
	acked := make(chan settled, deleteDepth)
	deleted := make(chan error, 1)
	go func() { deleted <- r.deleteSettled(ctx, acked, halt) }()
	var failure error
	for f := range flights {
		a, err := r.await(ctx, f)
		if err != nil && failure == nil {
			failure = err
			halt.Store(true)
		}
		acked <- settled{acked: a, dead: f.dead}
	}
	close(acked)
	return errors.Join(failure, <-deleted)
}

// settled is a flight's outcome: the rows acknowledged and the dead rows.
type settled struct {
	acked []int64
	dead  []dead
}

// deleteSettled deletes the acknowledged and the dead rows it receives,
// those that queued up while a transaction committed going into the next
// one, until in is closed. A failed delete sets halt; it returns the
// errors of failed deletes.
func (r *Relay) deleteSettled(ctx context.Context, in <-chan settled, halt *atomic.Bool) error {
	var errs error
	for s := range in {
		acked, dead := s.acked, s.dead
	gather:
		for len(acked)+len(dead) < maxBatchSize {
			select {
			case t, ok := <-in:
				if !ok {
					break gather
				}
				acked, dead = append(acked, t.acked...), append(dead, t.dead...)
			default:
				break gather
			}
		}
		// After a cancellation the acks got are still recorded.
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchTimeout)
		err := r.finish(tctx, nil, acked, dead)
		cancel()
		if err != nil {
			// The acknowledged rows stay and are sent again: duplicates
			// the stream drops.
			errs = errors.Join(errs, err)
			halt.Store(true)
			continue
		}
		r.o.relayed.Add(uint64(len(acked)))
	}
	return errs
}

// send decodes (validates) each row's event and publishes its payload
// asynchronously, in id order, until halt is set (nil: never). A row that can never be
// published is set aside as dead. A publish error that is not about the
// event itself ends the batch: the rest would fail the same way (closed
// publisher, closed or stalled connection); the rows not sent stay.
func (r *Relay) send(rows []row, halt *atomic.Bool) (*flight, error) {
	f := &flight{sent: make([]inflight, 0, len(rows)), deadline: time.Now().Add(batchTimeout)}
	for _, rw := range rows {
		if halt != nil && halt.Load() {
			break
		}
		ev, err := event.Decode(rw.payload, r.o.maxSize)
		if err == nil && ev.ID != rw.eventID {
			err = fmt.Errorf("%w: payload id %q, row event_id %q", event.ErrInvalid, ev.ID, rw.eventID)
		}
		if err != nil {
			f.dead = append(f.dead, deadRow(rw, err))
			continue
		}
		// The payload is the event as Add encoded it (and Decode just
		// validated it): sent as it is, not encoded again.
		fut, err := r.pub.PublishEncodedAsync(&ev, rw.payload)
		if err != nil {
			if permanent(err) {
				f.dead = append(f.dead, deadRow(rw, err))
				continue
			}
			r.o.errs.Add(1)
			return f, err
		}
		f.sent = append(f.sent, inflight{rw.id, fut})
	}
	return f, nil
}

// await returns the ids of f's acknowledged rows, in id order, and the
// first publish error. It waits for each ack until f's deadline or until
// ctx ends; then it only collects the acks already in (the rest count as
// not acknowledged, and are sent again later).
func (r *Relay) await(ctx context.Context, f *flight) ([]int64, error) {
	acked := make([]int64, 0, len(f.sent))
	var (
		firstErr error
		failed   uint64
		timer    *time.Timer
		waiting  = ctx.Err() == nil
	)
	wait := func(done <-chan struct{}, left int) {
		select {
		case <-done:
			return
		default:
		}
		if timer == nil {
			timer = time.NewTimer(time.Until(f.deadline))
		}
		select {
		case <-done:
		case <-ctx.Done():
			waiting = false
		case <-timer.C:
			waiting = false
			if firstErr == nil {
				firstErr = fmt.Errorf("outbox: relay: %d publishes not acknowledged within %v", left, batchTimeout)
			}
		}
	}
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	// The acks of one connection's publishes come back in order: waiting
	// for the last one first wakes this goroutine about once a batch
	// rather than once an ack.
	if n := len(f.sent); waiting && n > 1 {
		wait(f.sent[n-1].f.Done(), n)
	}
	for i, p := range f.sent {
		if waiting {
			wait(p.f.Done(), len(f.sent)-i)
		}
		select {
		case <-p.f.Done():
		default:
			continue // not acknowledged (yet): the row stays
		}
		if _, err := p.f.Wait(ctx); err != nil {
			failed++
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		acked = append(acked, p.id)
	}
	r.o.errs.Add(failed)
	return acked, firstErr
}

// claim selects the next batch of up to limit rows with ids above after,
// in id order: on PostgreSQL inside tx and locked, skipping rows that
// other relays hold.
func (r *Relay) claim(ctx context.Context, tx *sql.Tx, after int64, limit int) ([]row, error) {
	var (
		rs  *sql.Rows
		err error
	)
	if tx != nil {
		rs, err = tx.QueryContext(ctx, r.o.q.claim, after, limit)
	} else {
		rs, err = r.o.db.QueryContext(ctx, r.o.q.claim, after, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("outbox: relay: claim: %w", err)
	}
	defer rs.Close()
	out := make([]row, 0, limit)
	for rs.Next() {
		var rw row
		if err := rs.Scan(&rw.id, &rw.eventID, &rw.payload); err != nil {
			return nil, fmt.Errorf("outbox: relay: claim: %w", err)
		}
		out = append(out, rw)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("outbox: relay: claim: %w", err)
	}
	return out, nil
}

// finish moves dead rows to the dead-letter table and deletes them and the
// acknowledged rows, in one transaction: tx on PostgreSQL, a new one on
// SQLite.
func (r *Relay) finish(ctx context.Context, tx *sql.Tx, acked []int64, dead []dead) error {
	if len(acked) == 0 && len(dead) == 0 {
		if tx != nil {
			return tx.Commit() // releases the row locks
		}
		return nil
	}
	if tx == nil { // SQLite: take turns with this process's writers (see Outbox.Tx)
		if err := r.o.lockWrite(ctx); err != nil {
			return fmt.Errorf("outbox: relay: %w", err)
		}
		defer r.o.unlockWrite()
		var err error
		if tx, err = r.o.db.BeginTx(ctx, nil); err != nil {
			return fmt.Errorf("outbox: relay: begin: %w", err)
		}
		defer func() { _ = tx.Rollback() }()
	}
	now := r.o.dialect.timeArg(time.Now())
	ids := make([]int64, 0, len(acked)+len(dead))
	for _, d := range dead {
		if _, err := tx.ExecContext(ctx, r.o.q.dead, now, d.reason, d.id); err != nil {
			return fmt.Errorf("outbox: relay: dead-letter row %d: %w", d.id, err)
		}
		ids = append(ids, d.id)
	}
	ids = append(ids, acked...)
	slices.Sort(ids)
	for q, args := range r.o.dialect.deleteIDs(r.o.table, ids) {
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("outbox: relay: delete: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("outbox: relay: commit: %w", err)
	}
	for _, d := range dead {
		r.log.Error("event can never be published; moved to the dead-letter table",
			zap.Int64("row", d.id), zap.String("dead_table", r.o.table+deadSuffix), zap.String("reason", d.reason))
	}
	return nil
}

func deadRow(rw row, err error) dead {
	return dead{id: rw.id, reason: fmt.Sprintf("event %s: %v", rw.eventID, err)}
}

// permanent reports whether a publish error can never go away by retrying
// the same bytes: the event is invalid or too large for the publisher or
// the server.
func permanent(err error) bool {
	return errors.Is(err, event.ErrInvalid) || errors.Is(err, event.ErrTooLarge) || errors.Is(err, nats.ErrMaxPayload)
}
