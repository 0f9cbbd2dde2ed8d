package outbox_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/arrwdb/arrwcdc/broker"
	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/testnats"
	"github.com/arrwdb/arrwcdc/outbox"
)

// TestPipelinedRelayKeepsOrderWhileWritersCommit drains a SQLite backlog
// in many small pipelined batches while a writer keeps committing: the
// stream holds every committed event once, in commit order.
func TestPipelinedRelayKeepsOrderWhileWritersCommit(t *testing.T) {
	ctx := t.Context()
	be := newBackend(t, outbox.SQLite)
	bus := newBus(t)
	ob := be.newOutbox(t)
	const backlog, live, perTx = 1000, 1000, 7
	for i := 0; i < backlog; i += 100 {
		if err := changes(ctx, be, ob, i, 100); err != nil {
			t.Fatal(err)
		}
	}
	startRelay(t, ob, bus.pub, outbox.WithBatchSize(16))
	for i := backlog; i < backlog+live; i += perTx {
		if err := changes(ctx, be, ob, i, min(perTx, backlog+live-i)); err != nil {
			t.Fatal(err)
		}
	}
	waitDrained(t, ob, bus.js, backlog+live, time.Minute)
	checkStoredInCommitOrder(t, bus.js, be.db)
	if d := bus.pub.Stats().Duplicates; d != 0 {
		t.Fatalf("%d events sent twice", d)
	}
}

// libEvent is an event on a subject of its own (one library per event),
// unless lib is given.
func libEvent(n int, lib string) event.Event {
	if lib == "" {
		lib = fmt.Sprintf("lib-%d", n)
	}
	return event.Event{
		Type:      event.TypeDocumentAdded,
		LibraryID: lib,
		Data:      json.RawMessage(fmt.Sprintf(`{"document_id":"doc-%d","title":"Document %d","num_chunks":1}`, n, n)),
	}
}

// TestPipelineFailureResendsInOrder makes the stream refuse one event in
// the middle of a pipelined drain (a second message on a subject limited
// to one), and later accept it. Nothing is lost or stored twice; the
// events sent after the refused one before the relay saw the refusal are
// the only ones stored ahead of it (at most the pipeline's window); while
// the event is refused, the relay retries it alone and publishes nothing
// behind it; and once it is accepted the rest follows in order.
func TestPipelineFailureResendsInOrder(t *testing.T) {
	ctx := t.Context()
	be := newBackend(t, outbox.SQLite)
	bus := newBus(t)
	ob := be.newOutbox(t)

	s, err := bus.js.Stream(ctx, broker.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	limited := info.Config
	limited.MaxMsgsPerSubject = 1
	limited.Discard = jetstream.DiscardNew
	limited.DiscardNewPerSubject = true
	if _, err := bus.js.UpdateStream(ctx, limited); err != nil {
		t.Fatal(err)
	}

	const (
		total   = 600
		batch   = 16
		first   = 10  // on the shared subject: stored
		refused = 200 // on the shared subject too: refused while the limit holds
	)
	var committed []string
	err = ob.Tx(ctx, func(tx *sql.Tx) error {
		for i := range total {
			lib := ""
			if i == first || i == refused {
				lib = "shared"
			}
			id, err := ob.Add(ctx, tx, libEvent(i, lib))
			if err != nil {
				return err
			}
			committed = append(committed, id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	startRelay(t, ob, bus.pub, outbox.WithBatchSize(batch), outbox.WithBackoff(time.Millisecond, 20*time.Millisecond))

	// The relay fails on the refused event and retries it.
	retries := func() uint64 {
		st, err := ob.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.Retries
	}
	testnats.Eventually(t, 30*time.Second, func() error {
		if r := retries(); r < 3 {
			return fmt.Errorf("%d failed publishes", r)
		}
		return nil
	})
	stored, err := streamMsgs(ctx, bus.js)
	if err != nil {
		t.Fatal(err)
	}
	// Everything before the refused event is stored; after it, at most
	// the window that was in flight when the relay saw the refusal: the
	// rest of its batch and the batches queued behind it and the one
	// being published (PipelineDepth + 1), under PipelineDepth + 2
	// batches.
	window := (outbox.PipelineDepth + 2) * batch
	if stored < refused || stored > refused+uint64(window) {
		t.Fatalf("stream holds %d events: want all %d before the refused one and at most %d after it", stored, refused, window)
	}
	t.Logf("%d events stored when the relay saw the refusal (window %d)", stored-refused, window)
	// While it is refused, each retry sends the refused event alone.
	r0 := retries()
	testnats.Eventually(t, 30*time.Second, func() error {
		if r := retries(); r < r0+3 {
			return fmt.Errorf("%d failed publishes, waiting for %d", r, r0+3)
		}
		return nil
	})
	if now, err := streamMsgs(ctx, bus.js); err != nil || now != stored {
		t.Fatalf("stream went from %d to %d events (%v) while the head of the outbox was refused", stored, now, err)
	}
	if d := depth(t, ob); d != int64(total)-int64(stored) {
		t.Fatalf("outbox depth %d, want %d: every stored event deleted, no other", d, total-int(stored))
	}

	// Lift the limit: the refused event goes through, then the rest.
	if _, err := bus.js.UpdateStream(ctx, info.Config); err != nil {
		t.Fatal(err)
	}
	waitDrained(t, ob, bus.js, total, time.Minute)
	got := ids(streamEvents(t, bus.js))
	checkExactlyOnce(t, committed, got)
	at := slices.Index(got, committed[refused])
	if at != int(stored) {
		t.Fatalf("refused event stored at %d, want %d (right after the %d stored before the limit was lifted)", at, stored, stored)
	}
	if !slices.Equal(got[:refused], committed[:refused]) {
		t.Fatalf("events before the refused one out of order")
	}
	rest := slices.Delete(slices.Clone(got), at, at+1)
	if want := slices.Delete(slices.Clone(committed), refused, refused+1); !slices.Equal(rest, want) {
		t.Fatalf("apart from the refused event, stream order differs from commit order\n got %v\nwant %v", head(rest), head(want))
	}
}

// TestRelayStopMidPipeline cancels a relay in the middle of a pipelined
// drain. Run returns nil; every row deleted was acknowledged (its event
// is in the stream); and a new relay sends the rest with no event lost or
// stored twice.
func TestRelayStopMidPipeline(t *testing.T) {
	ctx := t.Context()
	be := newBackend(t, outbox.SQLite)
	bus := newBus(t)
	ob := be.newOutbox(t)
	const n = 6000
	for i := 0; i < n; i += 1000 {
		if err := changes(ctx, be, ob, i, 1000); err != nil {
			t.Fatal(err)
		}
	}
	r, err := outbox.NewRelay(ob, bus.pub, outbox.WithBatchSize(50))
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	testnats.Eventually(t, time.Minute, func() error {
		if got := outbox.RelayedCount(ob); got < 500 {
			return fmt.Errorf("relayed %d", got)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	left := depth(t, ob)
	if left == 0 {
		t.Skip("the backlog was drained before the cancel")
	}
	// Every deleted row's event is stored: rows not deleted are all that
	// can be missing from the stream.
	stored := make(map[string]bool)
	for _, id := range ids(streamEvents(t, bus.js)) {
		stored[id] = true
	}
	waiting := make(map[string]bool)
	for _, id := range column[string](ctx, t, be.db, `SELECT event_id FROM `+ob.Table()) {
		waiting[id] = true
	}
	committed := committedIDs(t, be.db)
	for _, id := range committed {
		if !stored[id] && !waiting[id] {
			t.Fatalf("event %s was deleted from the outbox but is not in the stream", id)
		}
	}
	if got := int64(outbox.RelayedCount(ob)); got != n-left {
		t.Fatalf("relayed counter %d, want %d deleted rows", got, n-left)
	}
	t.Logf("stopped with %d rows left, %d events stored", left, len(stored))

	startRelay(t, ob, bus.pub)
	waitDrained(t, ob, bus.js, n, time.Minute)
	checkExactlyOnce(t, committed, ids(streamEvents(t, bus.js)))
}

// TestPipelineAwaitsAcksWhileDeleting holds the database's write lock, so
// that the relay's first delete waits: acks are still awaited meanwhile
// and batches published (up to the delete queue's depth), more batches
// than the relay could have in flight if awaiting acks waited for the
// deletes. Once the lock is released everything is deleted, each event
// stored once, in order.
func TestPipelineAwaitsAcksWhileDeleting(t *testing.T) {
	ctx := t.Context()
	be := newBackend(t, outbox.SQLite)
	bus := newBus(t)
	ob := be.newOutbox(t)
	const rows, batch = 300, 10
	if err := changes(ctx, be, ob, 0, rows); err != nil {
		t.Fatal(err)
	}
	locked, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- ob.Tx(context.Background(), func(*sql.Tx) error {
			close(locked)
			<-release
			return nil
		})
	}()
	<-locked
	startRelay(t, ob, bus.pub, outbox.WithBatchSize(batch))
	var once sync.Once
	unlock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unlock) // on failure, before the relay stops (cleanups run last first)
	// Six batches at most await their acks; while deletes wait, settled
	// batches queue for the deleter instead of stopping the awaiting.
	testnats.Eventually(t, 30*time.Second, func() error {
		if n := bus.pub.Stats().Published; n < 10*batch {
			return fmt.Errorf("%d events acknowledged while the first delete waits", n)
		}
		return nil
	})
	if got := depth(t, ob); got != rows {
		t.Errorf("depth %d while deletes wait, want %d", got, rows)
	}
	unlock()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	waitDrained(t, ob, bus.js, rows, time.Minute)
	checkStoredInCommitOrder(t, bus.js, be.db)
}

// TestPipelineStopsPublishingWhenDeletesFail makes every delete fail (a
// trigger refuses them). The relay stops publishing at the first failed
// delete: the stream holds at most the batches it had in flight then,
// and afterwards the relay only sends the lowest row again, alone (a
// duplicate each time). Every row stays until deletes work again; then
// everything is deleted, each event stored once, in order.
func TestPipelineStopsPublishingWhenDeletesFail(t *testing.T) {
	ctx := t.Context()
	be := newBackend(t, outbox.SQLite)
	bus := newBus(t)
	ob := be.newOutbox(t)
	const rows, batch = 600, 10
	if err := changes(ctx, be, ob, 0, rows); err != nil {
		t.Fatal(err)
	}
	if _, err := be.db.ExecContext(ctx, `CREATE TRIGGER refuse_deletes BEFORE DELETE ON `+outbox.DefaultTable+
		` BEGIN SELECT RAISE(ABORT, 'deletes refused'); END`); err != nil {
		t.Fatal(err)
	}
	startRelay(t, ob, bus.pub, outbox.WithBatchSize(batch), outbox.WithBackoff(time.Millisecond, 20*time.Millisecond))
	testnats.Eventually(t, 30*time.Second, func() error {
		if d := bus.pub.Stats().Duplicates; d < 3 {
			return fmt.Errorf("%d duplicates: the relay has not retried the lowest row 3 times yet", d)
		}
		return nil
	})
	stored, err := streamMsgs(ctx, bus.js)
	if err != nil {
		t.Fatal(err)
	}
	// In flight when the first delete failed: that delete's batch, the
	// delete queue, the batch awaiting its acks behind it, the publish
	// queue and the batch being published.
	window := (outbox.DeleteDepth + outbox.PipelineDepth + 3) * batch
	if stored == 0 || stored > uint64(window) {
		t.Fatalf("stream holds %d events while deletes fail, want 1 to %d", stored, window)
	}
	t.Logf("%d events stored when the first delete failed (window %d)", stored, window)
	if d := depth(t, ob); d != rows {
		t.Fatalf("outbox depth %d while deletes fail, want %d", d, rows)
	}
	err = ob.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DROP TRIGGER refuse_deletes`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	waitDrained(t, ob, bus.js, rows, time.Minute)
	checkStoredInCommitOrder(t, bus.js, be.db)
}
