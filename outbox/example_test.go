package outbox_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/nats-io/nats.go"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/outbox"
	"github.com/arrwdb/arrwcdc/publisher"
)

// An application writes its change and the change's event in one
// transaction; a rolled-back transaction leaves no event behind.
func ExampleOutbox_Add() {
	dir, err := os.MkdirTemp("", "outbox-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := outbox.OpenSQLite(filepath.Join(dir, "app.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	ob, err := outbox.New(db, outbox.SQLite)
	if err != nil {
		log.Fatal(err)
	}
	if err := ob.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE documents (id TEXT PRIMARY KEY, title TEXT)`); err != nil {
		log.Fatal(err)
	}

	addDocument := func(id, title string, commit bool) {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			log.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, `INSERT INTO documents (id, title) VALUES (?, ?)`, id, title); err != nil {
			log.Fatal(err)
		}
		ev, err := event.New(event.TypeDocumentAdded, "550e8400-e29b-41d4-a716-446655440000",
			event.DocumentAdded{DocumentID: id, Title: title, NumChunks: 1})
		if err != nil {
			log.Fatal(err)
		}
		if _, err := ob.Add(ctx, tx, ev); err != nil {
			log.Fatal(err)
		}
		if commit {
			if err := tx.Commit(); err != nil {
				log.Fatal(err)
			}
			ob.Notify() // wake a relay of this process now
		}
	}
	addDocument("doc-1", "Kept", true)
	addDocument("doc-2", "Rolled back", false)

	s, err := ob.Stats(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("events waiting for the relay:", s.Depth)
	// Output: events waiting for the relay: 1
}

// A relay publishes the outbox through a Publisher until its context ends.
// It needs a running broker (arrwcdc serve), so this example is compiled
// but not run.
func ExampleRelay() {
	db, err := outbox.OpenSQLite("buffer.db")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ob, err := outbox.New(db, outbox.SQLite, outbox.WithSource("app-1"))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := ob.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	// Keep reconnecting however long the brokers are away: the events wait
	// in the outbox meanwhile.
	nc, err := nats.Connect(nats.DefaultURL, nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	pub, err := publisher.New(nc, publisher.WithSource("app-1"))
	if err != nil {
		log.Fatal(err)
	}
	defer pub.Close(context.Background())
	relay, err := outbox.NewRelay(ob, pub)
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		if err := relay.Run(ctx); err != nil {
			log.Print(err)
		}
	}()

	// A publisher without a database of its own buffers through the
	// outbox: AddDB commits at once and wakes the relay.
	ev, _ := event.New(event.TypeLibraryCreated, "550e8400-e29b-41d4-a716-446655440000",
		event.LibraryCreated{Name: "papers", IndexType: "flat", EmbeddingDimension: 384})
	if _, err := ob.AddDB(ctx, ev); err != nil {
		log.Print(err) // outbox.ErrFull: the brokers have been away for long
	}
}
