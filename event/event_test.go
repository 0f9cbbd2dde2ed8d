package event_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/subjects"
)

const (
	libID = "550e8400-e29b-41d4-a716-446655440000"
	evID  = "0193f1d2-8c4e-7b3a-9d2f-2c6e5a7b8c9d"
	docID = "a1b2c3d4-e5f6-7890-abcd-ef1234567890"
)

// fixedTime is the timestamp of the DESIGN §3 example.
var fixedTime = time.Date(2025, 10, 27, 6, 1, 0, 0, time.UTC)

// designData is the data of the DESIGN §3 example.
const designData = `{"document_id":"a1b2c3d4-e5f6-7890-abcd-ef1234567890","title":"My Document","num_chunks":3}`

// designWire is the DESIGN §3 example as Encode writes it.
const designWire = `{"id":"0193f1d2-8c4e-7b3a-9d2f-2c6e5a7b8c9d","type":"document.added",` +
	`"library_id":"550e8400-e29b-41d4-a716-446655440000","timestamp":"2025-10-27T06:01:00.000000Z",` +
	`"source":"app-1","data":` + designData + `}`

// validEvent returns the DESIGN §3 example event.
func validEvent() event.Event {
	return event.Event{
		ID:        evID,
		Type:      event.TypeDocumentAdded,
		LibraryID: libID,
		Timestamp: fixedTime,
		Source:    "app-1",
		Data:      json.RawMessage(designData),
	}
}

// wireWith returns a JSON object with the DESIGN example's members, where
// members in set replace (or add) values and members in drop are left out.
// Values are raw JSON. Member order follows the wire format.
func wireWith(set map[string]string, drop ...string) []byte {
	members := []struct{ k, v string }{
		{"id", `"` + evID + `"`},
		{"type", `"document.added"`},
		{"library_id", `"` + libID + `"`},
		{"timestamp", `"2025-10-27T06:01:00.000000Z"`},
		{"source", `"app-1"`},
		{"data", designData},
	}
	var b strings.Builder
	b.WriteByte('{')
	n := 0
	emit := func(k, v string) {
		if n > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%s", k, v)
		n++
	}
	seen := map[string]bool{}
	for _, m := range members {
		seen[m.k] = true
		if contains(drop, m.k) {
			continue
		}
		if v, ok := set[m.k]; ok {
			emit(m.k, v)
			continue
		}
		emit(m.k, m.v)
	}
	for k, v := range set {
		if !seen[k] {
			emit(k, v)
		}
	}
	b.WriteByte('}')
	return []byte(b.String())
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestValidateAccepts(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(ev *event.Event)
	}{
		{"design example", func(*event.Event) {}},
		{"empty id", func(ev *event.Event) { ev.ID = "" }},
		{"empty source", func(ev *event.Event) { ev.Source = "" }},
		{"nil data", func(ev *event.Event) { ev.Data = nil }},
		{"empty object", func(ev *event.Event) { ev.Data = json.RawMessage(`{}`) }},
		{"object after whitespace", func(ev *event.Event) { ev.Data = json.RawMessage(" \t\r\n{\"a\":[1,2]}") }},
		{"custom type", func(ev *event.Event) { ev.Type = "workflow.completed" }},
		{"type with digits, _ and -", func(ev *event.Event) { ev.Type = "x-y.z_1" }},
		{"128-char library id", func(ev *event.Event) { ev.LibraryID = strings.Repeat("a", 128) }},
		{"one-char library id", func(ev *event.Event) { ev.LibraryID = "L" }},
		{"256-byte source", func(ev *event.Event) { ev.Source = strings.Repeat("s", 256) }},
		{"unicode source", func(ev *event.Event) { ev.Source = "büro-1 ✓" }},
		{"non-UTC timestamp", func(ev *event.Event) { ev.Timestamp = fixedTime.In(time.FixedZone("CET", 3600)) }},
		{"year 1", func(ev *event.Event) { ev.Timestamp = time.Date(1, 1, 1, 0, 0, 0, 1000, time.UTC) }},
		{"year 9999", func(ev *event.Event) { ev.Timestamp = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := validEvent()
			c.mutate(&ev)
			if err := ev.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

func TestValidateRejects(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(ev *event.Event)
		also   error // a second error the result must wrap, if any
	}{
		{"uppercase type", func(ev *event.Event) { ev.Type = "Document.added" }, subjects.ErrInvalidType},
		{"three-token type", func(ev *event.Event) { ev.Type = "document.added.now" }, subjects.ErrInvalidType},
		{"one-token type", func(ev *event.Event) { ev.Type = "document" }, subjects.ErrInvalidType},
		{"empty type", func(ev *event.Event) { ev.Type = "" }, subjects.ErrInvalidType},
		{"wildcard type", func(ev *event.Event) { ev.Type = "document.*" }, subjects.ErrInvalidType},
		{"library id with .", func(ev *event.Event) { ev.LibraryID = "a.b" }, subjects.ErrInvalidLibraryID},
		{"library id *", func(ev *event.Event) { ev.LibraryID = "*" }, subjects.ErrInvalidLibraryID},
		{"library id >", func(ev *event.Event) { ev.LibraryID = ">" }, subjects.ErrInvalidLibraryID},
		{"library id with space", func(ev *event.Event) { ev.LibraryID = "my lib" }, subjects.ErrInvalidLibraryID},
		{"library id of 129 chars", func(ev *event.Event) { ev.LibraryID = strings.Repeat("a", 129) }, subjects.ErrInvalidLibraryID},
		{"empty library id", func(ev *event.Event) { ev.LibraryID = "" }, subjects.ErrInvalidLibraryID},
		{"zero timestamp", func(ev *event.Event) { ev.Timestamp = time.Time{} }, nil},
		{"year 10000", func(ev *event.Event) { ev.Timestamp = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, nil},
		// In its own zone the year is 9999, but the wire form is UTC.
		{"year 10000 in UTC", func(ev *event.Event) {
			ev.Timestamp = time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("EST", -5*3600))
		}, nil},
		{"year 0 in UTC", func(ev *event.Event) {
			ev.Timestamp = time.Date(1, 1, 1, 0, 30, 0, 0, time.FixedZone("CET", 3600))
		}, nil},
		{"data array", func(ev *event.Event) { ev.Data = json.RawMessage(`[1,2]`) }, nil},
		{"data string", func(ev *event.Event) { ev.Data = json.RawMessage(`"x"`) }, nil},
		{"data number", func(ev *event.Event) { ev.Data = json.RawMessage(`42`) }, nil},
		{"data null literal", func(ev *event.Event) { ev.Data = json.RawMessage(`null`) }, nil},
		{"data whitespace only", func(ev *event.Event) { ev.Data = json.RawMessage(`  `) }, nil},
		{"data truncated object", func(ev *event.Event) { ev.Data = json.RawMessage(`{"a":`) }, nil},
		{"data invalid JSON bytes", func(ev *event.Event) { ev.Data = json.RawMessage("{\x00}") }, nil},
		{"data two objects", func(ev *event.Event) { ev.Data = json.RawMessage(`{}{}`) }, nil},
		{"data invalid UTF-8", func(ev *event.Event) { ev.Data = json.RawMessage("{\"a\":\"\xff\"}") }, nil},
		{"id with newline", func(ev *event.Event) { ev.ID = "abc\ndef" }, nil},
		{"id with NUL", func(ev *event.Event) { ev.ID = "abc\x00" }, nil},
		{"id with DEL", func(ev *event.Event) { ev.ID = "abc\x7f" }, nil},
		{"id of 257 bytes", func(ev *event.Event) { ev.ID = strings.Repeat("i", 257) }, nil},
		{"id invalid UTF-8", func(ev *event.Event) { ev.ID = "id-\xff" }, nil},
		{"source with tab", func(ev *event.Event) { ev.Source = "app\t1" }, nil},
		{"source with carriage return", func(ev *event.Event) { ev.Source = "app-1\r" }, nil},
		{"source of 257 bytes", func(ev *event.Event) { ev.Source = strings.Repeat("é", 128) + "x" }, nil},
		{"source invalid UTF-8", func(ev *event.Event) { ev.Source = "\xc3\x28" }, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := validEvent()
			c.mutate(&ev)
			err := ev.Validate()
			if !errors.Is(err, event.ErrInvalid) {
				t.Fatalf("Validate = %v, want ErrInvalid", err)
			}
			if c.also != nil && !errors.Is(err, c.also) {
				t.Fatalf("Validate = %v, want it to wrap %v too", err, c.also)
			}
			// Encode refuses what Validate refuses.
			if b, err := event.Encode(&ev, 0); !errors.Is(err, event.ErrInvalid) {
				t.Fatalf("Encode = %q, %v; want ErrInvalid", b, err)
			}
		})
	}
}

// TestNewRoundTrip: every built-in constructor makes a valid event that
// survives Encode and Decode.
func TestNewRoundTrip(t *testing.T) {
	cases := []struct {
		name    string
		typ     string
		make    func() (event.Event, error)
		payload any        // the typed data given to the constructor
		decoded func() any // a fresh pointer to decode the data into
	}{
		{"library.created", event.TypeLibraryCreated,
			func() (event.Event, error) {
				return event.NewLibraryCreated(libID, event.LibraryCreated{Name: "My Library", IndexType: "hnsw", EmbeddingDimension: 1024})
			},
			event.LibraryCreated{Name: "My Library", IndexType: "hnsw", EmbeddingDimension: 1024},
			func() any { return new(event.LibraryCreated) }},
		{"library.deleted", event.TypeLibraryDeleted,
			func() (event.Event, error) {
				return event.NewLibraryDeleted(libID, event.LibraryDeleted{Name: "My \"Library\" <x>"})
			},
			event.LibraryDeleted{Name: "My \"Library\" <x>"},
			func() any { return new(event.LibraryDeleted) }},
		{"document.added", event.TypeDocumentAdded,
			func() (event.Event, error) {
				return event.NewDocumentAdded(libID, event.DocumentAdded{DocumentID: docID, Title: "My Document", NumChunks: 3})
			},
			event.DocumentAdded{DocumentID: docID, Title: "My Document", NumChunks: 3},
			func() any { return new(event.DocumentAdded) }},
		{"document.deleted", event.TypeDocumentDeleted,
			func() (event.Event, error) {
				return event.NewDocumentDeleted(libID, event.DocumentDeleted{DocumentID: docID})
			},
			event.DocumentDeleted{DocumentID: docID},
			func() any { return new(event.DocumentDeleted) }},
		{"search.performed", event.TypeSearchPerformed,
			func() (event.Event, error) {
				return event.NewSearchPerformed(libID, event.SearchPerformed{Query: "machine learning", K: 10, ResultsCount: 8, DurationMS: 145.25})
			},
			event.SearchPerformed{Query: "machine learning", K: 10, ResultsCount: 8, DurationMS: 145.25},
			func() any { return new(event.SearchPerformed) }},
	}
	if len(cases) != len(event.BuiltinTypes) {
		t.Fatalf("%d cases for %d built-in types", len(cases), len(event.BuiltinTypes))
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if event.BuiltinTypes[i] != c.typ {
				t.Fatalf("BuiltinTypes[%d] = %q, want %q", i, event.BuiltinTypes[i], c.typ)
			}
			before := time.Now()
			ev, err := c.make()
			if err != nil {
				t.Fatal(err)
			}
			if ev.Type != c.typ || ev.LibraryID != libID {
				t.Fatalf("constructor made %+v", ev)
			}
			if id, err := uuid.Parse(ev.ID); err != nil || id.Version() != 7 {
				t.Fatalf("ID %q is not a UUIDv7 (%v)", ev.ID, err)
			}
			if ev.Timestamp.Before(before.Add(-time.Second)) || ev.Timestamp.After(time.Now().Add(time.Second)) {
				t.Fatalf("Timestamp %v is not now", ev.Timestamp)
			}
			ev.Source = "app-1"

			wire, err := event.Encode(&ev, 0)
			if err != nil {
				t.Fatal(err)
			}
			got, err := event.Decode(wire, 0)
			if err != nil {
				t.Fatalf("Decode(%s): %v", wire, err)
			}
			// The wire keeps microseconds, so compare against the truncated time.
			want := ev
			want.Timestamp = ev.Timestamp.Truncate(time.Microsecond)
			assertEqual(t, got, want)

			data := c.decoded()
			if err := got.DataAs(data); err != nil {
				t.Fatal(err)
			}
			if got := reflect.ValueOf(data).Elem().Interface(); !reflect.DeepEqual(got, c.payload) {
				t.Fatalf("DataAs = %+v, want %+v", got, c.payload)
			}
		})
	}
}

// TestCustomTypeRoundTrip: the data of a type the package does not know
// comes back byte for byte, whitespace and number spelling included.
func TestCustomTypeRoundTrip(t *testing.T) {
	data := `{ "workflow_id" : "wf-1", "steps":[1, 2.50, 3e2, -0], "nested":{"z":1,"a":null,"a":true},` +
		` "note":"tab\there \u00e9 \ud83d\ude00 <&>" }`
	ev := event.Event{
		ID:        evID,
		Type:      "workflow.completed",
		LibraryID: "lib_1",
		Timestamp: time.Date(2025, 10, 27, 6, 1, 0, 123456000, time.UTC),
		Data:      json.RawMessage(data),
	}
	wire, err := event.Encode(&ev, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := event.Decode(wire, 0)
	if err != nil {
		t.Fatalf("Decode(%s): %v", wire, err)
	}
	if string(got.Data) != data {
		t.Fatalf("data changed:\n got %s\nwant %s", got.Data, data)
	}
	assertEqual(t, got, ev)

	var v struct {
		WorkflowID string    `json:"workflow_id"`
		Steps      []float64 `json:"steps"`
	}
	if err := got.DataAs(&v); err != nil {
		t.Fatal(err)
	}
	if v.WorkflowID != "wf-1" || len(v.Steps) != 4 || v.Steps[2] != 300 {
		t.Fatalf("DataAs = %+v", v)
	}
}

func TestEncodeWire(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(ev *event.Event)
		want   string
	}{
		{"design example", func(*event.Event) {}, designWire},
		{"empty id and source omitted", func(ev *event.Event) { ev.ID, ev.Source = "", "" },
			`{"type":"document.added","library_id":"550e8400-e29b-41d4-a716-446655440000",` +
				`"timestamp":"2025-10-27T06:01:00.000000Z","data":` + designData + `}`},
		{"nil data is {}", func(ev *event.Event) { ev.Data = nil },
			`{"id":"0193f1d2-8c4e-7b3a-9d2f-2c6e5a7b8c9d","type":"document.added",` +
				`"library_id":"550e8400-e29b-41d4-a716-446655440000","timestamp":"2025-10-27T06:01:00.000000Z",` +
				`"source":"app-1","data":{}}`},
		{"minimal", func(ev *event.Event) { *ev = event.Event{Type: "a.b", LibraryID: "1", Timestamp: fixedTime} },
			`{"type":"a.b","library_id":"1","timestamp":"2025-10-27T06:01:00.000000Z","data":{}}`},
		{"timestamp converted to UTC", func(ev *event.Event) {
			ev.Timestamp = time.Date(2025, 10, 27, 8, 1, 0, 0, time.FixedZone("CEST", 2*3600))
		}, designWire},
		{"timestamp truncated to microseconds", func(ev *event.Event) {
			ev.Timestamp = fixedTime.Add(123456789 * time.Nanosecond)
		}, strings.Replace(designWire, "06:01:00.000000Z", "06:01:00.123456Z", 1)},
		{"source escaped", func(ev *event.Event) { ev.Source = `a"b\c` + "\u00e9" },
			strings.Replace(designWire, `"app-1"`, `"a\"b\\c`+"\u00e9"+`"`, 1)},
		{"data kept verbatim", func(ev *event.Event) { ev.Data = json.RawMessage(`{ "b" : 2 , "a":1}`) },
			strings.Replace(designWire, designData, `{ "b" : 2 , "a":1}`, 1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := validEvent()
			c.mutate(&ev)
			got, err := event.Encode(&ev, 0)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Fatalf("Encode:\n got %s\nwant %s", got, c.want)
			}
			if !json.Valid(got) {
				t.Fatalf("Encode wrote invalid JSON: %s", got)
			}
			// AppendJSON writes the same bytes after whatever dst holds.
			if app := event.AppendJSON([]byte("xx"), &ev); string(app) != "xx"+c.want {
				t.Fatalf("AppendJSON = %s", app)
			}
		})
	}
}

func TestAppendFields(t *testing.T) {
	ev := validEvent()
	got := string(event.AppendFields(nil, &ev))
	want := strings.TrimSuffix(strings.TrimPrefix(designWire, `{"id":"`+evID+`",`), "}")
	if got != want {
		t.Fatalf("AppendFields:\n got %s\nwant %s", got, want)
	}
}

func TestEncodeSizeLimit(t *testing.T) {
	ev := validEvent()
	n := len(designWire)
	if _, err := event.Encode(&ev, n); err != nil {
		t.Fatalf("Encode at exactly the limit: %v", err)
	}
	_, err := event.Encode(&ev, n-1)
	if !errors.Is(err, event.ErrTooLarge) || errors.Is(err, event.ErrInvalid) {
		t.Fatalf("Encode one byte over: %v, want ErrTooLarge only", err)
	}

	// Data alone larger than the limit.
	ev.Data = json.RawMessage(`{"blob":"` + strings.Repeat("x", 2000) + `"}`)
	if _, err := event.Encode(&ev, 1000); !errors.Is(err, event.ErrTooLarge) {
		t.Fatalf("Encode of 2 kB data with limit 1000: %v, want ErrTooLarge", err)
	}
	// maxSize <= 0 means DefaultMaxSize.
	ev.Data = json.RawMessage(`{"blob":"` + strings.Repeat("x", event.DefaultMaxSize) + `"}`)
	for _, max := range []int{0, -1} {
		if _, err := event.Encode(&ev, max); !errors.Is(err, event.ErrTooLarge) {
			t.Fatalf("Encode of 1 MiB data with maxSize %d: %v, want ErrTooLarge", max, err)
		}
	}
	// Refused before its buffer is made: ten refusals of the 1 MiB event
	// allocate far less than one copy of it.
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		_, _ = event.Encode(&ev, 0)
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > event.DefaultMaxSize/2 {
		t.Errorf("10 refused encodings allocated %d bytes: the buffer is made before the size is known to be too large", n)
	}

	// Escapes count: a source at the limit unescaped is over it escaped.
	ev = validEvent()
	ev.Source = "app-1"
	plain, err := event.Encode(&ev, 0)
	if err != nil {
		t.Fatal(err)
	}
	ev.Source = `app"1` // written app\"1: one byte more
	if _, err := event.Encode(&ev, len(plain)); !errors.Is(err, event.ErrTooLarge) {
		t.Fatalf("Encode with an escape one byte over the limit: %v, want ErrTooLarge", err)
	}
}

func TestDecodeAccepts(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want event.Event
	}{
		{"design example", []byte(designWire), validEvent()},
		{"pretty printed", []byte("{\n  \"id\": \"" + evID + "\",\n  \"type\": \"document.added\",\n" +
			"  \"library_id\": \"" + libID + "\",\n  \"timestamp\": \"2025-10-27T06:01:00.000000Z\",\n" +
			"  \"source\": \"app-1\",\n  \"data\": " + designData + "\n}\n"), validEvent()},
		{"members in another order", []byte(`{"data":` + designData + `,"source":"app-1","timestamp":"2025-10-27T06:01:00.000000Z",` +
			`"library_id":"` + libID + `","type":"document.added","id":"` + evID + `"}`), validEvent()},
		{"zone-less timestamp is UTC", wireWith(map[string]string{"timestamp": `"2025-10-27T06:01:00.000000"`}), validEvent()},
		{"zone-less without fraction", wireWith(map[string]string{"timestamp": `"2025-10-27T06:01:00"`}), validEvent()},
		{"+02:00 offset", wireWith(map[string]string{"timestamp": `"2025-10-27T08:01:00.000000+02:00"`}), validEvent()},
		{"-05:30 offset", wireWith(map[string]string{"timestamp": `"2025-10-27T00:31:00-05:30"`}), validEvent()},
		{"Z without fraction", wireWith(map[string]string{"timestamp": `"2025-10-27T06:01:00Z"`}), validEvent()},
		{"zone-less microseconds", wireWith(map[string]string{"timestamp": `"2025-10-27T06:01:00.123456"`}),
			withTime(validEvent(), fixedTime.Add(123456*time.Microsecond))},
		{"nanoseconds kept", wireWith(map[string]string{"timestamp": `"2025-10-27T06:01:00.123456789Z"`}),
			withTime(validEvent(), fixedTime.Add(123456789))},
		{"id missing (hand-published)", wireWith(nil, "id"), func() event.Event { ev := validEvent(); ev.ID = ""; return ev }()},
		{"id and source null", wireWith(map[string]string{"id": "null", "source": "null"}),
			func() event.Event { ev := validEvent(); ev.ID, ev.Source = "", ""; return ev }()},
		{"unknown members ignored", wireWith(map[string]string{"extra": `{"x":[1,2]}`, "version": "2"}), validEvent()},
		{"escaped strings", wireWith(map[string]string{"source": `"app\u002d1"`, "type": `"document\u002eadded"`}), validEvent()},
		{"empty data object", wireWith(map[string]string{"data": `{}`}),
			func() event.Event { ev := validEvent(); ev.Data = json.RawMessage(`{}`); return ev }()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := event.Decode(c.in, 0)
			if err != nil {
				t.Fatalf("Decode(%s): %v", c.in, err)
			}
			assertEqual(t, got, c.want)
			if got.Timestamp.Location() != time.UTC {
				t.Fatalf("Timestamp location %v, want UTC", got.Timestamp.Location())
			}
		})
	}
}

func withTime(ev event.Event, ts time.Time) event.Event {
	ev.Timestamp = ts
	return ev
}

// TestDecodeMissingData: missing or null data reads as nil and encodes as {}.
func TestDecodeMissingData(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
	}{
		{"missing", wireWith(nil, "data")},
		{"null", wireWith(map[string]string{"data": "null"})},
		{"null with spaces", []byte(`{"type":"document.added","library_id":"1","timestamp":"2025-10-27T06:01:00Z","data": null }`)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := event.Decode(c.in, 0)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Data != nil {
				t.Fatalf("Data = %q, want nil", ev.Data)
			}
			wire, err := event.Encode(&ev, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasSuffix(wire, []byte(`,"data":{}}`)) {
				t.Fatalf("Encode = %s, want data {}", wire)
			}
			var d event.DocumentAdded
			if err := ev.DataAs(&d); err != nil || d != (event.DocumentAdded{}) {
				t.Fatalf("DataAs = %+v, %v", d, err)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	deep := []byte(`{"type":"document.added","library_id":"1","timestamp":"2025-10-27T06:01:00Z","data":{"x":` +
		strings.Repeat("[", 100_000) + `}}`)
	deepClosed := []byte(`{"type":"document.added","library_id":"1","timestamp":"2025-10-27T06:01:00Z","data":{"x":` +
		strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + `}}`)
	cases := []struct {
		name    string
		in      []byte
		maxSize int
		want    error
		also    error // a second error the result must wrap, if any
	}{
		{"empty input", nil, 0, event.ErrInvalid, nil},
		{"whitespace", []byte(" \n"), 0, event.ErrInvalid, nil},
		{"not JSON", []byte("hello"), 0, event.ErrInvalid, nil},
		{"JSON array", []byte(`[` + designWire + `]`), 0, event.ErrInvalid, nil},
		{"JSON string", []byte(`"document.added"`), 0, event.ErrInvalid, nil},
		{"JSON null", []byte(`null`), 0, event.ErrInvalid, nil},
		{"truncated object", []byte(designWire[:len(designWire)-1]), 0, event.ErrInvalid, nil},
		{"trailing garbage", []byte(designWire + "x"), 0, event.ErrInvalid, nil},
		{"two objects", []byte(designWire + designWire), 0, event.ErrInvalid, nil},
		{"missing type", wireWith(nil, "type"), 0, event.ErrInvalid, nil},
		{"null type", wireWith(map[string]string{"type": "null"}), 0, event.ErrInvalid, nil},
		{"missing library_id", wireWith(nil, "library_id"), 0, event.ErrInvalid, nil},
		{"missing timestamp", wireWith(nil, "timestamp"), 0, event.ErrInvalid, nil},
		{"type not a string", wireWith(map[string]string{"type": "5"}), 0, event.ErrInvalid, nil},
		{"id not a string", wireWith(map[string]string{"id": "{}"}), 0, event.ErrInvalid, nil},
		{"uppercase type", wireWith(map[string]string{"type": `"Document.Added"`}), 0, event.ErrInvalid, subjects.ErrInvalidType},
		{"library id with dot", wireWith(map[string]string{"library_id": `"a.b"`}), 0, event.ErrInvalid, subjects.ErrInvalidLibraryID},
		{"library id >", wireWith(map[string]string{"library_id": `">"`}), 0, event.ErrInvalid, subjects.ErrInvalidLibraryID},
		{"timestamp yesterday", wireWith(map[string]string{"timestamp": `"yesterday"`}), 0, event.ErrInvalid, nil},
		{"timestamp out of range", wireWith(map[string]string{"timestamp": `"2025-13-45T99:00:00Z"`}), 0, event.ErrInvalid, nil},
		{"timestamp empty", wireWith(map[string]string{"timestamp": `""`}), 0, event.ErrInvalid, nil},
		{"timestamp date only", wireWith(map[string]string{"timestamp": `"2025-10-27"`}), 0, event.ErrInvalid, nil},
		{"timestamp offset without colon", wireWith(map[string]string{"timestamp": `"2025-10-27T06:01:00+0200"`}), 0, event.ErrInvalid, nil},
		{"timestamp number", wireWith(map[string]string{"timestamp": `1761544860`}), 0, event.ErrInvalid, nil},
		{"timestamp zero time", wireWith(map[string]string{"timestamp": `"0001-01-01T00:00:00Z"`}), 0, event.ErrInvalid, nil},
		{"timestamp year 0 in UTC", wireWith(map[string]string{"timestamp": `"0001-01-01T00:30:00+01:00"`}), 0, event.ErrInvalid, nil},
		{"timestamp year 10000 in UTC", wireWith(map[string]string{"timestamp": `"9999-12-31T23:30:00-01:00"`}), 0, event.ErrInvalid, nil},
		{"data array", wireWith(map[string]string{"data": `[1,2,3]`}), 0, event.ErrInvalid, nil},
		{"data string", wireWith(map[string]string{"data": `"x"`}), 0, event.ErrInvalid, nil},
		{"data number", wireWith(map[string]string{"data": `3`}), 0, event.ErrInvalid, nil},
		{"data false", wireWith(map[string]string{"data": `false`}), 0, event.ErrInvalid, nil},
		{"data invalid UTF-8", wireWith(map[string]string{"data": "{\"t\":\"\xff\"}"}), 0, event.ErrInvalid, nil},
		{"id with control char", wireWith(map[string]string{"id": `"a\u0001b"`}), 0, event.ErrInvalid, nil},
		{"source with newline", wireWith(map[string]string{"source": `"app\n1"`}), 0, event.ErrInvalid, nil},
		{"source of 257 bytes", wireWith(map[string]string{"source": `"` + strings.Repeat("s", 257) + `"`}), 0, event.ErrInvalid, nil},
		{"raw control char in string", wireWith(map[string]string{"source": "\"app\x011\""}), 0, event.ErrInvalid, nil},
		{"over maxSize", []byte(designWire), 64, event.ErrTooLarge, nil},
		{"one byte over maxSize", []byte(designWire), len(designWire) - 1, event.ErrTooLarge, nil},
		{"over DefaultMaxSize", wireWith(map[string]string{"data": `{"x":"` + strings.Repeat("x", event.DefaultMaxSize) + `"}`}), 0, event.ErrTooLarge, nil},
		{"deeply nested data, unclosed", deep, 0, event.ErrInvalid, nil},
		{"deeply nested data, closed", deepClosed, 0, event.ErrInvalid, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := event.Decode(c.in, c.maxSize)
			if !errors.Is(err, c.want) {
				t.Fatalf("Decode = %+v, %v; want %v", ev, err, c.want)
			}
			if c.also != nil && !errors.Is(err, c.also) {
				t.Fatalf("Decode = %v, want it to wrap %v too", err, c.also)
			}
			if c.want == event.ErrTooLarge && errors.Is(err, event.ErrInvalid) {
				t.Fatalf("Decode = %v, wraps ErrInvalid as well", err)
			}
			if !isZero(ev) {
				t.Fatalf("Decode returned %+v along with an error", ev)
			}
		})
	}
}

func isZero(ev event.Event) bool {
	return ev.ID == "" && ev.Type == "" && ev.LibraryID == "" && ev.Timestamp.IsZero() && ev.Source == "" && ev.Data == nil
}

// TestDecodeMaxSizeBoundary: an input of exactly maxSize bytes is accepted.
func TestDecodeMaxSizeBoundary(t *testing.T) {
	if _, err := event.Decode([]byte(designWire), len(designWire)); err != nil {
		t.Fatalf("Decode at exactly the limit: %v", err)
	}
}

// TestDecodeNestedData: nesting well inside encoding/json's limit is kept.
func TestDecodeNestedData(t *testing.T) {
	data := `{"x":` + strings.Repeat("[", 1000) + strings.Repeat("]", 1000) + `}`
	ev, err := event.Decode(wireWith(map[string]string{"data": data}), 0)
	if err != nil {
		t.Fatal(err)
	}
	if string(ev.Data) != data {
		t.Fatal("nested data changed")
	}
}

// TestDecodeDoesNotAlias: the decoded Data does not share memory with the
// input, so callers may reuse their buffers.
func TestDecodeDoesNotAlias(t *testing.T) {
	in := []byte(designWire)
	ev, err := event.Decode(in, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i] = ' '
	}
	if string(ev.Data) != designData {
		t.Fatalf("Data changed with the input buffer: %q", ev.Data)
	}
}

func TestParseTime(t *testing.T) {
	cases := []struct {
		in   string
		want time.Time
	}{
		{"2025-10-27T06:01:00.000000Z", fixedTime},
		{"2025-10-27T06:01:00.000000", fixedTime},
		{"2025-10-27T06:01:00", fixedTime},
		{"2025-10-27T08:01:00.000000+02:00", fixedTime},
		{"2025-10-27T06:01:00+00:00", fixedTime},
		{"2025-10-27T06:01:00.5-00:00", fixedTime.Add(500 * time.Millisecond)},
		{"2025-10-27T06:01:00.000001", fixedTime.Add(time.Microsecond)},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := event.ParseTime(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(c.want) || got.Location() != time.UTC {
				t.Fatalf("ParseTime = %v, want %v in UTC", got, c.want)
			}
		})
	}
	for _, in := range []string{"", "yesterday", "2025-13-45T99:00:00Z", "2025-10-27 06:01:00Z", "2025-10-27T06:01:00+02", strings.Repeat("9", 1000)} {
		if got, err := event.ParseTime(in); !errors.Is(err, event.ErrInvalid) {
			t.Errorf("ParseTime(%.40q) = %v, %v; want ErrInvalid", in, got, err)
		}
	}
}

func TestCheckSubject(t *testing.T) {
	ev := validEvent()
	subj, err := ev.Subject(subjects.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if want := "events.library." + libID + ".document.added"; subj != want {
		t.Fatalf("Subject = %q, want %q", subj, want)
	}
	cases := []struct {
		name    string
		subject string
		want    error // nil: accepted
		also    error
	}{
		{"own subject", subj, nil, nil},
		{"own subject under another prefix", "prod.events.library." + libID + ".document.added", nil, nil},
		{"another library", "events.library.other-lib.document.added", event.ErrInvalid, nil},
		{"library id prefix", "events.library.550e8400.document.added", event.ErrInvalid, nil},
		{"another type", "events.library." + libID + ".document.deleted", event.ErrInvalid, nil},
		{"another entity", "events.library." + libID + ".library.added", event.ErrInvalid, nil},
		{"malformed", "events.library", event.ErrInvalid, subjects.ErrInvalidSubject},
		{"wildcard", "events.library.*.document.added", event.ErrInvalid, subjects.ErrInvalidSubject},
		{"empty", "", event.ErrInvalid, subjects.ErrInvalidSubject},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := ev.CheckSubject(c.subject)
			if c.want == nil {
				if err != nil {
					t.Fatalf("CheckSubject(%q): %v", c.subject, err)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("CheckSubject(%q) = %v, want %v", c.subject, err, c.want)
			}
			if c.also != nil && !errors.Is(err, c.also) {
				t.Fatalf("CheckSubject(%q) = %v, want it to wrap %v too", c.subject, err, c.also)
			}
		})
	}
	if _, err := ev.Subject("bad prefix"); !errors.Is(err, subjects.ErrInvalidPrefix) {
		t.Fatalf("Subject(bad prefix) = %v", err)
	}
}

func TestDataAs(t *testing.T) {
	ev, err := event.Decode([]byte(designWire), 0)
	if err != nil {
		t.Fatal(err)
	}
	var d event.DocumentAdded
	if err := ev.DataAs(&d); err != nil {
		t.Fatal(err)
	}
	if want := (event.DocumentAdded{DocumentID: docID, Title: "My Document", NumChunks: 3}); d != want {
		t.Fatalf("DataAs = %+v, want %+v", d, want)
	}

	// A payload of the wrong shape is ErrInvalid.
	ev.Data = json.RawMessage(`{"num_chunks":"three"}`)
	if err := ev.DataAs(&d); !errors.Is(err, event.ErrInvalid) {
		t.Fatalf("DataAs of a string into an int: %v, want ErrInvalid", err)
	}
	// So is a non-pointer target.
	ev.Data = nil
	if err := ev.DataAs(d); !errors.Is(err, event.ErrInvalid) {
		t.Fatalf("DataAs(non-pointer): %v, want ErrInvalid", err)
	}
}

func TestNewRejects(t *testing.T) {
	cases := []struct {
		name     string
		typ, lib string
		data     any
	}{
		{"bad type", "Document.added", libID, nil},
		{"bad library", event.TypeDocumentAdded, "a.b", nil},
		{"data not an object", event.TypeDocumentAdded, libID, []int{1, 2}},
		{"data not marshalable", event.TypeDocumentAdded, libID, map[string]any{"f": func() {}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := event.New(c.typ, c.lib, c.data); !errors.Is(err, event.ErrInvalid) {
				t.Fatalf("New = %v, want ErrInvalid", err)
			}
		})
	}
	ev, err := event.New("workflow.completed", libID, nil)
	if err != nil || ev.Data != nil {
		t.Fatalf("New with nil data = %+v, %v", ev, err)
	}
}

func TestNewIDUnique(t *testing.T) {
	seen := map[string]bool{}
	prev := ""
	for range 1000 {
		id := event.NewID()
		if seen[id] {
			t.Fatalf("NewID repeated %s", id)
		}
		seen[id] = true
		// UUIDv7 strings sort in creation order.
		if id <= prev {
			t.Fatalf("NewID %s after %s is not increasing", id, prev)
		}
		prev = id
	}
}

func TestAppendString(t *testing.T) {
	cases := []struct {
		name string
		in   string
		wire string // the exact output, when it matters
		want string // what json.Unmarshal reads back
	}{
		{"plain", "app-1", `"app-1"`, "app-1"},
		{"empty", "", `""`, ""},
		{"quotes", `say "hi"`, `"say \"hi\""`, `say "hi"`},
		{"backslash", `C:\dir\`, `"C:\\dir\\"`, `C:\dir\`},
		{"newline", "a\nb", `"a\nb"`, "a\nb"},
		{"carriage return and tab", "a\r\tb", `"a\r\tb"`, "a\r\tb"},
		{"control char 0x01", "a\x01b", `"a\u0001b"`, "a\x01b"},
		{"control char 0x1f", "\x1f", `"\u001f"`, "\x1f"},
		{"NUL", "\x00", `"\u0000"`, "\x00"},
		{"DEL is legal JSON", "\x7f", "\"\x7f\"", "\x7f"},
		{"HTML is not escaped", "</script>&", `"</script>&"`, "</script>&"},
		{"multi-byte UTF-8", "é€😀", `"é€😀"`, "é€😀"},
		{"line separator", "\u2028", "\"\u2028\"", "\u2028"},
		{"invalid byte", "a\xffb", `"a\ufffdb"`, "a\ufffdb"},
		{"lone continuation byte", "\x80", `"\ufffd"`, "\ufffd"},
		{"truncated sequence", "x\xe2\x82", `"x\ufffd\ufffd"`, "x\ufffd\ufffd"},
		{"surrogate half", "\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`, "\ufffd\ufffd\ufffd"},
		{"everything", "\"\\\n\x01\xff é", `"\"\\\n\u0001\ufffd é"`, "\"\\\n\x01\ufffd é"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := event.AppendString([]byte("prefix:"), c.in)
			got, ok := bytes.CutPrefix(out, []byte("prefix:"))
			if !ok {
				t.Fatalf("AppendString dropped dst: %q", out)
			}
			if string(got) != c.wire {
				t.Fatalf("AppendString(%q) = %s, want %s", c.in, got, c.wire)
			}
			var s string
			if err := json.Unmarshal(got, &s); err != nil {
				t.Fatalf("json.Unmarshal(%s): %v", got, err)
			}
			if s != c.want {
				t.Fatalf("read back %q, want %q", s, c.want)
			}
		})
	}
}

// envelope holds events as ordinary fields.
type envelope struct {
	Seq   uint64        `json:"seq"`
	Event event.Event   `json:"event"`
	Ptr   *event.Event  `json:"ptr,omitempty"`
	List  []event.Event `json:"list,omitempty"`
}

// embedded embeds an Event: its MarshalJSON and UnmarshalJSON are promoted,
// so the struct reads and writes as the bare event (Note is not written).
type embedded struct {
	event.Event
	Note string `json:"note"`
}

func TestEncodingJSON(t *testing.T) {
	ev := validEvent()
	ptr := validEvent()
	ptr.ID, ptr.Source, ptr.Data = "", "", nil

	t.Run("fields", func(t *testing.T) {
		in := envelope{Seq: 42, Event: ev, Ptr: &ptr, List: []event.Event{ev, ptr}}
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		ptrWire := `{"type":"document.added","library_id":"` + libID + `","timestamp":"2025-10-27T06:01:00.000000Z","data":{}}`
		want := `{"seq":42,"event":` + designWire + `,"ptr":` + ptrWire + `,"list":[` + designWire + `,` + ptrWire + `]}`
		if string(b) != want {
			t.Fatalf("json.Marshal:\n got %s\nwant %s", b, want)
		}
		var out envelope
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		assertEqual(t, out.Event, ev)
		if out.Ptr == nil || len(out.List) != 2 {
			t.Fatalf("json.Unmarshal = %+v", out)
		}
		// Data written as {} reads back as {}.
		ptr.Data = json.RawMessage(`{}`)
		assertEqual(t, *out.Ptr, ptr)
		assertEqual(t, out.List[0], ev)
		assertEqual(t, out.List[1], ptr)
	})

	t.Run("embedded", func(t *testing.T) {
		b, err := json.Marshal(embedded{Event: ev, Note: "dropped"})
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != designWire {
			t.Fatalf("json.Marshal(embedded) = %s, want the bare event", b)
		}
		var out embedded
		if err := json.Unmarshal([]byte(designWire), &out); err != nil {
			t.Fatal(err)
		}
		assertEqual(t, out.Event, ev)
	})

	t.Run("pointer", func(t *testing.T) {
		b, err := json.Marshal(&ev)
		if err != nil || string(b) != designWire {
			t.Fatalf("json.Marshal(&ev) = %s, %v", b, err)
		}
	})

	t.Run("null leaves the event alone", func(t *testing.T) {
		out := envelope{Event: ev}
		if err := json.Unmarshal([]byte(`{"seq":1,"event":null,"ptr":null}`), &out); err != nil {
			t.Fatal(err)
		}
		assertEqual(t, out.Event, ev)
		if out.Ptr != nil {
			t.Fatalf("Ptr = %+v, want nil", out.Ptr)
		}
	})

	t.Run("invalid event does not marshal", func(t *testing.T) {
		bad := ev
		bad.LibraryID = "a.b"
		_, err := json.Marshal(envelope{Event: bad})
		if !errors.Is(err, event.ErrInvalid) {
			t.Fatalf("json.Marshal = %v, want ErrInvalid", err)
		}
		if _, err := json.Marshal(envelope{}); !errors.Is(err, event.ErrInvalid) {
			t.Fatalf("json.Marshal of a zero Event = %v, want ErrInvalid", err)
		}
	})

	t.Run("invalid event does not unmarshal", func(t *testing.T) {
		var out envelope
		err := json.Unmarshal([]byte(`{"event":{"type":"document.added","library_id":"a.b","timestamp":"2025-10-27T06:01:00Z"}}`), &out)
		if !errors.Is(err, event.ErrInvalid) {
			t.Fatalf("json.Unmarshal = %v, want ErrInvalid", err)
		}
		err = json.Unmarshal([]byte(`{"event":[1]}`), &out)
		if !errors.Is(err, event.ErrInvalid) {
			t.Fatalf("json.Unmarshal of an array = %v, want ErrInvalid", err)
		}
	})
}

// assertEqual compares events field by field; Data byte for byte.
func assertEqual(t *testing.T, got, want event.Event) {
	t.Helper()
	if got.ID != want.ID || got.Type != want.Type || got.LibraryID != want.LibraryID || got.Source != want.Source {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	if !got.Timestamp.Equal(want.Timestamp) {
		t.Fatalf("Timestamp = %v, want %v", got.Timestamp, want.Timestamp)
	}
	if !bytes.Equal(got.Data, want.Data) || (got.Data == nil) != (want.Data == nil) {
		t.Fatalf("Data = %q, want %q", got.Data, want.Data)
	}
}

func ExampleEncode() {
	ev := event.Event{
		ID:        "0193f1d2-8c4e-7b3a-9d2f-2c6e5a7b8c9d",
		Type:      event.TypeDocumentAdded,
		LibraryID: "550e8400-e29b-41d4-a716-446655440000",
		Timestamp: time.Date(2025, 10, 27, 6, 1, 0, 0, time.UTC),
		Source:    "app-1",
		Data:      json.RawMessage(`{"document_id":"a1b2c3d4","title":"My Document","num_chunks":3}`),
	}
	b, err := event.Encode(&ev, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(b))
	// Output:
	// {"id":"0193f1d2-8c4e-7b3a-9d2f-2c6e5a7b8c9d","type":"document.added","library_id":"550e8400-e29b-41d4-a716-446655440000","timestamp":"2025-10-27T06:01:00.000000Z","source":"app-1","data":{"document_id":"a1b2c3d4","title":"My Document","num_chunks":3}}
}

// The original event bus wrote zone-less timestamps and no id or source.
func ExampleDecode() {
	ev, err := event.Decode([]byte(`{
		"type": "document.added",
		"library_id": "550e8400-e29b-41d4-a716-446655440000",
		"timestamp": "2025-10-27T06:01:00.000000",
		"data": {"document_id": "a1b2c3d4", "title": "My Document", "num_chunks": 3}
	}`), 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	var d event.DocumentAdded
	if err := ev.DataAs(&d); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ev.Type, ev.LibraryID, ev.Timestamp.Format(time.RFC3339Nano))
	fmt.Printf("%+v\n", d)
	fmt.Println(ev.CheckSubject("events.library.550e8400-e29b-41d4-a716-446655440000.document.added"))
	// Output:
	// document.added 550e8400-e29b-41d4-a716-446655440000 2025-10-27T06:01:00Z
	// {DocumentID:a1b2c3d4 Title:My Document NumChunks:3}
	// <nil>
}

func ExampleDecode_errors() {
	for _, in := range []string{
		`[1,2]`,
		`{"type":"document.added","library_id":"42","timestamp":"yesterday"}`,
		`{"type":"document.added","library_id":"42","timestamp":"2025-10-27T06:01:00Z","data":[]}`,
	} {
		_, err := event.Decode([]byte(in), 0)
		fmt.Println(errors.Is(err, event.ErrInvalid), err)
	}
	_, err := event.Decode([]byte(`{"type":"document.added"}`), 10)
	fmt.Println(errors.Is(err, event.ErrTooLarge), err)
	// Output:
	// true invalid event: not a JSON object
	// true invalid event: timestamp "yesterday": want RFC 3339 such as 2025-10-27T06:01:00.000000Z
	// true invalid event: data: must be a JSON object
	// true event too large: 25 bytes, limit 10
}

func ExampleParseTime() {
	for _, s := range []string{"2025-10-27T06:01:00.000000", "2025-10-27T08:01:00+02:00"} {
		t, err := event.ParseTime(s)
		fmt.Println(t, err)
	}
	// Output:
	// 2025-10-27 06:01:00 +0000 UTC <nil>
	// 2025-10-27 06:01:00 +0000 UTC <nil>
}

func ExampleEvent_CheckSubject() {
	ev := event.Event{Type: event.TypeDocumentAdded, LibraryID: "42", Timestamp: time.Date(2025, 10, 27, 6, 1, 0, 0, time.UTC)}
	subj, _ := ev.Subject("events")
	fmt.Println(subj)
	fmt.Println(ev.CheckSubject(subj))
	err := ev.CheckSubject("events.library.43.document.added")
	fmt.Println(errors.Is(err, event.ErrInvalid))
	// Output:
	// events.library.42.document.added
	// <nil>
	// true
}
