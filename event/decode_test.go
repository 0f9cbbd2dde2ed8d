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

// FuzzParseTimeBytes: the fast path reads what ParseTime reads, the same
// way, and defers to it for everything else.
func FuzzParseTimeBytes(f *testing.F) {
	for _, s := range []string{
		"2025-10-27T06:01:00.123456Z", "2025-10-27T06:01:00Z", "2025-10-27T06:01:00.123456789Z",
		"2025-10-27T06:01:00.000000", "2025-02-30T06:01:00.000000Z", "2025-10-27T24:00:00Z",
		"2025-10-27T06:01:00+02:00", "0000-01-01T00:00:00Z", "x",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, gerr := event.ParseTimeBytes(b)
		want, werr := event.ParseTime(string(b))
		if (gerr == nil) != (werr == nil) || !got.Equal(want) || got.Location() != want.Location() {
			t.Fatalf("ParseTimeBytes(%q) = %v, %v; ParseTime: %v, %v", b, got, gerr, want, werr)
		}
	})
}
