package bridge_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"
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
	for i := range 50 {
		seq, _ := e.publish(t, ev{lib: "lib-1", data: fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i, strings.Repeat("y", i*1000))})
		if f := read(t, c); f.Seq != seq {
			t.Fatalf("frame %d: seq %d, want %d", i, f.Seq, seq)
		}
	}
}
