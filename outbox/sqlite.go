package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	_ "modernc.org/sqlite" // driver "sqlite", pure Go
)

// sqliteDefaults are the connection settings of [OpenSQLite].
var sqliteDefaults = url.Values{
	// WAL: readers (the relay's claim, Stats) never block the writer and
	// the writer never blocks them.
	"_journal_mode": {"WAL"},
	// A writer that finds the database locked waits up to 10 s instead of
	// failing at once with SQLITE_BUSY.
	"_busy_timeout": {"10000"},
	// BEGIN IMMEDIATE: a transaction takes the write lock when it begins.
	// A deferred transaction that reads first and writes later (Add reads
	// the outbox's size, then inserts) cannot wait for the lock when
	// another connection wrote in between: it fails with SQLITE_BUSY
	// whatever the busy timeout.
	"_txlock": {"immediate"},
	// FULL: a committed transaction survives a power cut, not only a crash
	// of the process; NORMAL trades that for speed.
	"_synchronous": {"FULL"},
}

// OpenSQLite opens (creating it if needed) the SQLite database file at
// path with settings fit for an outbox shared by concurrent writers and a
// relay: WAL journal, a 10 s busy timeout, BEGIN IMMEDIATE transactions
// (_txlock=immediate) so that concurrent writers queue for the lock
// instead of failing with SQLITE_BUSY, and synchronous=FULL. Query
// parameters on path override these, for example
// "buffer.db?_synchronous=NORMAL". path must name a file: ":memory:"
// gives each pooled connection a database of its own.
//
// If you open the database yourself, use the same settings: in
// particular, without _txlock=immediate, transactions that call Add can
// fail with SQLITE_BUSY ("database is locked") under concurrency.
func OpenSQLite(path string) (*sql.DB, error) {
	file, query, _ := strings.Cut(path, "?")
	if file == "" || file == ":memory:" {
		return nil, errors.New("outbox: OpenSQLite: want a file path")
	}
	params := url.Values{}
	for k, v := range sqliteDefaults {
		params[k] = v
	}
	if query != "" {
		user, err := url.ParseQuery(query)
		if err != nil {
			return nil, fmt.Errorf("outbox: OpenSQLite %q: %w", path, err)
		}
		for k, v := range user {
			params[k] = v
		}
	}
	db, err := sql.Open("sqlite", file+"?"+params.Encode())
	if err != nil {
		return nil, fmt.Errorf("outbox: OpenSQLite %q: %w", file, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("outbox: OpenSQLite %q: %w", file, err)
	}
	return db, nil
}
