package event_test

import (
	"strings"
	"testing"

	"github.com/arrwdb/arrwcdc/event"
)

// TestDecodeDataIsolated: Decode's strings share one allocation with
// Data; writing to Data, or appending to it, changes none of them.
func TestDecodeDataIsolated(t *testing.T) {
	in := strings.Replace(designWire, `"type":"document.added"`, `"type":"workflow.completed"`, 1)
	ev, err := event.Decode([]byte(in), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := [...]string{strings.Clone(ev.ID), strings.Clone(ev.Type), strings.Clone(ev.LibraryID), strings.Clone(ev.Source)}
	if cap(ev.Data) != len(ev.Data) {
		t.Fatalf("Data has room to grow into: len %d, cap %d", len(ev.Data), cap(ev.Data))
	}
	for i := range ev.Data {
		ev.Data[i] = 'x'
	}
	grown := append(ev.Data, strings.Repeat("y", 512)...)
	for i := range grown {
		grown[i] = 'z'
	}
	if got := [...]string{ev.ID, ev.Type, ev.LibraryID, ev.Source}; got != want {
		t.Fatalf("strings after writing to Data: %q, want %q", got, want)
	}
}
