package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/arrwdb/arrwcdc/outbox"
)

// BenchmarkRelayDrainSQLite measures how fast one relay drains a backlog
// of b.N events from a SQLite outbox (default OpenSQLite settings, so
// synchronous=FULL) into JetStream on a local broker. The backlog is
// written with the timer stopped; the figure that matters is events/s.
func BenchmarkRelayDrainSQLite(b *testing.B) {
	be := newBackend(b, outbox.SQLite)
	bus := newBus(b)
	ob := be.newOutbox(b, outbox.WithMaxRows(1<<30))
	ctx := context.Background()
	const perTx = 1000
	for i := 0; i < b.N; i += perTx {
		if err := changes(ctx, be, ob, i, min(perTx, b.N-i)); err != nil {
			b.Fatal(err)
		}
	}
	r, err := outbox.NewRelay(ob, bus.pub)
	if err != nil {
		b.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	go func() { done <- r.Run(rctx) }()
	tick := time.NewTicker(time.Millisecond)
	for {
		<-tick.C
		if outbox.RelayedCount(ob) == uint64(b.N) {
			break
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	tick.Stop()
	stop()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}

// BenchmarkAddSQLite measures Add: ten events per transaction, each
// with the application's own row, committed with synchronous=FULL.
func BenchmarkAddSQLite(b *testing.B) {
	be := newBackend(b, outbox.SQLite)
	ob := be.newOutbox(b, outbox.WithMaxRows(1<<30))
	ctx := context.Background()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if err := changes(ctx, be, ob, n, 10); err != nil {
			b.Fatal(err)
		}
		n += 10
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
