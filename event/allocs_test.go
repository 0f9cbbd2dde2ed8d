package event_test

import (
	"encoding/json"
	"testing"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/allocs"
)

// TestAllocBudgets: Encode allocates its output buffer, sized up front.
// Decode allocates once: the copy of data and the strings it reads (id,
// library_id, source) share one buffer, so that the event does not alias
// the input; the built-in types are interned and the wire's timestamp is
// read in place. DecodeShared reads the strings (without escapes) and data
// in place: no allocation. CheckSubject compares without building strings.
func TestAllocBudgets(t *testing.T) {
	ev := validEvent()
	ev.Data = json.RawMessage(`{"document_id":"a1b2c3d4-e5f6-7890-abcd-ef1234567890","title":"Attention Is All You Need (annotated copy)","num_chunks":42}`)
	wire, err := event.Encode(&ev, 0)
	if err != nil {
		t.Fatal(err)
	}
	subject := "events.library." + libID + ".document.added"
	ts := event.AppendTime(nil, ev.Timestamp)
	allocs.Check(t,
		allocs.Budget{Name: "Encode", Max: 1, Fn: func() {
			if _, err := event.Encode(&ev, 0); err != nil {
				t.Fatal(err)
			}
		}},
		allocs.Budget{Name: "Decode", Max: 1, Fn: func() {
			if _, err := event.Decode(wire, 0); err != nil {
				t.Fatal(err)
			}
		}},
		allocs.Budget{Name: "DecodeShared", Max: 0, Fn: func() {
			if _, err := event.DecodeShared(wire, 0); err != nil {
				t.Fatal(err)
			}
		}},
		allocs.Budget{Name: "CheckSubject", Max: 0, Fn: func() {
			if err := ev.CheckSubject(subject); err != nil {
				t.Fatal(err)
			}
		}},
		allocs.Budget{Name: "ParseTimeBytes", Max: 0, Fn: func() {
			if _, err := event.ParseTimeBytes(ts); err != nil {
				t.Fatal(err)
			}
		}},
	)
}
