package bridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/arrwdb/arrwcdc/bridge"
	"github.com/arrwdb/arrwcdc/broker"
	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/testnats"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait bounds every read and poll of these tests (never a sleep).
const wait = 20 * time.Second

// env is a broker with a publishing connection.
type env struct {
	broker *broker.Broker
	nc     *nats.Conn
	js     jetstream.JetStream
}

func newEnv(t *testing.T) *env {
	t.Helper()
	b := testnats.Broker(t)
	nc := testnats.Conn(t, b.ClientURL(), nats.Name("test-publisher"))
	return &env{broker: b, nc: nc, js: testnats.JetStream(t, nc)}
}

// bridge starts a bridge on its own connection to the broker, on a free
// port, shut down (then disconnected) by t.Cleanup.
func (e *env) bridge(t *testing.T, edit ...func(*bridge.Config)) *bridge.Bridge {
	t.Helper()
	return e.bridgeAt(t, e.broker.ClientURL(), edit...)
}

// bridgeAt is bridge with its connection to natsURL (a proxy).
func (e *env) bridgeAt(t *testing.T, natsURL string, edit ...func(*bridge.Config)) *bridge.Bridge {
	t.Helper()
	nc := testnats.Conn(t, natsURL, nats.Name("test-bridge"), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	cfg := bridge.Config{HTTPListen: "127.0.0.1:0"}
	for _, ed := range edit {
		ed(&cfg)
	}
	b, err := bridge.New(cfg, nc, zaptest.NewLogger(t, zaptest.Level(zapcore.WarnLevel)))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return b
}

// ev is a test event of type typ in library lib, stamped now unless ts is
// set.
type ev struct {
	lib, typ, source, id, data string
	ts                         time.Time
}

// publish stores e through JetStream (with Nats-Msg-Id) and returns its
// stream sequence and id.
func (e *env) publish(t testing.TB, x ev) (uint64, string) {
	t.Helper()
	if x.typ == "" {
		x.typ = event.TypeDocumentAdded
	}
	if x.ts.IsZero() {
		x.ts = event.Now()
	}
	if x.data == "" {
		x.data = `{"document_id":"d1","title":"T","num_chunks":1}`
	}
	id := x.id
	if id == "" {
		id = event.NewID()
	}
	evt := event.Event{ID: id, Type: x.typ, LibraryID: x.lib, Timestamp: x.ts, Source: x.source, Data: json.RawMessage(x.data)}
	body, err := event.Encode(&evt, 0)
	if err != nil {
		t.Fatal(err)
	}
	subj, err := evt.Subject("events")
	if err != nil {
		t.Fatal(err)
	}
	return e.publishRaw(t, subj, id, body), id
}

// publishRaw stores body on subject with Nats-Msg-Id msgID.
func (e *env) publishRaw(t testing.TB, subject, msgID string, body []byte) uint64 {
	t.Helper()
	m := nats.NewMsg(subject)
	m.Data = body
	m.Header.Set(jetstream.MsgIDHeader, msgID)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ack, err := e.js.PublishMsg(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// wsURL turns the bridge's http URL and path into a ws URL.
func wsURL(b *bridge.Bridge, path string) string {
	return "ws" + strings.TrimPrefix(b.URL(), "http") + path
}

// dial opens a WebSocket client (no read limit), closed by t.Cleanup.
func dial(t *testing.T, b *bridge.Bridge, path string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, wsURL(b, path), nil)
	if err != nil {
		body := ""
		if resp != nil && resp.Body != nil {
			raw, _ := io.ReadAll(resp.Body)
			body = string(raw)
		}
		t.Fatalf("dial %s: %v %s", path, err, body)
	}
	c.SetReadLimit(-1)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// wsFrame is any frame the bridge sends.
type wsFrame struct {
	Type      string          `json:"type"`
	EventType string          `json:"event_type"`
	ID        string          `json:"id"`
	Seq       uint64          `json:"seq"`
	LibraryID string          `json:"library_id"`
	Timestamp string          `json:"timestamp"`
	Source    string          `json:"source"`
	Data      json.RawMessage `json:"data"`
	StreamSeq *uint64         `json:"stream_seq"`
	Filter    string          `json:"filter"`
	FromSeq   uint64          `json:"from_seq"` // gap frames
	ToSeq     uint64          `json:"to_seq"`
	Reason    string          `json:"reason"`
	raw       []byte
	sseID     string // SSE: the id field
	sseEvent  string // SSE: the event field
}

// read reads one frame within wait.
func read(t testing.TB, c *websocket.Conn) wsFrame {
	t.Helper()
	f, err := tryRead(c)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// readFrames reads c's frames into the first channel (of capacity n) on a
// goroutine of its own, until a read fails: then it sends the error on the
// second channel and closes the first. It ends when c is closed (or a read
// waits longer than wait).
func readFrames(c *websocket.Conn, n int) (<-chan wsFrame, <-chan error) {
	frames, failed := make(chan wsFrame, n), make(chan error, 1)
	go func() {
		defer close(frames)
		for {
			f, err := tryRead(c)
			if err != nil {
				failed <- err
				return
			}
			frames <- f
		}
	}()
	return frames, failed
}

func tryRead(c *websocket.Conn) (wsFrame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	typ, data, err := c.Read(ctx)
	if err != nil {
		return wsFrame{}, err
	}
	if typ != websocket.MessageText {
		return wsFrame{}, fmt.Errorf("message type %v", typ)
	}
	var f wsFrame
	if err := json.Unmarshal(data, &f); err != nil {
		return wsFrame{}, fmt.Errorf("frame %q: %w", data, err)
	}
	f.raw = data
	return f, nil
}

// connected reads the first frame and checks it is the connected frame.
func connected(t testing.TB, c *websocket.Conn) wsFrame {
	t.Helper()
	f := read(t, c)
	if f.Type != "connected" || f.StreamSeq == nil {
		t.Fatalf("first frame %s, want connected with stream_seq", f.raw)
	}
	return f
}

// stats GETs /v1/events/stats with query.
func stats(t testing.TB, b *bridge.Bridge, query string) bridge.Stats {
	t.Helper()
	var st bridge.Stats
	code, body := get(t, b.URL()+"/v1/events/stats"+query)
	if code != http.StatusOK {
		t.Fatalf("stats%s: %d %s", query, code, body)
	}
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func get(t testing.TB, url string) (int, []byte) {
	t.Helper()
	return do(t, http.MethodGet, url)
}

func do(t testing.TB, method, url string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return roundTrip(t, req)
}

// roundTrip sends req and returns the status and the whole body.
func roundTrip(t testing.TB, req *http.Request) (int, []byte) {
	t.Helper()
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// liveSubs counts the broker's subscriptions on exactly subject.
func liveSubs(t testing.TB, srv *server.Server, subject string) int {
	t.Helper()
	sz, err := srv.Subsz(&server.SubszOptions{Subscriptions: true, Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range sz.Subs {
		if s.Subject == subject {
			n++
		}
	}
	return n
}

// httpClient keeps no idle connections, so none outlives a test.
var httpClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: wait}
