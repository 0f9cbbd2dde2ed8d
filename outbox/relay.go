package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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

// batchTimeout bounds one round of the relay from claim to commit, acks
// included (the publisher's own ack timeout, 5 s by default, should be
// well below it). A round cut short re-sends its batch later.
const batchTimeout = time.Minute

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
// Each round claims up to [WithBatchSize] rows in id order, publishes them
// asynchronously, waits for the acks (at most the publisher's default
// timeout) and deletes the acknowledged rows. Rows whose publish failed
// stay and are retried after a backoff ([WithBackoff]). When ctx ends
// during a round, Run stops waiting for acks, deletes the rows already
// acknowledged and returns; the others are sent again by the next relay,
// and the stream's duplicate window drops the repeats.
func (r *Relay) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return ErrRelayRunning
	}
	defer r.running.Store(false)
	r.o.register(r.wake)
	defer r.o.unregister(r.wake)

	backoff := r.opts.minBackoff
	// Since Go 1.23 Stop and Reset leave no stale tick behind: no draining.
	idle := time.NewTimer(r.opts.poll)
	idle.Stop()
	defer idle.Stop()
	for ctx.Err() == nil {
		n, err := r.round(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, publisher.ErrClosed):
			return fmt.Errorf("outbox: relay: %w", err)
		case err != nil:
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

// round relays one batch. It returns the number of rows claimed and the
// first publish error, if any; rows acknowledged before or after that
// error are deleted all the same.
func (r *Relay) round(ctx context.Context) (int, error) {
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
	rows, err := r.claim(claimCtx, tx)
	unhook()
	stopClaim()
	if err != nil || len(rows) == 0 {
		return 0, err
	}

	type inflight struct {
		id int64
		f  *publisher.Future
	}
	var (
		pending  = make([]inflight, 0, len(rows))
		dead     []dead
		firstErr error
		failed   uint64
	)
	for _, rw := range rows {
		ev, err := event.Decode(rw.payload, r.o.maxSize)
		if err == nil && ev.ID != rw.eventID {
			err = fmt.Errorf("%w: payload id %q, row event_id %q", event.ErrInvalid, ev.ID, rw.eventID)
		}
		if err != nil {
			dead = append(dead, deadRow(rw, err))
			continue
		}
		f, err := r.pub.PublishAsync(ev)
		if err != nil {
			if permanent(err) {
				dead = append(dead, deadRow(rw, err))
				continue
			}
			// Closed publisher, closed or stalled connection: the rest
			// of the batch would fail the same way.
			firstErr = err
			failed++
			break
		}
		pending = append(pending, inflight{rw.id, f})
	}

	acked := make([]int64, 0, len(pending))
wait:
	for _, p := range pending {
		select {
		case <-p.f.Done():
		case <-ctx.Done():
			break wait // unresolved publishes count as not acknowledged
		case <-bctx.Done():
			break wait
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
	if err := r.finish(bctx, tx, acked, dead); err != nil {
		// The acknowledged rows stay and are sent again: duplicates the
		// stream drops.
		return len(rows), errors.Join(firstErr, err)
	}
	r.o.relayed.Add(uint64(len(acked)))
	return len(rows), firstErr
}

// claim selects the next batch in id order: on PostgreSQL inside tx and
// locked, skipping rows that other relays hold.
func (r *Relay) claim(ctx context.Context, tx *sql.Tx) ([]row, error) {
	var (
		rs  *sql.Rows
		err error
	)
	if tx != nil {
		rs, err = tx.QueryContext(ctx, r.o.q.claim, r.opts.batch)
	} else {
		rs, err = r.o.db.QueryContext(ctx, r.o.q.claim, r.opts.batch)
	}
	if err != nil {
		return nil, fmt.Errorf("outbox: relay: claim: %w", err)
	}
	defer rs.Close()
	var out []row
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
	ids := make([]any, 0, len(acked)+len(dead))
	for _, d := range dead {
		if _, err := tx.ExecContext(ctx, r.o.q.dead, now, d.reason, d.id); err != nil {
			return fmt.Errorf("outbox: relay: dead-letter row %d: %w", d.id, err)
		}
		ids = append(ids, d.id)
	}
	for _, id := range acked {
		ids = append(ids, id)
	}
	if _, err := tx.ExecContext(ctx, r.o.dialect.deleteIDs(r.o.table, len(ids)), ids...); err != nil {
		return fmt.Errorf("outbox: relay: delete: %w", err)
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
