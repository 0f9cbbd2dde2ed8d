package publisher

import (
	"encoding/json"
	"testing"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/allocs"
)

// TestAllocBudgets: preparing an event without an id allocates the id
// (2: event.NewID's array and string), its encoding (which holds the
// ce-time value too) and its subject. (The message and its header map
// come from a sync.Pool, left out here: under -race the pool drops a
// quarter of what it is given, on purpose.) Reading an ack allocates
// nothing.
func TestAllocBudgets(t *testing.T) {
	p := &Publisher{prefix: "events", source: "bench-app-1", maxSize: event.DefaultMaxSize}
	data := json.RawMessage(`{"document_id":"a1b2c3d4-e5f6-7890-abcd-ef1234567890","num_chunks":42}`)
	ack := []byte(`{"stream":"EVENTS","seq":1234567,"duplicate": true}`) // as nats-server writes it
	allocs.Check(t,
		allocs.Budget{Name: "prepare", Max: 4, Fn: func() {
			ev := event.Event{Type: event.TypeDocumentAdded, LibraryID: "lib-1", Data: data}
			var pr prepared
			if err := p.prepare(&ev, &pr); err != nil {
				t.Fatal(err)
			}
		}},
		allocs.Budget{Name: "parseAck", Max: 0, Fn: func() {
			if _, _, err := parseAck(ack); err != nil {
				t.Fatal(err)
			}
		}},
	)
}
