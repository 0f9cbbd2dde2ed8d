package bridge_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap/zaptest"

	"github.com/arrwdb/arrwcdc/bridge"
	"github.com/arrwdb/arrwcdc/internal/testnats"
)

func TestInterestSubscriptions(t *testing.T) {
	e := newEnv(t)
	b := e.bridge(t)
	srv := e.broker.Server()
	subA, subB := "live.events.library.lib-a.>", "live.events.library.lib-b.>"
	subPattern := "live.events.library.*.document.added"
	count := func(want map[string]int) func() error {
		return func() error {
			for s, n := range want {
				if got := liveSubs(t, srv, s); got != n {
					return fmt.Errorf("%s: %d subscriptions, want %d", s, got, n)
				}
			}
			return nil
		}
	}
	check := func(want map[string]int) {
		t.Helper()
		if err := count(want)(); err != nil {
			t.Fatal(err)
		}
	}
	check(map[string]int{subA: 0, subB: 0, subPattern: 0, "live.events.>": 1}) // only the statistics queue group

	// The subscription exists at the server before the connected frame.
	a1 := dial(t, b, "/v1/libraries/lib-a/ws")
	connected(t, a1)
	check(map[string]int{subA: 1, subB: 0})
	a2 := dial(t, b, "/v1/libraries/lib-a/ws")
	connected(t, a2)
	check(map[string]int{subA: 1, subB: 0}) // shared
	bc := dial(t, b, "/v1/libraries/lib-b/ws")
	connected(t, bc)
	p1 := dial(t, b, "/v1/events/ws?filter=events.library.*.document.added")
	connected(t, p1)
	p2 := dial(t, b, "/v1/events/ws?filter=events.library.*.document.added")
	connected(t, p2)
	check(map[string]int{subA: 1, subB: 1, subPattern: 1})
	if st := b.Stats(); st.LiveSubscriptions != 3 || st.ActiveSubscribers != 5 {
		t.Fatalf("live %d, active %d", st.LiveSubscriptions, st.ActiveSubscribers)
	}

	// The last client of a library leaving unsubscribes.
	_ = a1.Close(websocket.StatusNormalClosure, "")
	testnats.Eventually(t, wait, func() error {
		if n := b.Stats().ActiveSubscribers; n != 4 {
			return fmt.Errorf("%d active", n)
		}
		return nil
	})
	check(map[string]int{subA: 1})
	_ = a2.Close(websocket.StatusNormalClosure, "")
	_ = p1.Close(websocket.StatusNormalClosure, "")
	testnats.Eventually(t, wait, count(map[string]int{subA: 0, subB: 1, subPattern: 1}))
	_ = bc.Close(websocket.StatusNormalClosure, "")
	_ = p2.CloseNow()
	testnats.Eventually(t, wait, count(map[string]int{subA: 0, subB: 0, subPattern: 0, "live.events.>": 1}))
	testnats.Eventually(t, wait, func() error {
		if st := b.Stats(); st.LiveSubscriptions != 0 || st.ActiveSubscribers != 0 {
			return fmt.Errorf("live %d, active %d", st.LiveSubscriptions, st.ActiveSubscribers)
		}
		return nil
	})

	// A library that comes back gets a new subscription and its events.
	again := dial(t, b, "/v1/libraries/lib-a/ws")
	connected(t, again)
	seq, _ := e.publish(t, ev{lib: "lib-a"})
	if f := read(t, again); f.Seq != seq {
		t.Fatalf("got %s, want seq %d", f.raw, seq)
	}
}

func TestHealthReadyMetricsRoutes(t *testing.T) {
	e := newEnv(t)
	b := e.bridge(t)
	c := dial(t, b, "/v1/libraries/lib-1/ws")
	connected(t, c)
	e.publish(t, ev{lib: "lib-1"})
	read(t, c)

	expect := func(method, path string, code int, contains string) {
		t.Helper()
		got, body := do(t, method, b.URL()+path)
		if got != code || !strings.Contains(string(body), contains) {
			t.Fatalf("%s %s = %d %s; want %d with %q", method, path, got, body, code, contains)
		}
	}
	expect("GET", "/healthz", 200, `{"status":"ok"}`)
	expect("GET", "/readyz", 200, `{"status":"ready"}`)
	expect("GET", "/nope", 404, `{"error":"no route GET /nope"}`)
	expect("GET", "/v1/libraries/lib-1/events/more", 404, `"error"`)
	expect("POST", "/v1/events/stats", 405, `{"error":"method POST not allowed"}`)
	expect("DELETE", "/v1/libraries/lib-1/ws", 405, `"error"`)
	expect("GET", "/v1/libraries/lib-1/ws", 426, "WebSocket endpoint")
	expect("GET", "/", 200, "<html")
	expect("GET", "/web/index.html", 200, "<html")
	testnats.Eventually(t, wait, func() error {
		_, body := get(t, b.URL()+"/metrics")
		for _, name := range []string{
			`arrwcdc_bridge_events_total{type="document.added"} 1`,
			`arrwcdc_bridge_frames_sent_total{type="document.added"} 1`,
			"arrwcdc_bridge_invalid_events_total 0",
			"arrwcdc_bridge_slow_consumer_disconnects_total 0",
			"arrwcdc_bridge_clients 1",
			"arrwcdc_bridge_queued_frames 0",
			"arrwcdc_bridge_live_subscriptions 1",
			"arrwcdc_bridge_delivery_latency_seconds_count 1",
			`arrwcdc_bridge_delivery_latency_seconds_bucket{le="+Inf"} 1`,
			"arrwcdc_bridge_nats_connected 1",
			"arrwcdc_bridge_replayed_frames_total 0",
			"arrwcdc_bridge_replaying_clients 0",
			"arrwcdc_bridge_dropped_frames_total 0",
			"arrwcdc_bridge_resyncs_total 0",
			"arrwcdc_bridge_resynced_events_total 0",
			"arrwcdc_bridge_stream_messages 1",
			"arrwcdc_bridge_stream_last_seq 1",
			"go_goroutines",
		} {
			if !strings.Contains(string(body), name) {
				return fmt.Errorf("metrics lack %s", name)
			}
		}
		return nil
	})

	// The broker goes away: not ready, still alive.
	if err := e.broker.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	testnats.Eventually(t, wait, func() error {
		if code, body := get(t, b.URL()+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(string(body), `"error":"nats: `) {
			return fmt.Errorf("readyz %d %s", code, body)
		}
		return nil
	})
	expect("GET", "/healthz", 200, "ok")
	if st := stats(t, b, ""); st.NATS.Connected {
		t.Fatalf("nats %+v", st.NATS)
	}
}

func TestMisbehavingClients(t *testing.T) {
	e := newEnv(t)
	b := e.bridge(t)

	// Cut after the handshake, without a close frame.
	var raw net.Conn
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cut, _, err := websocket.Dial(ctx, wsURL(b, "/v1/libraries/lib-1/ws"), &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			raw = c
			return c, err
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	connected(t, cut)
	raw.Close()

	// Vanishes in the middle of a frame.
	conn, err := net.Dial("tcp", strings.TrimPrefix(b.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/libraries/lib-1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	if _, err := conn.Write([]byte{0x81, 0xfe, 0x10}); err != nil { // a masked text frame header, cut short
		t.Fatal(err)
	}
	conn.Close()

	// Sends data, small or oversized: closed with 1008.
	for _, msg := range []string{`{"hello":1}`, strings.Repeat("x", 1<<20)} {
		chatty := dial(t, b, "/v1/libraries/lib-1/ws")
		connected(t, chatty)
		go func() { _ = chatty.Write(ctx, websocket.MessageText, []byte(msg)) }()
		if _, err := tryRead(chatty); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
			t.Fatalf("client data frame of %d bytes: %v", len(msg), err)
		}
	}

	testnats.Eventually(t, wait, func() error {
		if st := b.Stats(); st.ActiveSubscribers != 0 || st.LiveSubscriptions != 0 {
			return fmt.Errorf("active %d, live %d", st.ActiveSubscribers, st.LiveSubscriptions)
		}
		return nil
	})
	// And the bridge serves on.
	c := dial(t, b, "/v1/libraries/lib-1/ws")
	connected(t, c)
	seq, _ := e.publish(t, ev{lib: "lib-1"})
	if f := read(t, c); f.Seq != seq {
		t.Fatalf("got %s", f.raw)
	}
}

func TestShutdown(t *testing.T) {
	e := newEnv(t)
	nc := testnats.Conn(t, e.broker.ClientURL(), nats.Name("test-bridge"))
	b, err := bridge.New(bridge.Config{HTTPListen: "127.0.0.1:0"}, nc, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(t.Context()); !errors.Is(err, bridge.ErrStarted) {
		t.Fatalf("second Start: %v", err)
	}
	closed := make(chan error, 3)
	for _, path := range []string{"/v1/libraries/lib-1/ws", "/v1/libraries/lib-2/ws", "/v1/events/ws"} {
		c := dial(t, b, path)
		connected(t, c)
		go func() {
			_, err := tryRead(c)
			closed <- err
		}()
	}
	url := b.URL()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := <-closed; websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Fatalf("client: %v, want going away", err)
		}
	}
	if err := b.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if err := b.Start(ctx); !errors.Is(err, bridge.ErrClosed) {
		t.Fatalf("Start after Shutdown: %v", err)
	}
	if _, err := httpClient.Get(url + "/healthz"); err == nil {
		t.Fatal("still listening")
	}
	// Every subscription of the bridge is gone.
	srv := e.broker.Server()
	testnats.Eventually(t, wait, func() error {
		for _, s := range []string{"live.events.>", "live.events.library.lib-1.>", "arrwcdc.bridge.stats.events"} {
			if n := liveSubs(t, srv, s); n != 0 {
				return fmt.Errorf("%s: %d subscriptions", s, n)
			}
		}
		return nil
	})
	// A handler mounted elsewhere refuses new sockets after Shutdown.
	rec := &recorder{header: http.Header{}}
	req, _ := http.NewRequest("GET", "/v1/libraries/lib-1/ws", nil)
	req.Header.Set("Upgrade", "websocket")
	b.Handler().ServeHTTP(rec, req)
	var msg struct{ Error string }
	if rec.code != http.StatusServiceUnavailable || json.Unmarshal(rec.body, &msg) != nil || msg.Error == "" {
		t.Fatalf("after shutdown: %d %s", rec.code, rec.body)
	}
}

type recorder struct {
	header http.Header
	code   int
	body   []byte
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(code int)        { r.code = code }
func (r *recorder) Write(p []byte) (int, error) { r.body = append(r.body, p...); return len(p), nil }
