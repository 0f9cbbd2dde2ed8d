package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/arrwdb/arrwcdc/broker"
	"github.com/arrwdb/arrwcdc/internal/testnats"
	"github.com/arrwdb/arrwcdc/outbox"
	"github.com/arrwdb/arrwcdc/publisher"
)

// fixedBroker is a broker config on a fixed free port and data directory,
// so that a restarted node is the same node to its clients: same URL,
// same stream, same duplicate window.
func fixedBroker(t testing.TB) broker.Config {
	t.Helper()
	port := testnats.FreePorts(t, 1)[0]
	return broker.Config{NATSListen: fmt.Sprintf("127.0.0.1:%d", port), DataDir: t.TempDir()}
}

// reconnecting are the client options of a process that rides out broker
// restarts.
func reconnecting() []nats.Option {
	return []nats.Option{
		nats.MaxReconnects(-1),
		nats.ReconnectWait(25 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
	}
}

// TestBrokerOutageDuringWrites stops the broker for a while in the middle
// of 10,000 outbox writes and restarts it: every committed event ends up
// in the stream exactly once.
func TestBrokerOutageDuringWrites(t *testing.T) {
	eachDialect(t, func(t *testing.T, be *backend) {
		ctx := t.Context()
		cfg := fixedBroker(t)
		b := testnats.Start(t, cfg)
		url := b.ClientURL()
		nc := testnats.Conn(t, url, reconnecting()...)
		pub := newPublisher(t, nc, publisher.WithDefaultTimeout(time.Second))
		ob := be.newOutbox(t)
		startRelay(t, ob, pub, outbox.WithBackoff(10*time.Millisecond, 250*time.Millisecond))

		const (
			total   = 10_000
			perTx   = 10 // events per transaction
			stopAt  = 3_000
			startAt = 6_000
		)
		var committed []string
		for i := 0; i < total; i += perTx {
			switch i {
			case stopAt:
				if err := b.Shutdown(ctx); err != nil {
					t.Fatal(err)
				}
				t.Logf("broker stopped after %d writes (depth %d)", i, depth(t, ob))
			case startAt:
				// The relay must have failed, backed off and failed again
				// before the outage ends.
				var first uint64
				testnats.Eventually(t, 30*time.Second, func() error {
					s, err := ob.Stats(ctx)
					switch {
					case err != nil:
						return err
					case first == 0 && s.Retries > 0:
						first = s.Retries
					case first > 0 && s.Retries > first:
						return nil
					}
					return fmt.Errorf("relay has not retried in vain yet (%d failed publishes)", s.Retries)
				})
				t.Logf("broker restarting after %d writes (depth %d)", i, depth(t, ob))
				b = testnats.Start(t, cfg)
			}
			var batch []string
			err := ob.Tx(ctx, func(tx *sql.Tx) error {
				batch = batch[:0]
				for j := range perTx {
					id, err := ob.Add(ctx, tx, docEvent(i+j))
					if err != nil {
						return err
					}
					batch = append(batch, id)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
			committed = append(committed, batch...) // only once Commit succeeded
		}
		t.Logf("%d writes done (depth %d)", total, depth(t, ob))

		check := testnats.Conn(t, b.ClientURL())
		js := testnats.JetStream(t, check)
		waitDrained(t, ob, js, total, 2*time.Minute)
		checkExactlyOnce(t, committed, ids(streamEvents(t, js)))
		s, _ := ob.Stats(ctx)
		t.Logf("outbox %+v; publisher %+v", s, pub.Stats())
	})
}

// changes commits n changes, numbered from first, in one transaction.
func changes(ctx context.Context, be *backend, ob *outbox.Outbox, first, n int) error {
	return ob.Tx(ctx, func(tx *sql.Tx) error {
		for i := first; i < first+n; i++ {
			id, err := ob.Add(ctx, tx, docEvent(i))
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO docs (n, event_id) VALUES (`+be.ph(1)+`, `+be.ph(2)+`)`, i, id); err != nil {
				return err
			}
		}
		return nil
	})
}
