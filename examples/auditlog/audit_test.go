package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/testnats"
	"github.com/arrwdb/arrwcdc/outbox"
	"github.com/arrwdb/arrwcdc/publisher"
	"github.com/arrwdb/arrwcdc/subscriber"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// countingAuditor counts the events one instance handled.
type countingAuditor struct {
	*Auditor
	n atomic.Int64
}

func (c *countingAuditor) Handle(ctx context.Context, d subscriber.Delivery) error {
	c.n.Add(1)
	return c.Auditor.Handle(ctx, d)
}

func TestTwoAuditorsWriteEveryEventOnce(t *testing.T) {
	b := testnats.Broker(t)
	nc := testnats.Conn(t, b.ClientURL())
	js := testnats.JetStream(t, nc)
	db, err := outbox.OpenSQLite(filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := t.Context()
	pub, err := publisher.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	const n = 400
	publish := func(from int) {
		for i := from; i < from+n/2; i++ {
			ev, _ := event.NewDocumentAdded(fmt.Sprintf("lib-%d", i%7), event.DocumentAdded{DocumentID: fmt.Sprint(i), Title: "t", NumChunks: 1})
			if _, err := pub.Publish(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(0) // half before the auditors exist: the durable consumer still sees them

	var auditors [2]*countingAuditor
	var subs [2]*subscriber.Subscription
	for i := range auditors {
		a, err := NewAuditor(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		auditors[i] = &countingAuditor{Auditor: a}
		subs[i], err = subscriber.Consume(ctx, js, Durable, subscriber.Filter{}, auditors[i].Handle,
			subscriber.Concurrency(4), subscriber.WithLogger(zaptest.NewLogger(t)))
		if err != nil {
			t.Fatal(err)
		}
	}
	publish(n / 2)
	testnats.Eventually(t, 30*time.Second, func() error {
		var rows, distinct int
		if err := db.QueryRow(`SELECT COUNT(*), COUNT(DISTINCT seq) FROM audit_log`).Scan(&rows, &distinct); err != nil {
			return err
		}
		if rows != n || distinct != n {
			return fmt.Errorf("audit_log holds %d rows (%d distinct seqs), want %d", rows, distinct, n)
		}
		return nil
	})
	// A redelivered event (same id) writes nothing twice.
	var id string
	var seq uint64
	if err := db.QueryRow(`SELECT event_id, seq FROM audit_log LIMIT 1`).Scan(&id, &seq); err != nil {
		t.Fatal(err)
	}
	again := subscriber.Delivery{Event: event.Event{ID: id, Type: "document.added", LibraryID: "x", Timestamp: event.Now()}, Seq: seq}
	if err := auditors[0].Auditor.Handle(ctx, again); err != nil {
		t.Fatal(err)
	}
	var rows int
	if err := db.QueryRow(`SELECT COUNT(*) FROM audit_log`).Scan(&rows); err != nil || rows != n {
		t.Fatalf("after a redelivery audit_log holds %d rows, %v", rows, err)
	}
	for i, s := range subs {
		if err := s.Drain(context.Background()); err != nil {
			t.Fatal(err)
		}
		if auditors[i].n.Load() == 0 {
			t.Errorf("auditor %d handled nothing: the work was not shared", i)
		}
	}
	t.Logf("auditors handled %d and %d events", auditors[0].n.Load(), auditors[1].n.Load())
	if err := pub.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}
