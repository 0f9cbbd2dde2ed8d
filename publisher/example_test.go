package publisher_test

import (
	"context"
	"errors"
	"log"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/publisher"
)

// Publishing needs a running broker (arrwcdc serve), so this example is
// compiled but not run.
func Example() {
	nc, err := nats.Connect(nats.DefaultURL)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close() // the caller owns the connection

	p, err := publisher.New(nc, publisher.WithSource("app-1"))
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil { // waits for async acks
			log.Print(err)
		}
	}()

	ctx := context.Background()
	ack, err := p.DocumentAdded(ctx, "550e8400-e29b-41d4-a716-446655440000",
		event.DocumentAdded{DocumentID: "a1b2c3d4", Title: "My Document", NumChunks: 3})
	switch {
	case errors.Is(err, event.ErrInvalid):
		log.Fatal(err) // a bug: bad library id, type or data
	case err != nil:
		log.Print(err) // not acknowledged: retry with the same event id, or keep it in an outbox
	default:
		log.Printf("stored as %s at seq %d", ack.ID, ack.Seq)
	}

	// Many events without waiting for each ack.
	fut, err := p.PublishAsync(event.Event{
		Type:      "workflow.completed",
		LibraryID: "550e8400-e29b-41d4-a716-446655440000",
		Data:      []byte(`{"steps":3}`),
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := fut.Wait(ctx); err != nil {
		log.Print(err)
	}
}

// Repository code holds a Hooks and never sees NATS.
func ExampleNewHooks() {
	nc, err := nats.Connect(nats.DefaultURL)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	p, err := publisher.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(context.Background())

	// One search in ten is published.
	hooks, err := publisher.NewHooks(p, publisher.HooksConfig{SearchSampleRate: 0.1})
	if err != nil {
		log.Fatal(err)
	}
	repo := newRepository(hooks)
	_ = repo.search(context.Background(), "550e8400-e29b-41d4-a716-446655440000", "machine learning")
}

type repository struct{ hooks publisher.Hooks }

func newRepository(h publisher.Hooks) *repository {
	if h == nil {
		h = publisher.NopHooks{}
	}
	return &repository{hooks: h}
}

func (r *repository) search(ctx context.Context, libraryID, query string) error {
	start := time.Now()
	results := 8 // ... the search itself
	return r.hooks.SearchPerformed(ctx, libraryID, event.SearchPerformed{
		Query: query, K: 10, ResultsCount: results,
		DurationMS: float64(time.Since(start).Microseconds()) / 1000,
	})
}
