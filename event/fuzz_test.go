package event_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/arrwdb/arrwcdc/event"
)

// FuzzDecode: Decode never panics and only fails with ErrInvalid or
// ErrTooLarge. Whatever it accepts re-encodes, and decoding that gives the
// same event back: Data byte for byte (nil as {}), the timestamp cut to the
// wire's microseconds. Encoding is then a fixed point. More seeds are in
// testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(designWire))
	f.Add([]byte(`{"type":"library.created","library_id":"550e8400-e29b-41d4-a716-446655440000","timestamp":"2025-10-27T06:00:00.000000","data":{"name":"My Library","index_type":"hnsw","embedding_dimension":1024}}`))
	f.Add([]byte(`{"type":"search.performed","library_id":"42","timestamp":"2025-10-27T08:02:00.5+02:00","data":{"query":"machine learning","k":10,"results_count":8,"duration_ms":145}}`))
	f.Add([]byte(`{"id":"x","type":"workflow.completed","library_id":"lib_1","timestamp":"2025-10-27T06:01:00.123456789Z","source":"a\u00e9\"","data":{ "steps" : [1, 2.50, 3e2] }}`))
	f.Add([]byte(`{"type":"document.deleted","library_id":"1","timestamp":"2025-10-27T06:01:00Z","data":null}`))
	f.Add([]byte(`{"type":"document.deleted","library_id":"1","timestamp":"2025-10-27T06:01:00Z"}`))
	f.Add([]byte(`{"type":"document.added","library_id":"1","timestamp":"yesterday","data":{}}`))
	f.Add([]byte(`{"type":"document.added","library_id":"1","timestamp":"2025-10-27T06:01:00Z","data":[]}`))
	f.Add([]byte(`[{"type":"document.added"}]`))
	f.Add([]byte(`{"data":{"x":[[[[[[`))
	f.Fuzz(func(t *testing.T, in []byte) {
		ev, err := event.Decode(in, 0)
		if err != nil {
			if !errors.Is(err, event.ErrInvalid) && !errors.Is(err, event.ErrTooLarge) {
				t.Fatalf("Decode error %v wraps neither ErrInvalid nor ErrTooLarge", err)
			}
			return
		}
		// Re-encoding may grow the input (data {} added, fraction padded,
		// invalid UTF-8 in strings spelled \ufffd), so lift the limit.
		const noLimit = 1 << 30
		out, err := event.Encode(&ev, noLimit)
		if err != nil {
			t.Fatalf("Decode accepted %q as %+v, but Encode fails: %v", in, ev, err)
		}
		if !json.Valid(out) || !utf8.Valid(out) {
			t.Fatalf("Encode wrote invalid JSON or UTF-8: %q", out)
		}
		again, err := event.Decode(out, noLimit)
		if err != nil {
			t.Fatalf("Decode(Encode(%+v)) = %v\nwire %q", ev, err, out)
		}
		if again.ID != ev.ID || again.Type != ev.Type || again.LibraryID != ev.LibraryID || again.Source != ev.Source {
			t.Fatalf("round trip changed fields:\n got %+v\nwant %+v", again, ev)
		}
		if want := ev.Timestamp.Truncate(time.Microsecond); !again.Timestamp.Equal(want) || again.Timestamp.Location() != time.UTC {
			t.Fatalf("round trip timestamp %v, want %v in UTC", again.Timestamp, want)
		}
		wantData := []byte(ev.Data)
		if wantData == nil {
			wantData = []byte("{}")
		}
		if !bytes.Equal(again.Data, wantData) {
			t.Fatalf("round trip data %q, want %q", again.Data, wantData)
		}
		out2, err := event.Encode(&again, noLimit)
		if err != nil || !bytes.Equal(out2, out) {
			t.Fatalf("Encode is not a fixed point:\n%q\n%q, %v", out, out2, err)
		}
	})
}
