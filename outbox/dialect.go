package outbox

import (
	"errors"
	"fmt"
	"hash/fnv"
	"iter"
	"strconv"
	"strings"
	"time"
)

// Dialect is the SQL flavour of the outbox's database.
type Dialect int

const (
	// SQLite is modernc.org/sqlite (driver name "sqlite", no cgo), the
	// embedded default; open the file with [OpenSQLite]. One relay per
	// database file.
	SQLite Dialect = iota + 1
	// PostgreSQL is PostgreSQL through database/sql, for example with
	// github.com/jackc/pgx/v5/stdlib (driver name "pgx"). Several relays
	// on one database share the work.
	PostgreSQL
)

// String returns "sqlite" or "postgresql".
func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case PostgreSQL:
		return "postgresql"
	default:
		return "Dialect(" + strconv.Itoa(int(d)) + ")"
	}
}

func (d Dialect) valid() bool { return d == SQLite || d == PostgreSQL }

// ph returns the n-th (1-based) placeholder.
func (d Dialect) ph(n int) string {
	if d == PostgreSQL {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}

// phs returns count placeholders starting at the from-th, comma-separated.
func (d Dialect) phs(from, count int) string {
	var b strings.Builder
	for i := range count {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(d.ph(from + i))
	}
	return b.String()
}

// timeArg is how a time is stored: unix microseconds (UTC) in SQLite,
// timestamptz in PostgreSQL.
func (d Dialect) timeArg(t time.Time) any {
	if d == PostgreSQL {
		return t.UTC()
	}
	return t.UnixMicro()
}

// scanTime reads back what timeArg stored.
func scanTime(v any) (time.Time, error) {
	switch v := v.(type) {
	case time.Time:
		return v, nil
	case int64:
		return time.UnixMicro(v), nil
	default:
		return time.Time{}, fmt.Errorf("created_at: unexpected %T", v)
	}
}

// schema returns the statements that create the outbox table and its
// dead-letter table, idempotently.
func (d Dialect) schema(table string) []string {
	dead := table + deadSuffix
	if d == PostgreSQL {
		return []string{
			`CREATE TABLE IF NOT EXISTS ` + table + ` (
	id         BIGSERIAL PRIMARY KEY,
	event_id   TEXT NOT NULL UNIQUE,
	subject    TEXT NOT NULL,
	payload    BYTEA NOT NULL,
	created_at TIMESTAMPTZ NOT NULL
)`,
			`CREATE TABLE IF NOT EXISTS ` + dead + ` (
	id         BIGINT PRIMARY KEY,
	event_id   TEXT NOT NULL,
	subject    TEXT NOT NULL,
	payload    BYTEA NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	failed_at  TIMESTAMPTZ NOT NULL,
	reason     TEXT NOT NULL
)`,
		}
	}
	// AUTOINCREMENT: ids never go back, even after the table was drained,
	// so id order is the order of Add across the table's whole life.
	return []string{
		`CREATE TABLE IF NOT EXISTS ` + table + ` (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	event_id   TEXT NOT NULL UNIQUE,
	subject    TEXT NOT NULL,
	payload    BLOB NOT NULL,
	created_at INTEGER NOT NULL
)`,
		`CREATE TABLE IF NOT EXISTS ` + dead + ` (
	id         INTEGER PRIMARY KEY,
	event_id   TEXT NOT NULL,
	subject    TEXT NOT NULL,
	payload    BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	failed_at  INTEGER NOT NULL,
	reason     TEXT NOT NULL
)`,
	}
}

// lockKey is the advisory lock key that serializes Migrate on PostgreSQL.
func lockKey(table string) int64 {
	h := fnv.New64a()
	h.Write([]byte("arrwcdc-outbox:" + table))
	return int64(h.Sum64())
}

// queries holds the statements built once for a table and dialect.
type queries struct {
	insert       string // event_id, subject, payload, created_at
	insertIfRoom string // the same, plus maxRows: inserts nothing when the id span reaches it
	count        string
	oldest       string // created_at of the row with the lowest id
	claim        string // the next batch in id order; args: after (exclusive), limit
	dead         string // copy one row to the dead-letter table; args: failed_at, reason, id
	deadN        string // rows in the dead-letter table
}

func (d Dialect) queries(table string) queries {
	q := queries{
		insert: `INSERT INTO ` + table + ` (event_id, subject, payload, created_at) VALUES (` + d.phs(1, 4) + `)`,
		// max(id) - min(id) + 1 is an upper bound of the row count that
		// costs two index lookups (one MIN or MAX per subquery: both engines
		// answer each from the primary key without scanning), so the
		// common case is one statement.
		insertIfRoom: `INSERT INTO ` + table + ` (event_id, subject, payload, created_at) SELECT ` + d.phs(1, 4) +
			` WHERE COALESCE((SELECT MAX(id) FROM ` + table + `) - (SELECT MIN(id) FROM ` + table + `) + 1, 0) < ` + d.ph(5),
		count:  `SELECT COUNT(*) FROM ` + table,
		oldest: `SELECT created_at FROM ` + table + ` ORDER BY id LIMIT 1`,
		claim:  `SELECT id, event_id, payload FROM ` + table + ` WHERE id > ` + d.ph(1) + ` ORDER BY id LIMIT ` + d.ph(2),
		dead: `INSERT INTO ` + table + deadSuffix + ` (id, event_id, subject, payload, created_at, failed_at, reason) ` +
			`SELECT id, event_id, subject, payload, created_at, ` + d.ph(1) + `, ` + d.ph(2) + ` FROM ` + table + ` WHERE id = ` + d.ph(3),
		deadN: `SELECT COUNT(*) FROM ` + table + deadSuffix,
	}
	if d == PostgreSQL {
		// Rows another relay holds are skipped, not waited for: relays on
		// one database take disjoint batches.
		q.claim += ` FOR UPDATE SKIP LOCKED`
	}
	return q
}

// deleteIDs yields the statements, with their arguments, that remove the
// rows of ids (sorted, distinct). Consecutive ids become one range — a
// batch relayed in full is one "id BETWEEN first AND last" — and the
// others go into an IN list; each statement has at most deleteTerms
// placeholders.
func (d Dialect) deleteIDs(table string, ids []int64) iter.Seq2[string, []any] {
	return func(yield func(string, []any) bool) {
		var (
			ranges, singles []any
			n               int
		)
		flush := func() bool {
			if n == 0 {
				return true
			}
			var b strings.Builder
			b.WriteString(`DELETE FROM ` + table + ` WHERE `)
			args := make([]any, 0, n)
			for i := 0; i < len(ranges); i += 2 {
				if i > 0 {
					b.WriteString(` OR `)
				}
				b.WriteString(`id BETWEEN ` + d.ph(len(args)+1) + ` AND ` + d.ph(len(args)+2))
				args = append(args, ranges[i], ranges[i+1])
			}
			if len(singles) > 0 {
				if len(ranges) > 0 {
					b.WriteString(` OR `)
				}
				b.WriteString(`id IN (` + d.phs(len(args)+1, len(singles)) + `)`)
				args = append(args, singles...)
			}
			ranges, singles, n = ranges[:0], singles[:0], 0
			return yield(b.String(), args)
		}
		for i := 0; i < len(ids); {
			j := i + 1
			for j < len(ids) && ids[j] == ids[j-1]+1 {
				j++
			}
			if n+2 > deleteTerms && !flush() {
				return
			}
			if j-i == 1 {
				singles = append(singles, ids[i])
				n++
			} else {
				ranges = append(ranges, ids[i], ids[j-1])
				n += 2
			}
			i = j
		}
		flush()
	}
}

// uniqueViolation reports whether err is a unique-constraint violation of
// either engine, without importing the drivers: pgconn.PgError has
// SQLState() (23505), modernc's *sqlite.Error has Code()
// (SQLITE_CONSTRAINT_UNIQUE = 2067, SQLITE_CONSTRAINT_PRIMARYKEY = 1555).
func uniqueViolation(err error) bool {
	if pg, ok := errors.AsType[interface {
		error
		SQLState() string
	}](err); ok && pg.SQLState() == "23505" {
		return true
	}
	if lite, ok := errors.AsType[interface {
		error
		Code() int
	}](err); ok {
		c := lite.Code()
		return c == 2067 || c == 1555
	}
	return false
}
