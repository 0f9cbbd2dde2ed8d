package bridge

import (
	"encoding/json"
	"fmt"
	"sync"
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

// BenchmarkFanout: one live message parsed, encoded and queued for N
// in-process clients (their queues drained by one goroutine each). The
// allocations do not grow with N.
func BenchmarkFanout(b *testing.B) {
	_, wire := benchWire(b)
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			br := &Bridge{cfg: Config{ClientQueue: 4096}.WithDefaults(), log: zap.NewNop(), counters: newCounters()}
			r := &room{b: br}
			clients := make([]*client, n)
			var wg sync.WaitGroup
			done := make(chan struct{})
			for i := range clients {
				cl := newClient(br, socketOptions{}, "bench", "bench")
				clients[i] = cl
				wg.Go(func() {
					batch := make([]*frame, 0, maxBatchFrames)
					for {
						select {
						case <-cl.wake:
							for more := true; more; {
								batch, _, _, more = cl.take(batch[:0], cap(batch))
							}
						case <-done:
							return
						}
					}
				})
			}
			r.clients.Store(&clients)
			m := &nats.Msg{
				Subject: "live.events.library.550e8400-e29b-41d4-a716-446655440000.document.added",
				Data:    wire,
				Header:  nats.Header{"Nats-Sequence": {"123456"}, "Nats-Msg-Id": {"x"}},
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(wire)))
			start := time.Now()
			for b.Loop() {
				r.fanout(br.frameOf(m))
			}
			elapsed := time.Since(start)
			close(done)
			wg.Wait()
			for _, cl := range clients {
				if cl.kicked.Load() {
					b.Fatal("a client overflowed")
				}
			}
			b.ReportMetric(float64(b.N*n)/elapsed.Seconds(), "frames/s")
		})
	}
}
