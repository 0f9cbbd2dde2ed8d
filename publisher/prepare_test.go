package publisher

import (
	"encoding/json"
	"testing"

	"github.com/arrwdb/arrwcdc/event"
)

// BenchmarkPrepare is the publisher's own work per event, without the
// connection: fill, validate, encode, subject and headers (the message
// from the pool, as a publish takes it).
func BenchmarkPrepare(b *testing.B) {
	p := &Publisher{prefix: "events", source: "bench-app-1", maxSize: event.DefaultMaxSize}
	data := json.RawMessage(`{"document_id":"a1b2c3d4-e5f6-7890-abcd-ef1234567890",` +
		`"title":"Attention Is All You Need (annotated copy)","num_chunks":42}`)
	b.ReportAllocs()
	for b.Loop() {
		ev := event.Event{Type: event.TypeDocumentAdded, LibraryID: "lib-1", Data: data}
		var pr prepared
		if err := p.prepare(&ev, &pr); err != nil {
			b.Fatal(err)
		}
		m := getMsg(&pr, "")
		if m.m.Header.Get(hdrID) != ev.ID {
			b.Fatalf("ce-id %q, want %q", m.m.Header.Get(hdrID), ev.ID)
		}
		putMsg(m)
	}
}
