package bridge_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/arrwdb/arrwcdc/bridge"
	"github.com/arrwdb/arrwcdc/internal/testnats"
)

// waitIdle polls until b has n clients and none has a writer running.
func waitIdle(t *testing.T, b *bridge.Bridge, n int) {
	t.Helper()
	testnats.Eventually(t, wait, func() error {
		if clients, running := bridge.Writers(b); clients != n || running != 0 {
			return fmt.Errorf("%d clients, %d writers running; want %d, 0", clients, running, n)
		}
		return nil
	})
}

// TestIdleClientHoldsNoWriter: a client's writer goroutine exits once it
// has nothing to write, and starts again for each keep-alive, each frame
// and the shutdown: an idle client still gets its pings, its events, and
// 1001 when the bridge shuts down.
func TestIdleClientHoldsNoWriter(t *testing.T) {
	e := newEnv(t)
	b := e.bridge(t, func(c *bridge.Config) { c.PingInterval = 30 * time.Millisecond })
	var pings atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, _, err := websocket.Dial(ctx, wsURL(b, "/v1/libraries/lib-1/ws"), &websocket.DialOptions{
		OnPingReceived: func(context.Context, []byte) bool { pings.Add(1); return true },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	connected(t, c)

	// Reading answers the pings; each ping runs the writer again.
	frames, closed := readFrames(c, 4)
	waitIdle(t, b, 1) // after the connected frame, between pings
	testnats.Eventually(t, wait, func() error {
		if n := pings.Load(); n < 3 {
			return fmt.Errorf("%d pings", n)
		}
		return nil
	})
	waitIdle(t, b, 1)

	for range 2 {
		seq, _ := e.publish(t, ev{lib: "lib-1"})
		if f := <-frames; f.Type != "event" || f.Seq != seq {
			t.Fatalf("frame %s, want the event of seq %d", f.raw, seq)
		}
		waitIdle(t, b, 1)
	}

	sctx, scancel := context.WithTimeout(context.Background(), wait)
	defer scancel()
	if err := b.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if err := <-closed; websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("idle client at shutdown: %v, want close 1001", err)
	}
}

// TestIdleClientsMany: clients that connected and went idle hold no
// writer, yet every one of them gets each event.
func TestIdleClientsMany(t *testing.T) {
	e := newEnv(t)
	b := e.bridge(t)
	const n = 20
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i] = dial(t, b, fmt.Sprintf("/v1/libraries/lib-%d/ws", i%2))
		connected(t, conns[i])
	}
	waitIdle(t, b, n)
	s0, _ := e.publish(t, ev{lib: "lib-0"})
	s1, _ := e.publish(t, ev{lib: "lib-1"})
	for i, c := range conns {
		want := s0
		if i%2 == 1 {
			want = s1
		}
		if f := read(t, c); f.Type != "event" || f.Seq != want {
			t.Fatalf("client %d: %s, want seq %d", i, f.raw, want)
		}
	}
	waitIdle(t, b, n)
}
