package bridge_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/arrwdb/arrwcdc/bridge"
	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/testnats"
)

// BenchmarkWebSocketFanout: events stored in JetStream, republished, and
// delivered by a real bridge to N real WebSocket clients over loopback. One
// op is one event delivered to every client.
func BenchmarkWebSocketFanout(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) { benchFanout(b, n) })
	}
}

func benchFanout(b *testing.B, n int) {
	brk := testnats.Broker(b)
	pub := testnats.Conn(b, brk.ClientURL())
	js, err := jetstream.New(pub, jetstream.WithPublishAsyncMaxPending(512))
	if err != nil {
		b.Fatal(err)
	}
	bnc := testnats.Conn(b, brk.ClientURL())
	var br *bridge.Bridge
	br, err = bridge.New(bridge.Config{HTTPListen: "127.0.0.1:0", ClientQueue: 1 << 16}, bnc, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := br.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = br.Shutdown(context.Background()) }()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	url := "ws" + strings.TrimPrefix(br.URL(), "http") + "/v1/libraries/lib-1/ws"
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		c, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer c.CloseNow()
		if _, _, err := c.Read(ctx); err != nil { // connected
			b.Fatal(err)
		}
		conns[i] = c
	}
	ev := event.Event{Type: event.TypeDocumentAdded, LibraryID: "lib-1", Source: "bench",
		Data: []byte(`{"document_id":"a1b2c3d4-e5f6-7890-abcd-ef1234567890","title":"Attention Is All You Need (annotated copy)","num_chunks":42}`)}

	b.ResetTimer()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			for range b.N {
				if _, _, err := c.Read(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	for range b.N {
		ev.ID, ev.Timestamp = event.NewID(), event.Now()
		body, _ := event.Encode(&ev, 0)
		m := nats.NewMsg("events.library.lib-1.document.added")
		m.Data = body
		m.Header.Set(jetstream.MsgIDHeader, ev.ID)
		if _, err := js.PublishMsgAsync(m, jetstream.WithStallWait(time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		b.Fatal("publish acks")
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "frames/s")
	st := br.Stats()
	b.ReportMetric(st.LatencyMS.P99, "p99-ms")
}
