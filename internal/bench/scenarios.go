package bench

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/hist"
	"github.com/arrwdb/arrwcdc/outbox"
	"github.com/arrwdb/arrwcdc/subscriber"
)

// runPublish: Publisher → JetStream, one event at a time (sync), with
// PublishAsync and its futures (async), or fire-and-forget (core).
func (r *runner) runPublish(ctx context.Context, res *Result) error {
	pub, err := r.newPublisher(r.cfg.Mode)
	if err != nil {
		return err
	}
	evs, size, err := r.templates(r.libraries())
	if err != nil {
		return err
	}
	res.EventSize = size
	if err := r.begin(); err != nil {
		return err
	}
	p := r.publishAll(ctx, pub, evs, r.cfg.Mode, r.cfg.Events)
	if err := r.end(res); err != nil {
		return err
	}
	res.elapsed = p.lastAck.Sub(r.t0)
	res.Events, res.Expected, res.Delivered, res.PublishErrors = p.acked, p.acked, p.acked, p.errors
	res.addNote(p.note())
	res.bytes = p.acked * int64(size)
	res.hist = p.lat
	res.LatencyOf = map[string]string{
		"sync":  "Publish call, until the JetStream ack",
		"async": "PublishAsync call to the ack of its future",
		"core":  "Publish call (no ack)",
	}[r.cfg.Mode]
	return nil
}

// runE2E: Publisher → subscriber.Subscribe handler on a second connection.
// The handler sees the core NATS message of each event; latency is the
// handler's time minus the event's timestamp (set by the publisher).
func (r *runner) runE2E(ctx context.Context, res *Result) error {
	libs := r.libraries()
	nc2, err := r.dial(r.nc.ConnectedUrl(), "arrwcdc-bench-subscriber")
	if err != nil {
		return err
	}
	var (
		mu        sync.Mutex
		lat       hist.Hist
		delivered atomic.Int64
		foreign   atomic.Int64
		last      atomic.Int64 // unix ns of the last delivery
	)
	runPrefix := "bench-" + r.runID + "-"
	h := func(_ context.Context, d subscriber.Delivery) error {
		now := time.Now()
		if !strings.HasPrefix(d.LibraryID, runPrefix) {
			foreign.Add(1)
			return nil
		}
		mu.Lock()
		lat.Record(now.Sub(d.Timestamp))
		mu.Unlock()
		delivered.Add(1)
		last.Store(now.UnixNano())
		return nil
	}
	filter := subscriber.Filter{LibraryID: libs[0], Types: []string{event.TypeDocumentAdded}}
	if len(libs) > 1 {
		filter = subscriber.Filter{Subject: r.cfg.Prefix + ".library.*." + event.TypeDocumentAdded}
	}
	sub, err := subscriber.Subscribe(ctx, nc2, filter, h,
		subscriber.WithPrefix(r.cfg.Prefix), subscriber.PendingLimit(1<<22), subscriber.WithLogger(r.log.Named("subscriber")))
	if err != nil {
		return fmt.Errorf("bench: subscribe: %w", err)
	}
	defer sub.Unsubscribe()
	if err := nc2.Flush(); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	pub, err := r.newPublisher(r.cfg.Mode)
	if err != nil {
		return err
	}
	evs, size, err := r.templates(libs)
	if err != nil {
		return err
	}
	res.EventSize = size
	if err := r.begin(); err != nil {
		return err
	}
	p := r.publishAll(ctx, pub, evs, r.cfg.Mode, r.cfg.Events)
	r.progress.start("delivering", p.acked)
	r.waitFor(ctx, func() int64 {
		n := delivered.Load()
		r.progress.done.Store(n)
		return n
	}, func() bool { return delivered.Load() >= p.acked })
	if err := r.end(res); err != nil {
		return err
	}
	res.elapsed = time.Unix(0, max(last.Load(), p.lastAck.UnixNano())).Sub(r.t0)
	res.Events, res.Expected, res.Delivered, res.PublishErrors = p.acked, p.acked, delivered.Load(), p.errors
	res.addNote(p.note())
	res.bytes = res.Delivered * int64(size)
	mu.Lock()
	res.hist = lat
	mu.Unlock()
	res.LatencyOf = "handler call − event timestamp"
	if st := sub.Stats(); st.Dropped > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("subscriber dropped %d events (slow consumer)", st.Dropped))
	}
	if n := foreign.Load(); n > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d events of other publishers were seen and ignored", n))
	}
	return nil
}

// runOutbox: N events written into a SQLite outbox (not measured), then
// one relay drains it into JetStream (measured, until every event is seen
// on the bus).
func (r *runner) runOutbox(ctx context.Context, res *Result) error {
	dir, err := tempDir(r)
	if err != nil {
		return err
	}
	db, err := outbox.OpenSQLite(filepath.Join(dir, "outbox.db"))
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	r.onClose(func() { _ = db.Close() })
	ob, err := outbox.New(db, outbox.SQLite, outbox.WithPrefix(r.cfg.Prefix), outbox.WithSource(benchSource), outbox.WithLogger(r.log.Named("outbox")))
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := ob.Migrate(ctx); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	libs := r.libraries()
	evs, size, err := r.templates(libs)
	if err != nil {
		return err
	}
	res.EventSize = size

	// Fill, in transactions of 1000 events.
	n := r.cfg.Events
	r.progress.start("filling the outbox", int64(n))
	fillStart := time.Now()
	const batch = 1000
	for i := 0; i < n; i += batch {
		err := ob.Tx(ctx, func(tx *sql.Tx) error {
			for j := i; j < min(i+batch, n); j++ {
				ev := evs[j%len(evs)]
				ev.Timestamp = event.Now()
				if _, err := ob.Add(ctx, tx, ev); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("bench: fill the outbox: %w", err)
		}
		r.progress.done.Store(int64(min(i+batch, n)))
	}
	fill := time.Since(fillStart)
	res.Notes = append(res.Notes, fmt.Sprintf("filled %s events in %.3f s (%s events/s, transactions of %d, not measured)",
		count(int64(n)), fill.Seconds(), count(int64(float64(n)/fill.Seconds())), batch))

	// Count the events on the bus.
	var seen atomic.Int64
	var last atomic.Int64
	runPrefix := "bench-" + r.runID + "-"
	sub, err := r.nc.Subscribe(r.cfg.Prefix+".library.*.>", func(m *nats.Msg) {
		if strings.Contains(m.Subject, ".library."+runPrefix) {
			seen.Add(1)
			last.Store(time.Now().UnixNano())
		}
	})
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	_ = sub.SetPendingLimits(-1, -1)
	if err := r.nc.Flush(); err != nil {
		return fmt.Errorf("bench: %w", err)
	}

	pub, err := r.newPublisher("async")
	if err != nil {
		return err
	}
	relay, err := outbox.NewRelay(ob, pub)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	if err := r.begin(); err != nil {
		return err
	}
	r.progress.start("relaying", int64(n))
	wg.Go(func() { _ = relay.Run(rctx) })
	r.waitFor(ctx, func() int64 {
		s := seen.Load()
		r.progress.done.Store(s)
		return s
	}, func() bool { return seen.Load() >= int64(n) })
	if err := r.end(res); err != nil {
		return err
	}
	stop()
	wg.Wait()
	res.elapsed = time.Unix(0, last.Load()).Sub(r.t0)
	if last.Load() == 0 {
		res.elapsed = time.Since(r.t0)
	}
	res.Events, res.Expected, res.Delivered = seen.Load(), int64(n), seen.Load()
	res.bytes = res.Events * int64(size)
	if st, err := ob.Stats(context.WithoutCancel(ctx)); err == nil && (st.Depth > 0 || st.Dead > 0) {
		res.Notes = append(res.Notes, fmt.Sprintf("outbox left with %d rows, %d dead letters", st.Depth, st.Dead))
	}
	return nil
}

// tempDir returns a directory removed when the run closes.
func tempDir(r *runner) (string, error) {
	dir, err := os.MkdirTemp("", "arrwcdc-bench-")
	if err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	r.onClose(func() { _ = os.RemoveAll(dir) })
	return dir, nil
}
