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

	"github.com/nats-io/nats.go/jetstream"

	"github.com/arrwdb/arrwcdc/broker"
	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/hist"
	"github.com/arrwdb/arrwcdc/outbox"
	"github.com/arrwdb/arrwcdc/subjects"
	"github.com/arrwdb/arrwcdc/subscriber"
)

// runPublish: Publisher → JetStream, one event at a time (sync), with
// PublishAsync and its futures (async), or fire-and-forget (core).
func (r *runner) runPublish(ctx context.Context, res *Result) error {
	p, err := r.publishMeasured(ctx, res, r.libraries(), r.cfg.Mode, r.cfg.Events)
	if err != nil {
		return err
	}
	if err := r.end(res); err != nil {
		return err
	}
	res.elapsed = p.lastAck.Sub(r.t0)
	res.Events, res.Expected, res.Delivered, res.PublishErrors = p.acked, p.acked, p.acked, p.errors
	res.addNote(p.note())
	res.bytes = p.acked * int64(res.EventSize)
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
	p, err := r.publishMeasured(ctx, res, libs, r.cfg.Mode, r.cfg.Events)
	if err != nil {
		return err
	}
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
	res.bytes = res.Delivered * int64(res.EventSize)
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
	// Progress is the publisher's count of acknowledged events (in memory,
	// cheap to poll); the drain is over when the outbox is empty: every
	// row acknowledged and deleted. Like nats bench js pub, nothing
	// subscribes to the events meanwhile (a subscriber would make the
	// broker copy each one); the stream's count is checked afterwards.
	r.progress.start("relaying", int64(n))
	wg.Go(func() { _ = relay.Run(rctx) })
	acked := func() int64 {
		a := int64(pub.Stats().Published)
		r.progress.done.Store(a)
		return a
	}
	r.waitFor(ctx, acked, func() bool { return acked() >= int64(n) })
	r.waitFor(ctx, func() int64 { return outboxDepth(ctx, ob) }, func() bool { return outboxDepth(ctx, ob) == 0 })
	res.elapsed = time.Since(r.t0)
	if err := r.end(res); err != nil {
		return err
	}
	stop()
	wg.Wait()
	stored, err := r.storedOf(ctx, libs)
	if err != nil {
		return err
	}
	res.Events, res.Expected, res.Delivered = stored, int64(n), stored
	res.bytes = res.Events * int64(size)
	if st, err := ob.Stats(context.WithoutCancel(ctx)); err == nil && (st.Depth > 0 || st.Dead > 0) {
		res.Notes = append(res.Notes, fmt.Sprintf("outbox left with %d rows, %d dead letters", st.Depth, st.Dead))
	}
	return nil
}

// outboxDepth is the number of rows waiting in ob, -1 if unknown.
func outboxDepth(ctx context.Context, ob *outbox.Outbox) int64 {
	st, err := ob.Stats(ctx)
	if err != nil {
		return -1
	}
	return st.Depth
}

// storedOf counts the messages the EVENTS stream holds for libs.
func (r *runner) storedOf(ctx context.Context, libs []string) (int64, error) {
	s, err := r.js.Stream(ctx, broker.StreamName)
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(r.cfg.Prefix+".library.*.>"))
	if err != nil {
		return 0, fmt.Errorf("bench: stream info: %w", err)
	}
	ours := make(map[string]bool, len(libs))
	for _, lib := range libs {
		ours[lib] = true
	}
	var n uint64
	for subj, c := range info.State.Subjects {
		if sj, err := subjects.Parse(subj); err == nil && ours[sj.LibraryID] {
			n += c
		}
	}
	return int64(n), nil
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
