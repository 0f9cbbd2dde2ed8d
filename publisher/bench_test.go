package publisher_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/publisher"
)

// benchEvent is a document.added event of about 300 bytes once the
// publisher fills its id and source; the id is left empty so that every
// publish is a new event, not a duplicate.
func benchEvent(b *testing.B) event.Event {
	b.Helper()
	ev := event.Event{
		Type:      event.TypeDocumentAdded,
		LibraryID: libID,
		Data: json.RawMessage(`{"document_id":"a1b2c3d4-e5f6-7890-abcd-ef1234567890",` +
			`"title":"Attention Is All You Need (annotated copy)","num_chunks":42}`),
	}
	probe := ev
	probe.ID, probe.Source, probe.Timestamp = event.NewID(), "bench-app-1", time.Now()
	wire, err := event.Encode(&probe, 0)
	if err != nil {
		b.Fatal(err)
	}
	if len(wire) < 270 || len(wire) > 330 {
		b.Fatalf("benchmark event is %d bytes, want about 300", len(wire))
	}
	b.SetBytes(int64(len(wire)))
	return ev
}

func BenchmarkPublish(b *testing.B) {
	f := setup(b)
	p := f.newPublisher(b, publisher.WithSource("bench-app-1"), publisher.WithLogger(zap.NewNop()))
	ev := benchEvent(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Publish(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPublishAsync(b *testing.B) {
	f := setup(b)
	p := f.newPublisher(b, publisher.WithSource("bench-app-1"), publisher.WithLogger(zap.NewNop()))
	ev := benchEvent(b)
	ctx := context.Background()
	// Waiting for acks in batches keeps the futures' memory bounded and
	// still measures the pipelined rate.
	const batch = 1024
	futures := make([]*publisher.Future, 0, batch)
	wait := func() {
		for _, fut := range futures {
			if _, err := fut.Wait(ctx); err != nil {
				b.Fatal(err)
			}
		}
		futures = futures[:0]
	}
	b.ReportAllocs()
	for b.Loop() {
		fut, err := p.PublishAsync(ev)
		if err != nil {
			b.Fatal(err)
		}
		if futures = append(futures, fut); len(futures) == batch {
			wait()
		}
	}
	wait()
}
