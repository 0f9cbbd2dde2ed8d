package bridge

import (
	"encoding/json"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/allocs"
)

// TestFrameAllocBudget holds the frame of an event to two allocations,
// whatever the number of clients it goes to: the frame and its bytes,
// built once into a buffer sized up front (frameSize) and shared; and a
// live message's decoding to none.
func TestFrameAllocBudget(t *testing.T) {
	b := &Bridge{counters: newCounters()}
	ev := event.Event{
		ID: event.NewID(), Type: event.TypeDocumentAdded, LibraryID: "550e8400-e29b-41d4-a716-446655440000",
		Timestamp: event.Now(), Source: "app-1",
		Data: json.RawMessage(`{"document_id":"a1b2c3d4-e5f6-7890-abcd-ef1234567890","title":"Attention Is All You Need (annotated copy)","num_chunks":42}`),
	}
	b.newFrame(&ev, 1) // registers the type's statistics once
	allocs.Check(t, allocs.Budget{Name: "newFrame", Max: 2, Fn: func() { b.newFrame(&ev, 123456) }})

	// A live message to its frame: the event is read in place from the
	// payload (parseEvent), so the frame's two allocations are all.
	wire, err := event.Encode(&ev, 0)
	if err != nil {
		t.Fatal(err)
	}
	m := &nats.Msg{Subject: "live.events.library." + ev.LibraryID + ".document.added", Data: wire,
		Header: nats.Header{hdrSequence: {"123456"}, hdrLastSequence: {"123455"}}}
	b.cfg.MaxEventSize = 1 << 20
	if b.frameOf(m, 123456) == nil {
		t.Fatal("frameOf refused a valid event")
	}
	allocs.Check(t, allocs.Budget{Name: "frameOf", Max: 2, Fn: func() { b.frameOf(m, 123456) }})
}

// TestAckPositionAllocBudget: a replay reads each message's sequence from
// its ack subject without allocating (jetstream's Metadata builds a struct
// with three strings and a time).
func TestAckPositionAllocBudget(t *testing.T) {
	const reply = "$JS.ACK.EVENTS.replay-cons.1.1234567.1234567.1732579200000000000.99"
	allocs.Check(t, allocs.Budget{Name: "ackPosition", Max: 0, Fn: func() { ackPosition(reply) }})
}
