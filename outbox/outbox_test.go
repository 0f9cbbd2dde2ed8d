package outbox_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/arrwdb/arrwcdc/broker"
	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/outbox"
	"github.com/arrwdb/arrwcdc/publisher"
)

func TestCommitRelaysExactlyOnce(t *testing.T) {
	eachDialect(t, func(t *testing.T, be *backend) {
		ctx := t.Context()
		bus := newBus(t)
		ob := be.newOutbox(t)
		startRelay(t, ob, bus.pub)

		const n = 200
		for i := range n {
			if _, err := change(ctx, be.db, be.dialect, ob, i); err != nil {
				t.Fatal(err)
			}
		}
		waitDrained(t, ob, bus.js, n, 30*time.Second)
		committed := committedIDs(t, be.db)
		stored := streamEvents(t, bus.js)
		checkExactlyOnce(t, committed, ids(stored))
		if st := bus.pub.Stats(); st.Duplicates != 0 || st.Published != n {
			t.Errorf("publisher stats %+v: want %d published, no duplicates", st, n)
		}
		s, err := ob.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.Relayed != n || s.Depth != 0 || s.OldestAge != 0 || s.Dead != 0 {
			t.Errorf("stats %+v", s)
		}

		// The stored event is the one added, fields filled by Add.
		first := stored[0]
		want := docEvent(0)
		if first.Type != want.Type || first.LibraryID != want.LibraryID || string(first.Data) != string(want.Data) ||
			first.Source != "test" || first.Timestamp.IsZero() {
			t.Errorf("stored %+v", first)
		}
		if _, err := uuidV7(first.ID); err != nil {
			t.Errorf("id %q: %v", first.ID, err)
		}
		// Headers come from the publisher: CloudEvents binding and dedup id.
		s1, err := bus.js.Stream(ctx, broker.StreamName)
		if err != nil {
			t.Fatal(err)
		}
		m, err := s1.GetMsg(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range map[string]string{
			"Nats-Msg-Id": first.ID, "ce-id": first.ID, "ce-type": event.TypeDocumentAdded,
			"ce-source": "test", "ce-specversion": "1.0", "Content-Type": "application/json",
		} {
			if got := m.Header.Get(k); got != v {
				t.Errorf("header %s = %q, want %q", k, got, v)
			}
		}
		if m.Subject != "events.library."+libID+".document.added" {
			t.Errorf("subject %q", m.Subject)
		}
	})
}

func uuidV7(s string) (int, error) {
	if len(s) != 36 || s[14] != '7' {
		return 0, fmt.Errorf("not a UUIDv7")
	}
	return 7, nil
}

func TestRollbackPublishesNothing(t *testing.T) {
	eachDialect(t, func(t *testing.T, be *backend) {
		ctx := t.Context()
		bus := newBus(t)
		ob := be.newOutbox(t)
		startRelay(t, ob, bus.pub)

		tx, err := be.db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		rolledBack, err := ob.Add(ctx, tx, docEvent(1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO docs (n, event_id) VALUES (`+be.ph(1)+`, `+be.ph(2)+`)`, 1, rolledBack); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		ob.Notify()

		// A change committed after the rolled-back one: the relay works in
		// id order, so once this one is stored the other would be too.
		marker, err := change(ctx, be.db, be.dialect, ob, 2)
		if err != nil {
			t.Fatal(err)
		}
		waitDrained(t, ob, bus.js, 1, 30*time.Second)
		got := ids(streamEvents(t, bus.js))
		if !slices.Equal(got, []string{marker}) {
			t.Fatalf("stream holds %v, want only %s (rolled back: %s)", got, marker, rolledBack)
		}
		checkExactlyOnce(t, committedIDs(t, be.db), got)
	})
}

func TestAddRejectsInvalidEvents(t *testing.T) {
	eachDialect(t, func(t *testing.T, be *backend) {
		ctx := t.Context()
		ob := be.newOutbox(t, outbox.WithMaxEventSize(400))
		big := docEvent(1)
		big.Data = json.RawMessage(`{"title":"` + strings.Repeat("x", 400) + `"}`)
		cases := []struct {
			name string
			ev   event.Event
			want error
		}{
			{"subject injection in library id", event.Event{Type: "document.added", LibraryID: "lib.>"}, event.ErrInvalid},
			{"bad type", event.Event{Type: "Document", LibraryID: libID}, event.ErrInvalid},
			{"data not an object", event.Event{Type: "document.added", LibraryID: libID, Data: json.RawMessage(`[1]`)}, event.ErrInvalid},
			{"control character in id", event.Event{ID: "a\nb", Type: "document.added", LibraryID: libID}, event.ErrInvalid},
			{"too large", big, event.ErrTooLarge},
		}
		tx, err := be.db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback() }()
		for _, c := range cases {
			id, err := ob.Add(ctx, tx, c.ev)
			if !errors.Is(err, c.want) || id != "" {
				t.Errorf("%s: Add = %q, %v; want %v", c.name, id, err, c.want)
			}
		}
		// Nothing was sent to the database: the transaction is intact.
		if _, err := ob.Add(ctx, tx, docEvent(2)); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if d := depth(t, ob); d != 1 {
			t.Fatalf("depth %d, want 1", d)
		}
		if _, err := ob.Add(ctx, nil, docEvent(3)); err == nil {
			t.Error("Add with a nil tx: no error")
		}
	})
}

func TestFullOutboxRefusesAdds(t *testing.T) {
	eachDialect(t, func(t *testing.T, be *backend) {
		ctx := t.Context()
		bus := newBus(t)
		ob := be.newOutbox(t, outbox.WithMaxRows(3))
		for i := range 3 {
			if _, err := ob.AddDB(ctx, docEvent(i)); err != nil {
				t.Fatal(err)
			}
		}
		_, err := ob.AddDB(ctx, docEvent(3))
		if !errors.Is(err, outbox.ErrFull) {
			t.Fatalf("Add to a full outbox: %v, want ErrFull", err)
		}
		if !strings.Contains(err.Error(), "3 rows waiting, limit 3") {
			t.Errorf("error %q does not say how full", err)
		}
		if d := depth(t, ob); d != 3 {
			t.Fatalf("depth %d, want 3", d)
		}
		// Once the relay drained it, there is room again.
		startRelay(t, ob, bus.pub)
		waitDrained(t, ob, bus.js, 3, 30*time.Second)
		if _, err := ob.AddDB(ctx, docEvent(4)); err != nil {
			t.Fatal(err)
		}
		waitDrained(t, ob, bus.js, 4, 30*time.Second)
	})
}

func TestDuplicateIDRefused(t *testing.T) {
	eachDialect(t, func(t *testing.T, be *backend) {
		ctx := t.Context()
		ob := be.newOutbox(t)
		ev := docEvent(1)
		ev.ID = event.NewID()
		if id, err := ob.AddDB(ctx, ev); err != nil || id != ev.ID {
			t.Fatalf("AddDB = %q, %v; want the given id", id, err)
		}
		if _, err := ob.AddDB(ctx, ev); !errors.Is(err, outbox.ErrDuplicateID) {
			t.Fatalf("second AddDB: %v, want ErrDuplicateID", err)
		}
		if d := depth(t, ob); d != 1 {
			t.Fatalf("depth %d", d)
		}
	})
}

func TestRelayKeepsOrder(t *testing.T) {
	eachDialect(t, func(t *testing.T, be *backend) {
		ctx := t.Context()
		bus := newBus(t)
		ob := be.newOutbox(t)
		// Written before the relay starts, so it drains a backlog in
		// several batches.
		const n = 300
		for i := range n {
			if _, err := change(ctx, be.db, be.dialect, ob, i); err != nil {
				t.Fatal(err)
			}
		}
		startRelay(t, ob, bus.pub, outbox.WithBatchSize(32))
		waitDrained(t, ob, bus.js, n, 30*time.Second)
		checkStoredInCommitOrder(t, bus.js, be.db)
	})
}

func TestNotifyWakesIdleRelay(t *testing.T) {
	eachDialect(t, func(t *testing.T, be *backend) {
		ctx := t.Context()
		bus := newBus(t)
		ob := be.newOutbox(t)
		r := startRelay(t, ob, bus.pub, outbox.WithPollInterval(time.Hour))
		for i := range 3 {
			if _, err := ob.AddDB(ctx, docEvent(i)); err != nil { // AddDB notifies
				t.Fatal(err)
			}
			waitDrained(t, ob, bus.js, i+1, 20*time.Second)
		}
		// A transaction of the caller's own, then Relay.Notify.
		tx, err := be.db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ob.Add(ctx, tx, docEvent(3)); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		r.Notify()
		waitDrained(t, ob, bus.js, 4, 20*time.Second)
	})
}

func TestUnpublishableEventsAreDeadLettered(t *testing.T) {
	eachDialect(t, func(t *testing.T, be *backend) {
		ctx := t.Context()
		bus := newBus(t)
		ob := be.newOutbox(t)
		// The publisher accepts smaller events than the outbox: an event
		// between the two limits can never be published.
		pub := newPublisher(t, bus.nc, publisher.WithMaxEventSize(400))
		var want []string
		for i := range 5 {
			ev := docEvent(i)
			if i == 2 {
				ev.Data = json.RawMessage(`{"title":"` + strings.Repeat("x", 500) + `"}`)
			}
			id, err := ob.AddDB(ctx, ev)
			if err != nil {
				t.Fatal(err)
			}
			if i != 2 {
				want = append(want, id)
			}
		}
		// A row that does not decode at all.
		q := fmt.Sprintf(`INSERT INTO %s (event_id, subject, payload, created_at) VALUES (%s, %s, %s, %s)`,
			ob.Table(), be.ph(1), be.ph(2), be.ph(3), be.ph(4))
		var created any = time.Now().UnixMicro()
		if be.dialect == outbox.PostgreSQL {
			created = time.Now()
		}
		if _, err := be.db.ExecContext(ctx, q, "garbage-1", "events.x", []byte("not json"), created); err != nil {
			t.Fatal(err)
		}
		last, err := ob.AddDB(ctx, docEvent(9))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, last)

		startRelay(t, ob, pub)
		waitDrained(t, ob, bus.js, len(want), 30*time.Second)
		if got := ids(streamEvents(t, bus.js)); !slices.Equal(got, want) {
			t.Fatalf("stream %v, want %v", got, want)
		}
		s, err := ob.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.Dead != 2 {
			t.Fatalf("dead letters %d, want 2", s.Dead)
		}
		reasons := column[string](ctx, t, be.db, `SELECT reason FROM `+ob.Table()+`_dead ORDER BY id`)
		if len(reasons) != 2 || !strings.Contains(reasons[0], "too large") || !strings.Contains(reasons[1], "garbage-1") {
			t.Fatalf("dead-letter reasons %q", reasons)
		}
	})
}

func TestStatsAndCollector(t *testing.T) {
	eachDialect(t, func(t *testing.T, be *backend) {
		ctx := t.Context()
		bus := newBus(t)
		ob := be.newOutbox(t)
		reg := prometheus.NewRegistry()
		if err := reg.Register(ob.Collector()); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if _, err := ob.AddDB(ctx, docEvent(i)); err != nil {
				t.Fatal(err)
			}
		}
		s, err := ob.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.Depth != 3 || s.OldestAge <= 0 || s.OldestAge > time.Minute || s.Relayed != 0 {
			t.Fatalf("stats before relaying %+v", s)
		}
		m := gather(t, reg)
		if m["arrwcdc_outbox_depth"] != 3 || m["arrwcdc_outbox_oldest_age_seconds"] <= 0 || m["arrwcdc_outbox_relayed_total"] != 0 {
			t.Fatalf("metrics before relaying %v", m)
		}

		startRelay(t, ob, bus.pub)
		waitDrained(t, ob, bus.js, 3, 30*time.Second)
		m = gather(t, reg)
		want := map[string]float64{
			"arrwcdc_outbox_depth": 0, "arrwcdc_outbox_oldest_age_seconds": 0, "arrwcdc_outbox_dead_letters": 0,
			"arrwcdc_outbox_relayed_total": 3, "arrwcdc_outbox_publish_errors_total": 0,
		}
		for k, v := range want {
			if got, ok := m[k]; !ok || got != v {
				t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
			}
		}
	})
}

// gather returns each metric's value; every outbox metric has one series.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if l := m.GetLabel(); len(l) != 1 || l[0].GetName() != "table" || l[0].GetValue() != outbox.DefaultTable {
				t.Errorf("%s labels %v", mf.GetName(), l)
			}
			switch {
			case m.GetGauge() != nil:
				out[mf.GetName()] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				out[mf.GetName()] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

func TestMigrateIsIdempotentAndTableNamed(t *testing.T) {
	eachDialect(t, func(t *testing.T, be *backend) {
		ctx := t.Context()
		ob := be.newOutbox(t, outbox.WithTable("app_events"))
		if err := ob.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := ob.AddDB(ctx, docEvent(1)); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := be.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM app_events`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("app_events holds %d rows (%v)", n, err)
		}
	})
}

func TestOptionsValidated(t *testing.T) {
	db, err := sql.Open("sqlite", "file::memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for name, opt := range map[string]outbox.Option{
		"table with a quote": outbox.WithTable(`x"; DROP TABLE y; --`),
		"empty table":        outbox.WithTable(""),
		"max rows 0":         outbox.WithMaxRows(0),
		"bad prefix":         outbox.WithPrefix("a..b"),
		"bad source":         outbox.WithSource("a\x00b"),
		"max size 0":         outbox.WithMaxEventSize(0),
	} {
		if _, err := outbox.New(db, outbox.SQLite, opt); !errors.Is(err, outbox.ErrInvalidOption) {
			t.Errorf("%s: %v, want ErrInvalidOption", name, err)
		}
	}
	if _, err := outbox.New(nil, outbox.SQLite); !errors.Is(err, outbox.ErrInvalidOption) {
		t.Errorf("nil db: %v", err)
	}
	if _, err := outbox.New(db, outbox.Dialect(9)); !errors.Is(err, outbox.ErrInvalidOption) {
		t.Errorf("unknown dialect: %v", err)
	}
	ob, err := outbox.New(db, outbox.SQLite, outbox.WithTable("myschema.events"))
	if err != nil {
		t.Fatal(err)
	}
	for name, opt := range map[string]outbox.RelayOption{
		"batch 0":      outbox.WithBatchSize(0),
		"batch huge":   outbox.WithBatchSize(1 << 20),
		"poll 0":       outbox.WithPollInterval(0),
		"backoff flip": outbox.WithBackoff(time.Second, time.Millisecond),
	} {
		if _, err := outbox.NewRelay(ob, nil, opt); !errors.Is(err, outbox.ErrInvalidOption) {
			t.Errorf("%s: %v, want ErrInvalidOption", name, err)
		}
	}
	if _, err := outbox.NewRelay(ob, nil); !errors.Is(err, outbox.ErrInvalidOption) {
		t.Errorf("nil publisher: %v", err)
	}
}

func TestRelayRunOnceAndClosedPublisher(t *testing.T) {
	be := newBackend(t, outbox.SQLite)
	bus := newBus(t)
	ob := be.newOutbox(t)
	pub, err := publisher.New(bus.nc)
	if err != nil {
		t.Fatal(err)
	}
	r, err := outbox.NewRelay(ob, pub)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	if _, err := ob.AddDB(t.Context(), docEvent(1)); err != nil {
		t.Fatal(err)
	}
	waitDrained(t, ob, bus.js, 1, 20*time.Second)
	if err := r.Run(ctx); !errors.Is(err, outbox.ErrRelayRunning) {
		t.Fatalf("second Run: %v, want ErrRelayRunning", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}

	// A closed publisher ends Run with an error, and the row stays.
	if err := pub.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := ob.AddDB(t.Context(), docEvent(2)); err != nil {
		t.Fatal(err)
	}
	if err := r.Run(t.Context()); !errors.Is(err, publisher.ErrClosed) {
		t.Fatalf("Run with a closed publisher: %v, want ErrClosed", err)
	}
	if d := depth(t, ob); d != 1 {
		t.Fatalf("depth %d, want 1", d)
	}
}
