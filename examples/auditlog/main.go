// Command auditlog writes every change event exactly once into an SQLite
// audit table, from a durable consumer that any number of instances share.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/outbox"
)

func main() {
	url := flag.String("nats-url", nats.DefaultURL, "NATS server URLs, comma-separated")
	dbPath := flag.String("db", "audit.db", "SQLite file of the audit log")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *url, *dbPath); err != nil {
		fmt.Fprintln(os.Stderr, "auditlog:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, url, dbPath string) error {
	log, _ := zap.NewProduction()
	defer log.Sync() //nolint:errcheck
	// WAL and immediate transactions: safe for several auditors on one file.
	db, err := outbox.OpenSQLite(dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	a, err := NewAuditor(ctx, db)
	if err != nil {
		return err
	}
	sub, err := a.Start(ctx, js, log)
	if err != nil {
		return err
	}
	log.Info("auditing every event", zap.String("db", dbPath))
	<-sub.Done() // ctx ended: the subscription drains by itself
	return nil
}
