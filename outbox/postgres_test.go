package outbox_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/arrwdb/arrwcdc/internal/testnats"
	"github.com/arrwdb/arrwcdc/internal/testpg"
	"github.com/arrwdb/arrwcdc/outbox"
)

// TestPostgresRelaysShareTheWork runs two relays, as two processes would
// (their own database handles, NATS connections and publishers), on one
// PostgreSQL outbox: both relay part of it, and FOR UPDATE SKIP LOCKED
// keeps them from ever publishing the same row.
func TestPostgresRelaysShareTheWork(t *testing.T) {
	db, open := testpg.DB(t)
	ctx := t.Context()
	bus := newBus(t)
	be := &backend{dialect: outbox.PostgreSQL, db: db, open: open}
	ob1 := be.newOutbox(t)
	const n = 3000
	for i := 0; i < n; i += 100 {
		if err := changes(ctx, be, ob1, i, 100); err != nil {
			t.Fatal(err)
		}
	}
	ob2 := newOutboxOn(t, open(), outbox.PostgreSQL)
	pub1 := bus.pub
	pub2 := newPublisher(t, testnats.Conn(t, bus.b.ClientURL()))

	opts := []outbox.RelayOption{outbox.WithBatchSize(25)}
	startRelay(t, ob1, pub1, opts...)
	startRelay(t, ob2, pub2, opts...)
	// Keep writing while both relay.
	for i := n; i < 2*n; i += 100 {
		if err := changes(ctx, be, ob1, i, 100); err != nil {
			t.Fatal(err)
		}
	}
	waitDrained(t, ob1, bus.js, 2*n, time.Minute)
	checkExactlyOnce(t, committedIDs(t, db), ids(streamEvents(t, bus.js)))

	s1, err := ob1.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := ob2.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("relay 1 published %d, relay 2 published %d", s1.Relayed, s2.Relayed)
	if s1.Relayed == 0 || s2.Relayed == 0 || s1.Relayed+s2.Relayed != 2*n {
		t.Fatalf("relayed %d + %d, want both > 0 and %d in all", s1.Relayed, s2.Relayed, 2*n)
	}
	// Not one event was sent twice: no ack reported a duplicate.
	if d := pub1.Stats().Duplicates + pub2.Stats().Duplicates; d != 0 {
		t.Fatalf("%d duplicate publishes", d)
	}
}

// TestPostgresLockedRowsAreSkipped shows the mechanism itself: rows locked
// by one relay's open claim are invisible to another relay's claim, which
// takes the next rows instead of waiting.
func TestPostgresLockedRowsAreSkipped(t *testing.T) {
	db, open := testpg.DB(t)
	ctx := t.Context()
	be := &backend{dialect: outbox.PostgreSQL, db: db, open: open}
	ob := be.newOutbox(t)
	for i := range 4 {
		if _, err := ob.AddDB(ctx, docEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	claim := fmt.Sprintf(`SELECT id FROM %s ORDER BY id LIMIT 2 FOR UPDATE SKIP LOCKED`, ob.Table())
	first := column[int64](ctx, t, tx, claim)

	other := open()
	tx2, err := other.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx2.Rollback() }()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	second := column[int64](cctx, t, tx2, claim) // SKIP LOCKED: must not wait for tx
	if len(first) != 2 || len(second) != 2 || first[1] >= second[0] {
		t.Fatalf("claims %v and %v: want disjoint, consecutive pairs", first, second)
	}
}
