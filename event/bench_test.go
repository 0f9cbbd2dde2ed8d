package event_test

import (
	"encoding/json"
	"testing"

	"github.com/arrwdb/arrwcdc/event"
)

// benchEvent is a document.added event of about 300 bytes encoded.
func benchEvent(b *testing.B) (event.Event, []byte) {
	b.Helper()
	ev := validEvent()
	ev.Data = json.RawMessage(`{"document_id":"a1b2c3d4-e5f6-7890-abcd-ef1234567890",` +
		`"title":"Attention Is All You Need (annotated copy)","num_chunks":42}`)
	wire, err := event.Encode(&ev, 0)
	if err != nil {
		b.Fatal(err)
	}
	if len(wire) < 270 || len(wire) > 330 {
		b.Fatalf("benchmark event is %d bytes, want about 300", len(wire))
	}
	return ev, wire
}

func BenchmarkEncode(b *testing.B) {
	ev, wire := benchEvent(b)
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := event.Encode(&ev, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	_, wire := benchEvent(b)
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := event.Decode(wire, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeShared(b *testing.B) {
	_, wire := benchEvent(b)
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := event.DecodeShared(wire, 0); err != nil {
			b.Fatal(err)
		}
	}
}
