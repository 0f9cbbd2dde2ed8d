package outbox_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/arrwdb/arrwcdc/broker"
	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/testnats"
	"github.com/arrwdb/arrwcdc/internal/testpg"
	"github.com/arrwdb/arrwcdc/outbox"
	"github.com/arrwdb/arrwcdc/publisher"
)

// Every *sql.DB, nats.Conn, broker and relay is closed by the test that
// opened it, so no goroutine is expected to outlive the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const libID = "550e8400-e29b-41d4-a716-446655440000"

// backend is one database the suite runs on.
type backend struct {
	dialect outbox.Dialect
	db      *sql.DB
	open    func() *sql.DB // another handle on the same database
}

// eachDialect runs fn as a subtest on a fresh SQLite file and on a fresh
// PostgreSQL schema (skipped without ARRWCDC_TEST_POSTGRES_URL).
func eachDialect(t *testing.T, fn func(t *testing.T, be *backend)) {
	t.Helper()
	for _, d := range []outbox.Dialect{outbox.SQLite, outbox.PostgreSQL} {
		t.Run(d.String(), func(t *testing.T) {
			fn(t, newBackend(t, d))
		})
	}
}

func newBackend(t testing.TB, d outbox.Dialect) *backend {
	t.Helper()
	if d == outbox.PostgreSQL {
		db, open := testpg.DB(t)
		return &backend{dialect: d, db: db, open: open}
	}
	path := filepath.Join(t.TempDir(), "outbox.db")
	open := func() *sql.DB {
		db, err := outbox.OpenSQLite(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	return &backend{dialect: d, db: open(), open: open}
}

// ph is the dialect's n-th placeholder, for the tests' own statements.
func (be *backend) ph(n int) string {
	if be.dialect == outbox.PostgreSQL {
		return fmt.Sprintf("$%d", n)
	}
	return "?"
}

// newOutbox returns a migrated outbox on be.db plus the application's own
// table, docs, whose rows record the event id written with each change.
func (be *backend) newOutbox(t testing.TB, opts ...outbox.Option) *outbox.Outbox {
	t.Helper()
	return newOutboxOn(t, be.db, be.dialect, opts...)
}

func newOutboxOn(t testing.TB, db *sql.DB, d outbox.Dialect, opts ...outbox.Option) *outbox.Outbox {
	t.Helper()
	opts = append([]outbox.Option{outbox.WithSource("test"), outbox.WithLogger(zaptest.NewLogger(t, zaptest.Level(zapcore.WarnLevel)))}, opts...)
	ob, err := outbox.New(db, d, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := ob.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS docs (n BIGINT PRIMARY KEY, event_id TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return ob
}

// docEvent is the n-th change's event, with no id: Add fills it.
func docEvent(n int) event.Event {
	return event.Event{
		Type:      event.TypeDocumentAdded,
		LibraryID: libID,
		Data:      json.RawMessage(fmt.Sprintf(`{"document_id":"doc-%d","title":"Document %d","num_chunks":%d}`, n, n, n%7)),
	}
}

// change is one application transaction: a docs row and its event,
// committed together. It returns the event id.
func change(ctx context.Context, db *sql.DB, d outbox.Dialect, ob *outbox.Outbox, n int) (string, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return "", err
	}
	defer func() { _ = tx.Rollback() }()
	id, err := ob.Add(ctx, tx, docEvent(n))
	if err != nil {
		return "", err
	}
	q := `INSERT INTO docs (n, event_id) VALUES (?, ?)`
	if d == outbox.PostgreSQL {
		q = `INSERT INTO docs (n, event_id) VALUES ($1, $2)`
	}
	if _, err := tx.ExecContext(ctx, q, n, id); err != nil {
		return "", err
	}
	if err := tx.Commit(); err != nil {
		return "", err
	}
	ob.Notify()
	return id, nil
}

// committedIDs are the event ids of every committed change, in docs order.
func committedIDs(t testing.TB, db *sql.DB) []string {
	t.Helper()
	return column[string](context.Background(), t, db, `SELECT event_id FROM docs ORDER BY n`)
}

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// column returns the values of the one column query selects.
func column[T any](ctx context.Context, t testing.TB, q querier, query string, args ...any) []T {
	t.Helper()
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// bus is a broker with a client connection, its EVENTS stream and a
// publisher on that connection.
type bus struct {
	b   *broker.Broker
	nc  *nats.Conn
	js  jetstream.JetStream
	pub *publisher.Publisher
}

func newBus(t testing.TB) *bus {
	t.Helper()
	b := testnats.Broker(t)
	nc := testnats.Conn(t, b.ClientURL())
	return &bus{b: b, nc: nc, js: testnats.JetStream(t, nc), pub: newPublisher(t, nc)}
}

// newPublisher returns a publisher with a short ack timeout, closed at
// cleanup.
func newPublisher(t testing.TB, nc *nats.Conn, opts ...publisher.Option) *publisher.Publisher {
	t.Helper()
	opts = append([]publisher.Option{
		publisher.WithDefaultTimeout(2 * time.Second),
		publisher.WithLogger(zaptest.NewLogger(t, zaptest.Level(zapcore.WarnLevel))),
	}, opts...)
	p, err := publisher.New(nc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("publisher close: %v", err)
		}
	})
	return p
}

// startRelay runs a relay until cleanup, which stops it, waits for it and
// checks that Run returned nil.
func startRelay(t testing.TB, ob *outbox.Outbox, pub *publisher.Publisher, opts ...outbox.RelayOption) *outbox.Relay {
	t.Helper()
	r, err := outbox.NewRelay(ob, pub, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("relay Run: %v", err)
		}
	})
	return r
}

// streamMsgs is the number of messages in the EVENTS stream.
func streamMsgs(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	s, err := js.Stream(ctx, broker.StreamName)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// streamEvents reads every message of the EVENTS stream in order with an
// ordered consumer. It checks that each carries its event's id as
// Nats-Msg-Id and returns the decoded events.
func streamEvents(t testing.TB, js jetstream.JetStream) []event.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, broker.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := int(info.State.Msgs)
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	evs := make([]event.Event, 0, n)
	for len(evs) < n {
		batch, err := c.Fetch(min(n-len(evs), 1000), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			ev, err := event.Decode(m.Data(), 0)
			if err != nil {
				t.Fatalf("stream message %s: %v", m.Subject(), err)
			}
			if h := m.Headers().Get(jetstream.MsgIDHeader); h != ev.ID {
				t.Fatalf("Nats-Msg-Id %q, event id %q", h, ev.ID)
			}
			evs = append(evs, ev)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			t.Fatal(err)
		}
		if got == 0 {
			t.Fatalf("stream reports %d messages, read %d", n, len(evs))
		}
	}
	return evs
}

func ids(evs []event.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

// checkExactlyOnce is the gap-and-duplicate check: the stream holds every
// committed id once and nothing else.
func checkExactlyOnce(t testing.TB, committed, stored []string) {
	t.Helper()
	want := make(map[string]bool, len(committed))
	for _, id := range committed {
		if want[id] {
			t.Fatalf("committed id %s twice", id)
		}
		want[id] = true
	}
	seen := make(map[string]int, len(stored))
	var dups, extra []string
	for _, id := range stored {
		seen[id]++
		if seen[id] == 2 {
			dups = append(dups, id)
		}
		if !want[id] {
			extra = append(extra, id)
		}
	}
	var missing []string
	for _, id := range committed {
		if seen[id] == 0 {
			missing = append(missing, id)
		}
	}
	if len(missing)+len(dups)+len(extra) > 0 || len(stored) != len(committed) {
		t.Fatalf("stream holds %d events for %d committed: %d missing %v, %d duplicated %v, %d never committed %v",
			len(stored), len(committed), len(missing), head(missing), len(dups), head(dups), len(extra), head(extra))
	}
}

// checkStoredInCommitOrder checks that the stream holds every committed
// event once, nothing else, in commit order.
func checkStoredInCommitOrder(t testing.TB, js jetstream.JetStream, db *sql.DB) {
	t.Helper()
	got, want := ids(streamEvents(t, js)), committedIDs(t, db)
	checkExactlyOnce(t, want, got)
	if !slices.Equal(got, want) {
		t.Fatalf("stream order differs from commit order\n got %v\nwant %v", head(got), head(want))
	}
}

func head(s []string) string {
	if len(s) > 5 {
		return strings.Join(s[:5], ",") + ",…"
	}
	return strings.Join(s, ",")
}

// waitDrained waits until the outbox is empty and the stream holds want
// messages.
func waitDrained(t testing.TB, ob *outbox.Outbox, js jetstream.JetStream, want int, timeout time.Duration) {
	t.Helper()
	testnats.Eventually(t, timeout, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := ob.Stats(ctx)
		if err != nil {
			return err
		}
		n, err := streamMsgs(ctx, js)
		if err != nil {
			return err
		}
		if s.Depth != 0 || n != uint64(want) {
			return fmt.Errorf("outbox depth %d, stream %d messages, want 0 and %d (stats %+v)", s.Depth, n, want, s)
		}
		return nil
	})
}

func depth(t testing.TB, ob *outbox.Outbox) int64 {
	t.Helper()
	s, err := ob.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s.Depth
}
