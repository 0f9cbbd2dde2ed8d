package event_test

import (
	"encoding/json"
	"testing"

	"github.com/arrwdb/arrwcdc/event"
)

// TestAllocBudgets holds the codec to its allocation budgets (counts, not
// times). Encode: the output buffer, sized up front. Decode: the four
// strings it keeps (id, library_id, source, and the timestamp's text while
// it is parsed; the built-in types are interned) and the copy of data, so
// that the event does not alias the input.
func TestAllocBudgets(t *testing.T) {
	ev := validEvent()
	ev.Data = json.RawMessage(`{"document_id":"a1b2c3d4-e5f6-7890-abcd-ef1234567890","title":"Attention Is All You Need (annotated copy)","num_chunks":42}`)
	wire, err := event.Encode(&ev, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		budget float64
		fn     func()
	}{
		{"Encode", 1, func() {
			if _, err := event.Encode(&ev, 0); err != nil {
				t.Fatal(err)
			}
		}},
		{"Decode", 5, func() {
			if _, err := event.Decode(wire, 0); err != nil {
				t.Fatal(err)
			}
		}},
		{"CheckSubject", 0, func() {
			if err := ev.CheckSubject("events.library." + libID + ".document.added"); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		if got := testing.AllocsPerRun(100, c.fn); got > c.budget {
			t.Errorf("%s: %.1f allocations a call, budget %.0f", c.name, got, c.budget)
		}
	}
}
