package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/event"
)

// benchWire is an event of about 300 bytes, like event's benchmarks.
func benchWire(b *testing.B) (event.Event, []byte) {
	b.Helper()
	ev := event.Event{
		ID: event.NewID(), Type: event.TypeDocumentAdded, LibraryID: "550e8400-e29b-41d4-a716-446655440000",
		Timestamp: event.Now(), Source: "app-1",
		Data: json.RawMessage(`{"document_id":"a1b2c3d4-e5f6-7890-abcd-ef1234567890","title":"Attention Is All You Need (annotated copy)","num_chunks":42}`),
	}
	wire, err := event.Encode(&ev, 0)
	if err != nil {
		b.Fatal(err)
	}
	return ev, wire
}

// BenchmarkFrameBuild: one event frame from a decoded event: one
// allocation, the frame itself.
func BenchmarkFrameBuild(b *testing.B) {
	ev, _ := benchWire(b)
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf = appendEventFrame(make([]byte, 0, frameSize(&ev)), &ev, 123456)
	}
	b.SetBytes(int64(len(buf)))
}

// discard is a transport that writes nothing.
type discard struct{ goneCh chan struct{} }

func (discard) send(frameKind, uint64, []byte) error { return nil }
func (discard) begin()                               {}
func (discard) end() error                           { return nil }
func (discard) tryBegin() bool                       { return false }
func (discard) tryEnd() (bool, error)                { return false, errNoDirect }
func (discard) keepAlive() error                     { return nil }
func (discard) closeSlow(string)                     {}
func (discard) goingAway()                           {}
func (discard) expired()                             {}
func (d discard) gone() <-chan struct{}              { return d.goneCh }
func (discard) drop()                                {}

// BenchmarkFanout: one live message parsed, encoded and queued for N
// in-process clients (their queues drained by their writers, which run
// while frames wait). The allocations do not grow with N, beyond a
// writer's start when its client was idle.
func BenchmarkFanout(b *testing.B) {
	_, wire := benchWire(b)
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			br := &Bridge{cfg: Config{ClientQueue: 4096}.WithDefaults(), log: zap.NewNop(), counters: newCounters(), done: make(chan struct{})}
			var cancel context.CancelFunc
			br.doneCtx, cancel = context.WithCancel(context.Background())
			defer cancel()
			r := &room{b: br}
			clients := make([]*client, n)
			for i := range clients {
				cl := newClient(br, socketOptions{}, "bench", "bench")
				clients[i] = cl
				cl.start(discard{make(chan struct{})}, start{})
			}
			r.clients.Store(&clients)
			m := &nats.Msg{
				Subject: "live.events.library.550e8400-e29b-41d4-a716-446655440000.document.added",
				Data:    wire,
				Header:  nats.Header{"Nats-Sequence": {"123456"}, "Nats-Msg-Id": {"x"}},
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(wire)))
			t0 := time.Now()
			for b.Loop() {
				r.fanout(br.frameOf(m, 123456))
			}
			elapsed := time.Since(t0)
			for _, cl := range clients {
				close(cl.w.t.(discard).goneCh)
				cl.finish()
			}
			for _, cl := range clients {
				if cl.kicked.Load() {
					b.Fatal("a client overflowed")
				}
			}
			b.ReportMetric(float64(b.N*n)/elapsed.Seconds(), "frames/s")
		})
	}
}
