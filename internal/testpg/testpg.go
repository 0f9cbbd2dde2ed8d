// Package testpg gives tests a real PostgreSQL database: the server named
// by $ARRWCDC_TEST_POSTGRES_URL, with a fresh schema for each test that is
// dropped at cleanup. Without the variable the test is skipped.
//
// CI (.ci/run) installs Debian's postgresql and sets the variable; by hand:
//
//	service postgresql start
//	su postgres -c "psql -c \"CREATE ROLE arrwcdc LOGIN SUPERUSER PASSWORD 'arrwcdc'\""
//	su postgres -c "createdb -O arrwcdc arrwcdc_test"
//	export ARRWCDC_TEST_POSTGRES_URL=postgres://arrwcdc:arrwcdc@127.0.0.1:5432/arrwcdc_test
package testpg

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// EnvURL names the environment variable holding the server's URL.
const EnvURL = "ARRWCDC_TEST_POSTGRES_URL"

// URL returns the server's URL, skipping t when it is not set.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		t.Skipf("PostgreSQL test skipped: set %s, e.g. postgres://arrwcdc:arrwcdc@127.0.0.1:5432/arrwcdc_test", EnvURL)
	}
	return u
}

// DB creates a schema of its own for t and returns a database handle
// (driver "pgx") whose connections use it. open returns more handles on
// the same schema, as other processes would have. The schema is dropped
// and every handle closed at cleanup. It skips t when [EnvURL] is unset.
func DB(t testing.TB) (db *sql.DB, open func() *sql.DB) {
	t.Helper()
	cfg, err := pgx.ParseConfig(URL(t))
	if err != nil {
		t.Fatalf("%s: %v", EnvURL, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "arrwcdc_test_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := stdlib.OpenDB(*cfg.Copy())
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		admin.Close()
	})

	open = func() *sql.DB {
		c := cfg.Copy()
		if c.RuntimeParams == nil {
			c.RuntimeParams = map[string]string{}
		}
		c.RuntimeParams["search_path"] = schema
		h := stdlib.OpenDB(*c)
		t.Cleanup(func() { h.Close() }) // runs before the schema is dropped
		return h
	}
	db = open()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	return db, open
}
