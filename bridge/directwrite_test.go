package bridge_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/arrwdb/arrwcdc/bridge"
)

// The bridge's Handler mounted on a TLS server: the hijacked connection
// is a *tls.Conn, so the room must not write to its socket itself; a wss
// client still gets every frame, whole and in order.
func TestHandlerOverTLS(t *testing.T) {
	e := newEnv(t)
	b := e.bridge(t)
	srv := httptest.NewTLSServer(b.Handler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "wss"+strings.TrimPrefix(srv.URL, "https")+"/v1/libraries/lib-1/ws",
		&websocket.DialOptions{HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(-1)
	connected(t, c)
	before := bridge.DirectWrites()
	for i := range 50 {
		seq, _ := e.publish(t, ev{lib: "lib-1", data: fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i, strings.Repeat("y", i*1000))})
		if f := read(t, c); f.Seq != seq {
			t.Fatalf("frame %d: seq %d, want %d", i, f.Seq, seq)
		}
	}
	if n := bridge.DirectWrites() - before; n != 0 {
		t.Fatalf("%d direct writes over TLS", n)
	}
}

// TestDirectWritesTaken: a client over plain TCP that reads gets live
// frames written by its room itself (the direct path is taken end to
// end), every frame whole and in order, in all three length forms; its
// pings meanwhile get their pongs between the data frames.
func TestDirectWritesTaken(t *testing.T) {
	e := newEnv(t)
	b := e.bridge(t, func(c *bridge.Config) { c.PingInterval = time.Hour })
	c := dial(t, b, "/v1/libraries/lib-1/ws")
	connected(t, c)
	got, rerr := readFrames(c, 1024)
	stop := make(chan struct{})
	pingErr := make(chan error, 1)
	go func() {
		for { // at least one ping, then until stop
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			err := c.Ping(ctx)
			cancel()
			if err != nil {
				pingErr <- err
				return
			}
			select {
			case <-stop:
				pingErr <- nil
				return
			default:
			}
		}
	}()
	before := bridge.DirectWrites()
	sizes := []int{10, 200, 70 << 10}
	for i := range 150 {
		seq, _ := e.publish(t, ev{lib: "lib-1", data: `{"pad":"` + strings.Repeat("x", sizes[i%3]) + `"}`})
		f, ok := <-got
		if !ok {
			t.Fatalf("frame %d: %v", i, <-rerr)
		}
		if f.Seq != seq {
			t.Fatalf("frame %d: seq %d, want %d", i, f.Seq, seq)
		}
	}
	close(stop)
	if err := <-pingErr; err != nil {
		t.Fatalf("ping: %v", err)
	}
	if bridge.DirectWrites() == before {
		t.Fatal("no direct write")
	}
}
