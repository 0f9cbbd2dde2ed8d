package event_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/subjects"
)

// refWire is the decoding shape of refDecode. Pointers tell missing from
// empty.
type refWire struct {
	ID        *string         `json:"id"`
	Type      *string         `json:"type"`
	LibraryID *string         `json:"library_id"`
	Timestamp *string         `json:"timestamp"`
	Source    *string         `json:"source"`
	Data      json.RawMessage `json:"data"`
}

// refDecode is Decode as it was before the hand-written scanner: reflection
// through encoding/json, then refValidate. FuzzDecodeMatchesStdlib holds
// Decode to it.
func refDecode(data []byte, maxSize int) (event.Event, error) {
	ev, err := refUnmarshal(data, maxSize)
	if err != nil {
		return event.Event{}, err
	}
	if err := refValidate(&ev); err != nil {
		return event.Event{}, err
	}
	return ev, nil
}

// refUnmarshal is refDecode up to validation.
func refUnmarshal(data []byte, maxSize int) (event.Event, error) {
	if maxSize <= 0 {
		maxSize = event.DefaultMaxSize
	}
	if len(data) > maxSize {
		return event.Event{}, fmt.Errorf("%w: %d bytes, limit %d", event.ErrTooLarge, len(data), maxSize)
	}
	if !refIsObject(data) {
		return event.Event{}, fmt.Errorf("%w: not a JSON object", event.ErrInvalid)
	}
	var w refWire
	if err := json.Unmarshal(data, &w); err != nil {
		return event.Event{}, fmt.Errorf("%w: %w", event.ErrInvalid, err)
	}
	switch {
	case w.Type == nil:
		return event.Event{}, fmt.Errorf("%w: type: missing", event.ErrInvalid)
	case w.LibraryID == nil:
		return event.Event{}, fmt.Errorf("%w: library_id: missing", event.ErrInvalid)
	case w.Timestamp == nil:
		return event.Event{}, fmt.Errorf("%w: timestamp: missing", event.ErrInvalid)
	}
	ts, err := event.ParseTime(*w.Timestamp)
	if err != nil {
		return event.Event{}, err
	}
	ev := event.Event{Type: *w.Type, LibraryID: *w.LibraryID, Timestamp: ts}
	if w.ID != nil {
		ev.ID = *w.ID
	}
	if w.Source != nil {
		ev.Source = *w.Source
	}
	if len(w.Data) > 0 && string(w.Data) != "null" {
		ev.Data = w.Data
	}
	return ev, nil
}

// refMaxTextLen is event's limit on id and source, in bytes.
const refMaxTextLen = 256

// refValidate is Event.Validate as it was before its fast paths (ASCII
// text in one loop, built-in types by name, data known to be ASCII),
// frozen here so that the differential tests compare the decoder and
// Validate with something other than themselves.
func refValidate(ev *event.Event) error {
	if err := subjects.ValidateType(ev.Type); err != nil {
		return fmt.Errorf("%w: type: %w", event.ErrInvalid, err)
	}
	if err := subjects.ValidateLibraryID(ev.LibraryID); err != nil {
		return fmt.Errorf("%w: library_id: %w", event.ErrInvalid, err)
	}
	if ev.Timestamp.IsZero() {
		return fmt.Errorf("%w: timestamp: missing", event.ErrInvalid)
	}
	if y := ev.Timestamp.UTC().Year(); y < 1 || y > 9999 {
		return fmt.Errorf("%w: timestamp: year %d out of range", event.ErrInvalid, y)
	}
	for field, s := range map[string]string{"id": ev.ID, "source": ev.Source} {
		if len(s) > refMaxTextLen || !utf8.ValidString(s) {
			return fmt.Errorf("%w: %s: too long or not UTF-8", event.ErrInvalid, field)
		}
		for _, r := range s {
			if r < 0x20 || r == 0x7f {
				return fmt.Errorf("%w: %s: control character", event.ErrInvalid, field)
			}
		}
	}
	if len(ev.Data) > 0 && (!refIsObject(ev.Data) || !json.Valid(ev.Data)) {
		return fmt.Errorf("%w: data: must be a JSON object", event.ErrInvalid)
	}
	if !utf8.Valid(ev.Data) {
		return fmt.Errorf("%w: data: not valid UTF-8", event.ErrInvalid)
	}
	return nil
}

func refIsObject(raw []byte) bool {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		default:
			return false
		}
	}
	return false
}

// decodeCompat lists envelopes that exercise the corners of encoding/json's
// reading: folded and escaped member names, repeats, null resets, strings
// with escapes and invalid UTF-8, values of the wrong kind.
var decodeCompat = []string{
	designWire,
	`{"TYPE":"a.b","Library_ID":"1","TimeStamp":"2025-10-27T06:01:00Z","ID":"x","SOURCE":"s","DATA":{"k":1}}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-10-27T06:01:00Z","ſource":"s","ıd":"i"}`,
	"{\"type\":\"a.b\",\"library_id\":\"1\",\"timestamp\":\"2025-10-27T06:01:00Z\",\"data\u212a\":1,\"\u212aey\":2}",
	`{"type":"a.b","library_id":"1","timestamp":"2025-10-27T06:01:00Z","\u0073ource":"s","\u0049D":"i"}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-10-27T06:01:00Z","type":"c.d","TYPE":"e.f"}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-10-27T06:01:00Z","type":null}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-10-27T06:01:00Z","id":"x","id":null,"source":"y","Source":null}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-10-27T06:01:00Z","data":{"a":1},"data":null}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-10-27T06:01:00Z","data":null,"data":{"a":1}}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-10-27T06:01:00Z","data":{"a":1},"data":[1]}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-10-27T06:01:00Z","type":5,"type":"a.b"}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-10-27T06:01:00Z","source":true}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-10-27T06:01:00Z","id":[]}`,
	"{\"type\":\"a.b\",\"library_id\":\"1\",\"timestamp\":\"2025-10-27T06:01:00Z\",\"source\":\"a\xffb\"}",
	"{\"type\":\"a.b\",\"library_id\":\"1\",\"timestamp\":\"2025-10-27T06:01:00Z\",\"x\xff\":\"\xfe\"}",
	"{\"type\":\"a.b\",\"library_id\":\"1\",\"timestamp\":\"2025-10-27T06:01:00Z\",\"data\":{\"\xff\":1}}",
	// Data that is ASCII is not checked for UTF-8 again; any other is.
	"{\"type\":\"a.b\",\"library_id\":\"1\",\"timestamp\":\"2025-10-27T06:01:00Z\",\"data\":{\"k\":[1,{\"n\":\"\xfe\"}]}}",
	"{\"type\":\"a.b\",\"library_id\":\"1\",\"timestamp\":\"2025-10-27T06:01:00Z\",\"data\":{\"k\":\"\xc3\xa9\",\"\xc3\xa9\":\"\\u00e9\"}}",
	"{\"type\":\"a.b\",\"library_id\":\"1\",\"timestamp\":\"2025-10-27T06:01:00Z\",\"data\":{\"k\":\"\\\"\"},\"data\":{\"k\":\"\xed\xa0\x80\"}}",
	"{\"type\":\"a.b\",\"library_id\":\"1\",\"timestamp\":\"2025-10-27T06:01:00Z\",\"data\":{\"k\":\"\xff\"},\"data\":{\"k\":\"v\"}}",
	`{"type":"a.b","library_id":"1","timestamp":"2025-10-27T06:01:00Z","source":"\ud800x\udc00\ud83d\ude00\"\\\/\b\f\n\r\t"}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-10-27T06:01:00Z","id":"é\u00e9"}`,
	`{"type":"a\u002eb","library_id":"\u0031","timestamp":"2025-10-27T06:01:00\u005a"}`,
	` {"type":"a.b","library_id":"1","timestamp":"2025-10-27T06:01:00Z","x":{"y":[1,"]}",{"z":"\"}"}]},"n":-1.5e3,"t":true,"f":false,"u":null} `,
	`{"type":"a.b","library_id":"1","timestamp":"2025-10-27T06:01:00Z","data":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-10-27T06:01:00Z","data":{"x":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-10-27T06:01:00Z","data":{"x":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-10-27T06:01:00Z","data":{"x":` + strings.Repeat("[", 9998) + strings.Repeat("]", 9998) + `}}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-10-27T06:01:00Z","x":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-10-27T06:01:00Z"}}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-10-27T06:01:00Z",}`,
	`{}`,
	`{"type":"","library_id":"","timestamp":""}`,
	// Timestamps: the wire's own form is read without time.Parse; the
	// others, and out-of-range fields, are left to it.
	`{"type":"a.b","library_id":"1","timestamp":"2024-02-29T23:59:59.999999999Z"}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-02-29T00:00:00Z"}`,
	`{"type":"a.b","library_id":"1","timestamp":"1900-02-29T00:00:00Z"}`,
	`{"type":"a.b","library_id":"1","timestamp":"2000-02-29T00:00:00.5Z"}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-04-31T00:00:00Z"}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-12-31T24:00:00Z"}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-12-31T23:60:00Z"}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-12-31T23:59:60Z"}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-13-01T00:00:00Z"}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-00-01T00:00:00Z"}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-01-00T00:00:00Z"}`,
	`{"type":"a.b","library_id":"1","timestamp":"0000-01-01T00:00:00Z"}`,
	`{"type":"a.b","library_id":"1","timestamp":"0001-01-01T00:00:00.000001Z"}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-10-27T06:01:00.1234567891Z"}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-10-27T06:01:00.Z"}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-10-27T06:01:00,5Z"}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-10-27T06:01:00.5z"}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-10-27t06:01:00Z"}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-10-27T06:01:00+00:00"}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-10-27T06:01:00.5-07:30"}`,
	`{"type":"a.b","library_id":"1","timestamp":"+025-10-27T06:01:00Z"}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-1a-27T06:01:00Z"}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-10-27T06:01:0Z"}`,
	`{"type":"a.b","library_id":"1","timestamp":"2025-10-27T06:01:00.-5Z"}`,
	// Strings that share Decode's one allocation, or not: custom and
	// escaped types, empty and escaped ids, no data.
	`{"type":"workflow.completed","library_id":"lib-1","timestamp":"2025-10-27T06:01:00Z","id":"","source":"s"}`,
	`{"type":"workflow.completed","library_id":"lib-1","timestamp":"2025-10-27T06:01:00Z","id":"i\u0064","source":"src","data":{"k":"v"}}`,
	`{"type":"document\u002eadded","library_id":"lib-1","timestamp":"2025-10-27T06:01:00Z","data":{}}`,
	`{"type":"document.added","library_id":"l\u0069b-1","timestamp":"2025-10-27T06:01:00Z","source":"","data":{}}`,
}

// TestDecodeMatchesStdlib runs the compatibility corners through both
// decoders.
func TestDecodeMatchesStdlib(t *testing.T) {
	for _, in := range decodeCompat {
		compareDecoders(t, []byte(in))
	}
}

// TestDecodeFoldedNames pins encoding/json's case-insensitive member
// matching, which Decode keeps: "TYPE" is type, "ſource" is source, "ıd"
// is unknown.
func TestDecodeFoldedNames(t *testing.T) {
	ev, err := event.Decode([]byte(decodeCompat[1]), 0)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != "a.b" || ev.LibraryID != "1" || ev.ID != "x" || ev.Source != "s" || string(ev.Data) != `{"k":1}` {
		t.Fatalf("Decode = %+v", ev)
	}
	ev, err = event.Decode([]byte(decodeCompat[2]), 0)
	// The dotless ı has no simple case fold to i: "ıd" is not id.
	if err != nil || ev.Source != "s" || ev.ID != "" {
		t.Fatalf("Decode = %+v, %v", ev, err)
	}
}

// FuzzDecodeMatchesStdlib: Decode accepts and rejects what the encoding/json
// decoder it replaced does, with the same error class, and reads the same
// fields.
func FuzzDecodeMatchesStdlib(f *testing.F) {
	for _, in := range decodeCompat {
		f.Add([]byte(in))
	}
	f.Add([]byte(`{"type":"library.created","library_id":"550e8400-e29b-41d4-a716-446655440000","timestamp":"2025-10-27T06:00:00.000000","data":{"name":"My Library"}}`))
	f.Add([]byte(`[{"type":"document.added"}]`))
	f.Add([]byte(`{"data":{"x":[[[[[[`))
	f.Fuzz(func(t *testing.T, in []byte) { compareDecoders(t, in) })
}

func compareDecoders(t *testing.T, in []byte) {
	t.Helper()
	for _, maxSize := range []int{0, len(in) - 1} {
		if maxSize < 0 {
			continue
		}
		want, wantErr := refDecode(in, maxSize)
		// Validate itself agrees with the frozen one on whatever the
		// input unmarshals to, valid or not.
		if raw, err := refUnmarshal(in, maxSize); err == nil {
			if got, ref := raw.Validate(), refValidate(&raw); (got == nil) != (ref == nil) {
				t.Fatalf("Validate(%+v) = %v, frozen validate %v", raw, got, ref)
			}
		}
		// Decode a copy and clobber it, so Data must not alias its input.
		buf := bytes.Clone(in)
		got, gotErr := event.Decode(buf, maxSize)
		for i := range buf {
			buf[i] = 'x'
		}
		// DecodeShared reads the same in place, and fails the same way.
		shared, sharedErr := event.DecodeShared(bytes.Clone(in), maxSize)
		if (sharedErr == nil) != (gotErr == nil) || sharedErr != nil && sharedErr.Error() != gotErr.Error() {
			t.Fatalf("DecodeShared(%q, %d) = %v, Decode %v", in, maxSize, sharedErr, gotErr)
		}
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("Decode(%q, %d):\n got %+v, %v\nwant %+v, %v", in, maxSize, got, gotErr, want, wantErr)
		}
		if gotErr != nil {
			if errors.Is(gotErr, event.ErrInvalid) != errors.Is(wantErr, event.ErrInvalid) ||
				errors.Is(gotErr, event.ErrTooLarge) != errors.Is(wantErr, event.ErrTooLarge) {
				t.Fatalf("Decode(%q, %d) error class: got %v, want %v", in, maxSize, gotErr, wantErr)
			}
			if !isZero(got) {
				t.Fatalf("Decode(%q) returned %+v along with an error", in, got)
			}
			continue
		}
		if !sameEvent(got, want) {
			t.Fatalf("Decode(%q):\n got %+v\nwant %+v", in, got, want)
		}
		if !sameEvent(shared, want) || cap(shared.Data) != len(shared.Data) {
			t.Fatalf("DecodeShared(%q, %d):\n got %+v (data cap %d)\nwant %+v", in, maxSize, shared, cap(shared.Data), want)
		}
	}
}

func sameEvent(got, want event.Event) bool {
	return got.ID == want.ID && got.Type == want.Type && got.LibraryID == want.LibraryID && got.Source == want.Source &&
		got.Timestamp.Equal(want.Timestamp) && got.Timestamp.Location() == want.Timestamp.Location() &&
		bytes.Equal(got.Data, want.Data) && (got.Data == nil) == (want.Data == nil)
}
