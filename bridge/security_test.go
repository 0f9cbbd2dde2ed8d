package bridge_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/arrwdb/arrwcdc/auth"
	"github.com/arrwdb/arrwcdc/bridge"
)

// testSecret and otherSecret are HS256 secrets (32 bytes and more).
var (
	testSecret  = []byte("arrwcdc-test-secret-0123456789abcdef")
	otherSecret = []byte("not-the-bridge-secret-0123456789abcdef")
)

// authEnv is a broker, a bridge with tokens on, and a signer for them.
type authEnv struct {
	*env
	b    *bridge.Bridge
	sign *auth.Signer
}

func newAuthEnv(t *testing.T, edit ...func(*bridge.Config)) *authEnv {
	t.Helper()
	v, err := auth.NewHS256(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	s, err := auth.NewHS256Signer(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	b := e.bridge(t, append([]func(*bridge.Config){func(c *bridge.Config) { c.Tokens = v }}, edit...)...)
	return &authEnv{env: e, b: b, sign: s}
}

func (a *authEnv) token(t *testing.T, c auth.Claims, ttl time.Duration) string {
	t.Helper()
	return signWith(t, a.sign, c, ttl)
}

func signWith(t *testing.T, s *auth.Signer, c auth.Claims, ttl time.Duration) string {
	t.Helper()
	tok, err := s.Sign(c, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// algNone is an unsigned token ("alg": "none") that would read everything
// and publish.
func algNone() string {
	enc := base64.RawURLEncoding.EncodeToString
	hdr := enc([]byte(`{"alg":"none","typ":"JWT"}`))
	body := enc(fmt.Appendf(nil, `{"sub":"mallory","exp":%d,"arrwcdc":{"read":["*"],"publish":true}}`, time.Now().Add(time.Hour).Unix()))
	return hdr + "." + body + "."
}

// attempt is one request to a door: its status, its JSON error, and
// whether it was served (a WebSocket upgraded or an SSE stream opened).
type attempt struct {
	code   int
	reason string
	auth   string // WWW-Authenticate
}

// tryWS dials path with token (in the Authorization header, or "" for
// none) and origin; a successful upgrade is reported as 101 and closed.
func tryWS(t *testing.T, b *bridge.Bridge, path, token, origin string) attempt {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	if origin != "" {
		h.Set("Origin", origin)
	}
	c, resp, err := websocket.Dial(ctx, wsURL(b, path), &websocket.DialOptions{HTTPHeader: h, HTTPClient: httpClient})
	if err == nil {
		_ = c.CloseNow()
		return attempt{code: http.StatusSwitchingProtocols}
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	return readAttempt(t, resp)
}

// tryHTTP sends method path (body for POST) with token and origin.
func tryHTTP(t *testing.T, b *bridge.Bridge, method, path, body, token, origin string) attempt {
	t.Helper()
	req, err := http.NewRequest(method, b.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return attempt{code: resp.StatusCode} // served: do not wait for the stream
	}
	return readAttempt(t, resp)
}

func readAttempt(t *testing.T, resp *http.Response) attempt {
	t.Helper()
	raw, _ := io.ReadAll(resp.Body)
	a := attempt{code: resp.StatusCode, auth: resp.Header.Get("WWW-Authenticate")}
	var body struct{ Error string }
	if len(raw) > 0 && resp.StatusCode >= 400 {
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatalf("%d answer %q is not JSON: %v", resp.StatusCode, raw, err)
		}
		a.reason = body.Error
	}
	return a
}

// TestTokensRefused: every bad token, wrong library, neighbour id and
// forbidden origin is refused before the upgrade on WebSocket, SSE and
// POST, with the right status and reason, and nothing is published or
// subscribed.
func TestTokensRefused(t *testing.T) {
	a := newAuthEnv(t, func(c *bridge.Config) { c.AllowedOrigins = []string{"app.example.com"} })
	other, err := auth.NewHS256Signer(otherSecret)
	if err != nil {
		t.Fatal(err)
	}
	lib1 := a.token(t, auth.Claims{Subject: "alice", Read: []string{"lib-1"}}, time.Hour)
	lib1Pub := a.token(t, auth.Claims{Subject: "alice", Read: []string{"lib-1"}, Publish: true}, time.Hour)
	all := a.token(t, auth.Claims{Read: []string{"*"}, Publish: true}, time.Hour)
	expired := a.token(t, auth.Claims{Read: []string{"*"}, Publish: true}, -time.Hour)
	forged := signWith(t, other, auth.Claims{Read: []string{"*"}, Publish: true}, time.Hour)
	body := `{"type":"document.added","library_id":"lib-1","data":{"document_id":"d"}}`
	before := a.lastSeq(t)

	const (
		ws1    = "/v1/libraries/lib-1/ws"
		sse1   = "/v1/libraries/lib-1/events"
		ws10   = "/v1/libraries/lib-10/ws"
		sse10  = "/v1/libraries/lib-10/events"
		wsB    = "/v1/libraries/lib-B/ws"
		sseB   = "/v1/libraries/lib-B/events"
		wsAll  = "/v1/events/ws?filter=events.%3E"
		ws10p  = "/v1/events/ws?filter=events.library.lib-10.%3E"
		wsWild = "/v1/events/ws?filter=events.library.*.document.added"
	)
	for _, tc := range []struct {
		name          string
		door, path    string // door: ws, sse or post
		token, origin string
		code          int
		reason        string // prefix
	}{
		{"no token ws", "ws", ws1, "", "", 401, "missing token"},
		{"no token sse", "sse", sse1, "", "", 401, "missing token"},
		{"no token post", "post", "/v1/events", "", "", 401, "missing token"},
		{"expired ws", "ws", ws1, expired, "", 401, "token expired"},
		{"expired sse", "sse", sse1, expired, "", 401, "token expired"},
		{"expired post", "post", "/v1/events", expired, "", 401, "token expired"},
		{"forged ws", "ws", ws1, forged, "", 401, "invalid token"},
		{"forged sse", "sse", sse1, forged, "", 401, "invalid token"},
		{"forged post", "post", "/v1/events", forged, "", 401, "invalid token"},
		{"alg none ws", "ws", ws1, algNone(), "", 401, "invalid token"},
		{"alg none sse", "sse", sse1, algNone(), "", 401, "invalid token"},
		{"alg none post", "post", "/v1/events", algNone(), "", 401, "invalid token"},
		{"garbage ws", "ws", ws1, "not.a.jwt", "", 401, "invalid token"},
		{"library A on B ws", "ws", wsB, lib1, "", 403, "token does not allow reading library lib-B"},
		{"library A on B sse", "sse", sseB, lib1, "", 403, "token does not allow"},
		{"lib-1 on lib-10 ws", "ws", ws10, lib1, "", 403, "token does not allow"},
		{"lib-1 on lib-10 sse", "sse", sse10, lib1, "", 403, "token does not allow"},
		{"lib-1 on lib-10 pattern", "ws", ws10p, lib1, "", 403, "token does not allow"},
		{"lib-1 on all", "ws", wsAll, lib1, "", 403, "token does not allow"},
		{"lib-1 on wildcard", "ws", wsWild, lib1, "", 403, "token does not allow"},
		{"read-only publishes", "post", "/v1/events", lib1, "", 403, "token does not allow publishing"},
		{"forbidden origin ws", "ws", ws1, all, "https://evil.example.net", 403, "origin"},
		{"forbidden origin sse", "sse", sse1, all, "https://evil.example.net", 403, "origin"},
		{"forbidden origin post", "post", "/v1/events", lib1Pub, "https://evil.example.net", 403, "origin"},
		{"null origin ws", "ws", ws1, all, "null", 403, "origin"},
		// the allowed ones, for contrast
		{"lib-1 ws", "ws", ws1, lib1, "https://app.example.com", 101, ""},
		{"lib-1 sse", "sse", sse1, lib1, "", 200, ""},
		{"all pattern", "ws", wsAll, all, "", 101, ""},
		{"lib-1 pattern", "ws", "/v1/events/ws?filter=events.library.lib-1.document.*", lib1, "", 101, ""},
	} {
		var got attempt
		switch tc.door {
		case "ws":
			got = tryWS(t, a.b, tc.path, tc.token, tc.origin)
		case "sse":
			got = tryHTTP(t, a.b, http.MethodGet, tc.path, "", tc.token, tc.origin)
		case "post":
			got = tryHTTP(t, a.b, http.MethodPost, tc.path, body, tc.token, tc.origin)
		}
		if got.code != tc.code || !strings.HasPrefix(got.reason, tc.reason) {
			t.Errorf("%s: got %d %q, want %d %q", tc.name, got.code, got.reason, tc.code, tc.reason)
		}
		if tc.code == 401 && !strings.HasPrefix(got.auth, "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q, want Bearer", tc.name, got.auth)
		}
	}
	if after := a.lastSeq(t); after != before {
		t.Errorf("refused posts published: stream went from seq %d to %d", before, after)
	}
	// The token also works in the query (browsers), and a publisher may post.
	c := dial(t, a.b, ws1+"?token="+lib1)
	connected(t, c)
	if code, raw := postWith(t, a.b, body, lib1Pub); code != http.StatusAccepted {
		t.Fatalf("post with a publish token: %d %s", code, raw)
	}
	if f := read(t, c); f.Type != "event" || f.LibraryID != "lib-1" {
		t.Fatalf("frame %s, want the posted lib-1 event", f.raw)
	}
	// The open routes stay open.
	for _, p := range []string{"/v1/events/stats", "/healthz", "/readyz", "/metrics", "/"} {
		if code, raw := get(t, a.b.URL()+p); code != http.StatusOK {
			t.Errorf("GET %s without a token: %d %s", p, code, raw)
		}
	}
	_, m := get(t, a.b.URL()+"/metrics")
	for _, want := range []string{`arrwcdc_bridge_refused_requests_total{reason="unauthorized"} 13`, `arrwcdc_bridge_refused_requests_total{reason="forbidden"} 12`} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func postWith(t *testing.T, b *bridge.Bridge, body, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.URL()+"/v1/events", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	return roundTrip(t, req)
}

// TestTokenExpiresWhileConnected: a WebSocket whose token expires is closed
// with 1008 "token expired"; an SSE stream gets a close event and ends.
func TestTokenExpiresWhileConnected(t *testing.T) {
	a := newAuthEnv(t)
	tok := a.token(t, auth.Claims{Read: []string{"lib-1"}}, 2*time.Second)
	start := time.Now()
	c := dial(t, a.b, "/v1/libraries/lib-1/ws?token="+tok)
	connected(t, c)
	sse, err := openSSE(a.b.URL(), "/v1/libraries/lib-1/events?token="+tok, "", &link{})
	if err != nil {
		t.Fatal(err)
	}
	defer sse.close()
	if f, err := sse.next(); err != nil || f.sseEvent != "connected" {
		t.Fatalf("sse first event %s %v", f.raw, err)
	}
	_, err = tryRead(c)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != "token expired" {
		t.Fatalf("read after expiry: %v, want close 1008 token expired", err)
	}
	f, err := sse.next()
	if err != nil || f.sseEvent != "close" || f.Reason != "token expired" {
		t.Fatalf("sse after expiry: %s %v, want a close event", f.raw, err)
	}
	if _, err := sse.next(); !errors.Is(err, io.EOF) {
		t.Fatalf("sse after the close event: %v, want EOF", err)
	}
	t.Logf("closed %v after connecting with a 2s token", time.Since(start).Round(10*time.Millisecond))
	// Reconnecting with the expired token is refused.
	if got := tryWS(t, a.b, "/v1/libraries/lib-1/ws?token="+tok, "", ""); got.code != 401 || got.reason != "token expired" {
		t.Fatalf("reconnect: %d %q", got.code, got.reason)
	}
	waitActive(t, a.b, 0)
}

// waitActive polls the statistics until n clients are active.
func waitActive(t *testing.T, b *bridge.Bridge, n int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		got := stats(t, b, "").ActiveSubscribers
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("active_subscribers %d, want %d", got, n)
		}
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond) // polling the statistics, not waiting for a delivery
	}
}

// TestSubjectInjection: ids, filters and types that would widen or break
// a subject are refused with 400 on every path, and nothing is published.
func TestSubjectInjection(t *testing.T) {
	e := newEnv(t)
	b := e.bridge(t)
	before := e.lastSeq(t)
	for _, lib := range []string{"a.b", "*", ">", "a b", "lib.>", "", "lib\u0000x", strings.Repeat("x", 200)} {
		body := fmt.Sprintf(`{"type":"document.added","library_id":%q,"data":{}}`, lib)
		if code, raw := post(t, b, "", "application/json", body); code != http.StatusBadRequest {
			t.Errorf("POST library_id %q: %d %s, want 400", lib, code, raw)
		}
	}
	for _, typ := range []string{"document.>", "*.added", "document", "a.b.c", "document.add ed"} {
		body := fmt.Sprintf(`{"type":%q,"library_id":"lib-1","data":{}}`, typ)
		if code, raw := post(t, b, "", "application/json", body); code != http.StatusBadRequest {
			t.Errorf("POST type %q: %d %s, want 400", typ, code, raw)
		}
	}
	if after := e.lastSeq(t); after != before {
		t.Errorf("injected posts published: seq %d -> %d", before, after)
	}
	many := strings.TrimSuffix(strings.Repeat("document.added,", 33), ",")
	for _, p := range []string{
		"/v1/libraries/a.b/ws", "/v1/libraries/%2A/ws", "/v1/libraries/%3E/ws", "/v1/libraries/a%20b/ws",
		"/v1/libraries/a.b/events", "/v1/libraries/%3E/events",
		"/v1/events/ws?filter=%3E", "/v1/events/ws?filter=events.library.*.%3E.x", "/v1/events/ws?filter=other.%3E",
		"/v1/events/ws?filter=events.library.a%20b.%3E", "/v1/events/ws?filter=events..%3E",
		"/v1/libraries/lib-1/ws?types=%3E", "/v1/libraries/lib-1/ws?types=document.%3E", "/v1/libraries/lib-1/ws?types=*",
		"/v1/libraries/lib-1/events?types=%3E",
		"/v1/libraries/lib-1/ws?types=" + many,
	} {
		if got := tryWS(t, b, p, "", ""); got.code != http.StatusBadRequest {
			t.Errorf("%s: %d %q, want 400", p, got.code, got.reason)
		}
	}
	waitActive(t, b, 0)
}

// TestHostileBodies: too large and deeply nested JSON and invalid UTF-8
// are refused (413, 400), and the bridge keeps serving.
func TestHostileBodies(t *testing.T) {
	e := newEnv(t)
	b := e.bridge(t, func(c *bridge.Config) { c.MaxPublishBytes = 1 << 20 })
	c := dial(t, b, "/v1/libraries/lib-1/ws")
	connected(t, c)
	before := e.lastSeq(t)
	event := func(data string) string {
		return `{"type":"document.added","library_id":"lib-1","data":` + data + `}`
	}
	const depth = 100000
	nested := strings.Repeat("[", depth) + strings.Repeat("]", depth)
	for _, tc := range []struct {
		name string
		body string
		code int
	}{
		{"over the body limit", event(`"` + strings.Repeat("x", 2<<20) + `"`), http.StatusRequestEntityTooLarge},
		{"over the event size", event(`"` + strings.Repeat("x", 1<<20-200) + `"`), http.StatusBadRequest},
		{"100k nested arrays in data", event(nested), http.StatusBadRequest},
		{"100k nested objects", strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth), http.StatusBadRequest},
		{"100k nested array body", nested, http.StatusBadRequest},
		{"invalid UTF-8 in data", event("{\"t\":\"\xff\xfe\"}"), http.StatusBadRequest},
		{"invalid UTF-8 in type", "{\"type\":\"document.\xc3\x28\",\"library_id\":\"lib-1\"}", http.StatusBadRequest},
		{"truncated", event(`{"a":`), http.StatusBadRequest},
		{"duplicate junk after", event(`{}`) + `{}`, http.StatusBadRequest},
	} {
		if code, raw := post(t, b, "", "application/json", tc.body); code != tc.code {
			t.Errorf("%s: %d %.200s, want %d", tc.name, code, raw, tc.code)
		}
	}
	if after := e.lastSeq(t); after != before {
		t.Errorf("hostile bodies published: seq %d -> %d", before, after)
	}
	if code, raw := post(t, b, "", "application/json", event(`{"ok":true}`)); code != http.StatusAccepted {
		t.Fatalf("a good post afterwards: %d %s", code, raw)
	}
	if f := read(t, c); f.Type != "event" || string(f.Data) != `{"ok":true}` {
		t.Fatalf("frame %s, want the good event", f.raw)
	}
}

// TestSlowHeaders: a client that sends its headers one byte at a time,
// slower than ReadHeaderTimeout, is disconnected.
func TestSlowHeaders(t *testing.T) {
	e := newEnv(t)
	const timeout = 500 * time.Millisecond
	b := e.bridge(t, func(c *bridge.Config) { c.ReadHeaderTimeout = timeout })
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(b.URL(), "http://"), wait)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "GET /v1/libraries/lib-1/ws HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 1000)
	start := time.Now()
	buf := make([]byte, 512)
	for i := 0; ; i++ {
		if time.Since(start) > wait {
			t.Fatal("a slow-header client was not disconnected")
		}
		if _, err := conn.Write([]byte{req[i%len(req)]}); err != nil {
			break // the bridge closed the connection
		}
		// The read deadline paces the bytes: one per 50ms.
		_ = conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := conn.Read(buf)
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			continue
		}
		if n > 0 {
			t.Logf("answer %q", buf[:n])
		}
		break // EOF, reset or an answer: disconnected
	}
	took := time.Since(start)
	if took < timeout {
		t.Fatalf("disconnected after %v, before ReadHeaderTimeout %v", took, timeout)
	}
	t.Logf("disconnected after %v (ReadHeaderTimeout %v)", took.Round(time.Millisecond), timeout)
	if code, _ := get(t, b.URL()+"/healthz"); code != http.StatusOK {
		t.Fatalf("healthz %d", code)
	}
}

// TestConnectionLimits: one client over the per-address limit gets 429,
// over the bridge's limit 503, both counted; a client leaving frees its
// place.
func TestConnectionLimits(t *testing.T) {
	e := newEnv(t)
	b := e.bridge(t, func(c *bridge.Config) { c.MaxConnsPerAddress = 2 })
	c1 := dial(t, b, "/v1/libraries/lib-1/ws")
	connected(t, c1)
	sse, err := openSSE(b.URL(), "/v1/libraries/lib-1/events", "", &link{})
	if err != nil {
		t.Fatal(err)
	}
	defer sse.close()
	if got := tryWS(t, b, "/v1/libraries/lib-1/ws", "", ""); got.code != http.StatusTooManyRequests || !strings.Contains(got.reason, "per address") {
		t.Fatalf("third client: %d %q, want 429", got.code, got.reason)
	}
	if got := tryHTTP(t, b, http.MethodGet, "/v1/libraries/lib-1/events", "", "", ""); got.code != http.StatusTooManyRequests {
		t.Fatalf("third client (sse): %d %q, want 429", got.code, got.reason)
	}
	_ = c1.CloseNow()
	waitActive(t, b, 1)
	c3 := dial(t, b, "/v1/libraries/lib-1/ws")
	connected(t, c3)

	b2 := e.bridge(t, func(c *bridge.Config) { c.MaxConnections = 1 })
	c4 := dial(t, b2, "/v1/libraries/lib-1/ws")
	connected(t, c4)
	if got := tryWS(t, b2, "/v1/libraries/lib-1/ws", "", ""); got.code != http.StatusServiceUnavailable || !strings.Contains(got.reason, "connection limit") {
		t.Fatalf("second client: %d %q, want 503", got.code, got.reason)
	}
	_, m := get(t, b.URL()+"/metrics")
	if !strings.Contains(string(m), `arrwcdc_bridge_refused_requests_total{reason="address_limit"} 2`) {
		t.Errorf("metrics lack 2 address_limit refusals")
	}
	_, m = get(t, b2.URL()+"/metrics")
	if !strings.Contains(string(m), `arrwcdc_bridge_refused_requests_total{reason="connection_limit"} 1`) ||
		!strings.Contains(string(m), "arrwcdc_bridge_connections 1") {
		t.Errorf("metrics lack the connection_limit refusal or the connections gauge")
	}
}

// TestConnectionChurn: churnConns connections opened and dropped (raw TCP
// dropped at once, half-sent requests, WebSockets that connect and go
// without a close) while a well-behaved client keeps receiving every
// event; afterwards one client is active and the heap is back near where
// it was.
func TestConnectionChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("churn")
	}
	e := newEnv(t)
	b := e.bridge(t)
	good := dial(t, b, "/v1/libraries/good/ws")
	connected(t, good)
	addr := strings.TrimPrefix(b.URL(), "http://")

	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heapBefore := ms.HeapInuse

	const workers = 16
	churnConns := 10000
	var (
		mu      sync.Mutex
		ids     []string
		wg      sync.WaitGroup
		errOnce sync.Once
		churErr error
	)
	fail := func(err error) { errOnce.Do(func() { churErr = err }) }
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < churnConns; i += workers {
				switch i % 4 {
				case 0: // a WebSocket that gets its connected frame and vanishes
					ctx, cancel := context.WithTimeout(context.Background(), wait)
					c, _, err := websocket.Dial(ctx, "ws://"+addr+fmt.Sprintf("/v1/libraries/churn-%d/ws", i%50), &websocket.DialOptions{HTTPClient: httpClient})
					if err == nil {
						_, _, err = c.Read(ctx)
						_ = c.CloseNow()
					}
					cancel()
					if err != nil {
						fail(fmt.Errorf("churn ws %d: %w", i, err))
						return
					}
				case 1: // connect and drop
					c, err := net.DialTimeout("tcp", addr, wait)
					if err != nil {
						fail(err)
						return
					}
					_ = c.Close()
				case 2: // half a request, then drop
					c, err := net.DialTimeout("tcp", addr, wait)
					if err != nil {
						fail(err)
						return
					}
					_, _ = io.WriteString(c, "GET /v1/libraries/x/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websock")
					_ = c.Close()
				case 3: // a refused request read to its end
					c, err := net.DialTimeout("tcp", addr, wait)
					if err != nil {
						fail(err)
						return
					}
					_, _ = io.WriteString(c, "GET /v1/libraries/a.b/ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
					_ = c.SetReadDeadline(time.Now().Add(wait))
					resp, err := http.ReadResponse(bufio.NewReader(c), nil)
					if err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusBadRequest {
							err = fmt.Errorf("status %d", resp.StatusCode)
						}
					}
					_ = c.Close()
					if err != nil {
						fail(fmt.Errorf("churn refused %d: %w", i, err))
						return
					}
				}
				if w == 0 && i%(workers*10) == 0 { // publish now and then, meanwhile
					_, id := e.publish(t, ev{lib: "good"})
					mu.Lock()
					ids = append(ids, id)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if churErr != nil {
		t.Fatal(churErr)
	}
	took := time.Since(start)
	_, last := e.publish(t, ev{lib: "good"})
	ids = append(ids, last)
	for i, id := range ids {
		f := read(t, good)
		if f.Type != "event" || f.ID != id {
			t.Fatalf("good client frame %d: %s, want event %s", i, f.raw, id)
		}
	}
	waitActive(t, b, 1)
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heapAfter := ms.HeapInuse
	t.Logf("%d connections opened and dropped in %v; good client got all %d events; heap in use %d MiB -> %d MiB",
		churnConns, took.Round(time.Millisecond), len(ids), heapBefore>>20, heapAfter>>20)
	if heapAfter > heapBefore+64<<20 {
		t.Fatalf("heap in use grew from %d to %d bytes", heapBefore, heapAfter)
	}
}
