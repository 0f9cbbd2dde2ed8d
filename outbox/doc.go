// Package outbox is a transactional outbox on database/sql: a change event
// is written into a table of the application's own database in the same
// transaction as the change, and a [Relay] publishes it to JetStream after
// the commit. The change and its event happen together or not at all, and
// events wait safely in the table while the brokers are unreachable.
//
// # Writing
//
//	err := ob.Tx(ctx, func(tx *sql.Tx) error {
//		// ... the application's own INSERT/UPDATE/DELETE with tx ...
//		_, err := ob.Add(ctx, tx, ev) // same transaction
//		return err
//	}) // commits, then wakes the relays of this process
//
// or, with a transaction of the caller's own:
//
//	tx, _ := db.BeginTx(ctx, nil)
//	// ... the application's change ...
//	if _, err := ob.Add(ctx, tx, ev); err != nil { tx.Rollback(); return err }
//	if err := tx.Commit(); err != nil { return err }
//	ob.Notify() // optional: wake the relay now rather than at its next poll
//
// [Outbox.Add] fills the event's empty id (UUIDv7), source and timestamp as
// the publisher does, validates and encodes it, and inserts one row
// (id, event_id, subject, payload, created_at) into the caller's
// transaction. A rollback leaves nothing behind, so nothing is published.
// [Outbox.AddDB] does the same in a transaction of its own, for a
// publisher that has no database of its own and keeps a local SQLite file
// ([OpenSQLite]) only as its buffer against broker outages.
//
// The outbox is bounded ([WithMaxRows], a million rows by default): when
// it is full, Add returns an error wrapping [ErrFull] and writes nothing.
// It never drops an event silently. Depth, the age of the oldest row and
// the relay's counters are in [Outbox.Stats] and [Outbox.Collector].
//
// # Relaying
//
// [Relay.Run] claims rows in id order, a batch at a time, publishes each
// event with [publisher.Publisher.PublishAsync] (so the Nats-Msg-Id and
// CloudEvents headers are set in one place, with Nats-Msg-Id = event id),
// waits for the acks and deletes the rows that were acknowledged. A
// publish that fails (broker down, no ack in time) leaves its row, and the
// relay retries after an exponential backoff (50 ms doubling to 2 s).
//
// On SQLite the relay pipelines its batches: while one batch waits for
// its acks, the next ones are claimed and published (at most six batches
// await their acks at once), and while acknowledged rows are deleted the
// acks of the next batches are awaited; the rows acknowledged while a
// delete commits are deleted together in the next transaction. The broker
// is kept busy while the relay reads, decodes and fsyncs, and one commit
// covers several batches. On PostgreSQL each batch is claimed, published,
// acknowledged and deleted in turn, in the transaction that holds its row
// locks (see below).
//
// A crash anywhere — before the publish, after it, after the ack but
// before the delete — only ever causes a re-send, never a loss: a row is
// deleted only after its ack. The stream drops a re-sent event whose id it
// stored within its duplicate window (2 minutes by default), so the stream
// holds each committed event exactly once provided the re-send comes
// within that window. A relay that was down for longer after an ack it
// could not record re-sends a duplicate that the stream keeps; consumers
// that must not act twice key on the event id (package subscriber has a
// helper).
//
// An event that can never be published as it is — its row does not
// decode, or the publisher or the server rejects it as invalid or too
// large (for example when the publisher's maximum event size is smaller
// than the outbox's) — would block everything behind it forever. The
// relay moves such a row to the dead-letter table (the outbox table's
// name plus "_dead", with the reason and the time), logs it at error
// level and goes on; [Stats.Dead] and the arrwcdc_outbox_dead_letters
// gauge count them.
//
// # Ordering
//
// One relay publishes rows in id order, and JetStream stores the
// publishes of one connection in the order they were sent, so as long as
// publishes succeed, events are stored in the order their rows were
// added, pipelined batches included: a batch is published after the one
// before it, on the same connection.
//
// When a publish fails, the events sent after it before the relay learnt
// of the failure may already be stored, and the failed one is stored after
// them when it is retried. The relay then stops publishing, lets the
// publishes in flight settle, deletes the rows acknowledged, waits its
// backoff and sends the lowest remaining row alone; only once that one is
// acknowledged does it go on with whole batches. So a failure moves the
// failed events behind at most the window that was in flight — the rest
// of their batch and, on SQLite, up to five batches after it (under 3,072
// events with the default batch size) — and never further: while the
// lowest row keeps failing, nothing behind it is published. An ack that
// timed out may have been stored after all; the retry is then a duplicate
// that the stream drops, and the order is kept. An event that can never be
// published is dead-lettered (above) rather than retried.
//
// On PostgreSQL, ids come from a sequence when rows are inserted, not when
// they commit, so a transaction that commits later may carry lower ids
// than rows already relayed; the order then follows commits. Events added
// in one transaction, or in transactions that follow one another, keep
// their order. With several relays on one PostgreSQL database, each relay
// keeps its own batches in order, but there is no order across relays.
//
// # SQLite and PostgreSQL
//
// SQLite (modernc.org/sqlite, pure Go) is the embedded default. Open the
// file with [OpenSQLite]: WAL, a busy timeout and BEGIN IMMEDIATE
// transactions, so that concurrent writers queue for the lock instead of
// failing with SQLITE_BUSY. Run one relay per database file: a second
// relay on the same file would publish the same rows again (the stream
// drops them as duplicates, but the work is wasted). The relay reads and
// publishes outside any transaction and takes the write lock only for the
// short delete, so writers are not held up while it waits for acks. Its
// pipelined claims continue after the last id claimed: SQLite has one
// writer at a time and AUTOINCREMENT ids never go back, so a row committed
// later always has a higher id.
//
// SQLite has one write lock per file, and its busy handler is not fair: a
// goroutine that commits back to back can keep the relay from deleting
// what it published, so the outbox grows until the writes pause. Writers
// that go through [Outbox.Tx] or [Outbox.AddDB] take turns with the
// relays of their process, first come first served; in a test with a
// writer committing in a tight loop this kept the backlog at a few dozen
// rows instead of most of what was written.
//
// PostgreSQL (for example through github.com/jackc/pgx/v5/stdlib, driver
// "pgx") supports any number of relays on one database, in any processes:
// each claims its batch with SELECT … FOR UPDATE SKIP LOCKED in a
// transaction that it holds while publishing the batch, so relays take
// disjoint batches and share the work. Keep batches moderate
// ([WithBatchSize]): a relay holds that many row locks for up to the
// publisher's ack timeout. For the same reason a PostgreSQL relay does
// not pipeline: a batch in flight would hold its locks in a transaction
// of its own while the next one is claimed, and a later claim that starts
// after the last id claimed could pass over rows committed late with lower
// ids (see "Ordering").
//
// [Outbox.Migrate] creates the table (and its dead-letter table):
//
//	id          INTEGER PRIMARY KEY AUTOINCREMENT | BIGSERIAL PRIMARY KEY   -- the order
//	event_id    TEXT NOT NULL UNIQUE                                         -- Nats-Msg-Id
//	subject     TEXT NOT NULL                                                -- <prefix>.library.<id>.<type>
//	payload     BLOB | BYTEA NOT NULL                                        -- the encoded event JSON
//	created_at  INTEGER (unix µs) | TIMESTAMPTZ NOT NULL
//
// # Why an outbox
//
// The bus must not lose an acknowledged change, and it must not announce a
// change that did not happen. Two other designs were weighed.
//
// An in-memory reconnect buffer (what nats.go does by default while it
// reconnects, or a queue in the publisher) rides out short outages only:
// it dies with the process, it is bounded by memory, and whether a
// buffered message was stored stays unknown. Above all it cannot be atomic
// with the database change. Publishing after the commit loses the event
// if the process dies in between; publishing before the commit announces
// changes that are then rolled back. That is the dual-write problem, and
// no buffer outside the transaction solves it.
//
// A leaf node with JetStream next to each application (store-and-forward:
// the app publishes to a local stream that a hub stream sources) survives
// outages and restarts, but it is one more server per application instance
// to run, configure (JetStream domains, leaf credentials, a sourced stream
// per deployment), store and monitor, and it has the same dual-write
// problem: the publish to the leaf is still not in the database
// transaction.
//
// The outbox puts the event in the one place that is already atomic and
// durable for the application, its database, using plain SQL that works
// on SQLite and PostgreSQL alike (log-based capture needs replication
// slots and privileges on PostgreSQL and has no equivalent on SQLite). The
// relay is stateless — the table is its state — so any relay can take
// over, and the event id doubling as Nats-Msg-Id turns its at-least-once
// re-sends into exactly-once storage. The costs: one more row written per
// change, a relay's poll interval of latency unless [Outbox.Notify] is
// called, and ordering per relay rather than global. The same table, in a
// local SQLite file, is the buffer of a publisher without a database, so
// there is one mechanism for both jobs rather than two.
//
// # Concurrency
//
// An [Outbox] and a [Relay] are safe for concurrent use. [Relay.Run] runs
// one relay loop at a time; it returns when its context ends. The caller
// owns the *sql.DB and the publisher: the outbox closes neither.
package outbox
