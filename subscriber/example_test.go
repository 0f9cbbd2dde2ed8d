package subscriber_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/subscriber"
)

// Index the documents of one library as they are added or deleted, with
// four workers shared by every instance in the "indexers" queue group.
func ExampleSubscribe() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	nc, err := nats.Connect(nats.DefaultURL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()

	filter := subscriber.Filter{
		LibraryID: "550e8400-e29b-41d4-a716-446655440000",
		Types:     []string{"document.*"},
	}
	sub, err := subscriber.Subscribe(ctx, nc, filter, func(ctx context.Context, d subscriber.Delivery) error {
		switch d.Type {
		case event.TypeDocumentAdded:
			var doc event.DocumentAdded
			if err := d.DataAs(&doc); err != nil {
				return err
			}
			fmt.Println("index", doc.DocumentID, doc.Title)
		case event.TypeDocumentDeleted:
			var doc event.DocumentDeleted
			if err := d.DataAs(&doc); err != nil {
				return err
			}
			fmt.Println("forget", doc.DocumentID)
		}
		return nil
	}, subscriber.Queue("indexers"), subscriber.Concurrency(4), subscriber.HandlerTimeout(5*time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}

	<-ctx.Done() // ending ctx starts a drain; wait for it, at most 10 s
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sub.Drain(shutdown); err != nil {
		fmt.Println(err)
	}
	fmt.Printf("%+v\n", sub.Stats())
}

// Keep an audit log of every document change, exactly once per event id,
// shared by every instance that consumes as "audit-log": a restart
// resumes after the last acknowledged event, a failing write is retried
// with backoff and dead-lettered after 5 attempts.
func ExampleConsume() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	nc, err := nats.Connect(nats.DefaultURL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Println(err)
		return
	}

	seen := subscriber.NewMemoryStore(100_000, 24*time.Hour)
	audit := subscriber.Idempotent(seen, func(ctx context.Context, d subscriber.Delivery) error {
		_, err := fmt.Printf("seq=%d %s %s %s\n", d.Seq, d.Type, d.LibraryID, d.ID)
		return err
	})
	sub, err := subscriber.Consume(ctx, js, "audit-log", subscriber.Filter{Types: []string{"document.*"}}, audit,
		subscriber.MaxDeliver(5), subscriber.Backoff(time.Second, 10*time.Second, time.Minute))
	if err != nil {
		fmt.Println(err)
		return
	}
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = sub.Drain(shutdown) // acknowledges what was handled
}

// Print what happened in one library since a point in time, then follow
// it live, in stream order.
func ExampleReplay() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	nc, err := nats.Connect(nats.DefaultURL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Println(err)
		return
	}
	filter := subscriber.Filter{LibraryID: "550e8400-e29b-41d4-a716-446655440000"}
	sub, err := subscriber.Replay(ctx, js, filter, func(_ context.Context, d subscriber.Delivery) error {
		fmt.Println(d.Seq, d.Type, d.ID)
		return nil
	}, subscriber.StartTime(time.Now().Add(-time.Hour)))
	if err != nil {
		fmt.Println(err)
		return
	}
	<-sub.Done() // drains by itself when ctx ends
}
