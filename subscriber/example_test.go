package subscriber_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/nats-io/nats.go"

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
