package bridge_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/arrwdb/arrwcdc/bridge"
	"github.com/arrwdb/arrwcdc/internal/testnats"
)

// TestSSE reads the stream as curl -N would: a plain HTTP response of
// text/event-stream, parsed line by line.
func TestSSE(t *testing.T) {
	e := newEnv(t)
	b := e.bridge(t, func(c *bridge.Config) { c.PingInterval = 50 * time.Millisecond })
	before, _ := e.publish(t, ev{lib: "lib-1"})
	src, err := openSSE(b.URL(), "/v1/libraries/lib-1/events", "", &link{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.close()
	if h := src.resp.Header; h.Get("Content-Type") != "text/event-stream; charset=utf-8" || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers %v", h)
	}
	hello, err := src.next()
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf(`{"type":"connected","library_id":"lib-1","stream_seq":%d}`, before); hello.sseEvent != "connected" || hello.sseID != "" ||
		string(hello.raw) != want || src.retry != "1000" {
		t.Fatalf("first event %q id %q retry %q: %s", hello.sseEvent, hello.sseID, src.retry, hello.raw)
	}

	// The data is the WebSocket frame; line breaks inside it (JSON
	// whitespace of the event's data) become more data lines.
	ws := dial(t, b, "/v1/libraries/lib-1/ws")
	connected(t, ws)
	seq, _ := e.publish(t, ev{lib: "lib-1", source: "app-1", data: "{\n  \"document_id\": \"d1\",\r\n  \"title\": \"T\"\r}"})
	f, err := src.next()
	if err != nil {
		t.Fatal(err)
	}
	wf := read(t, ws)
	_ = ws.CloseNow() // it reads no more, so it could not answer pings
	if f.sseID != strconv.FormatUint(seq, 10) || f.sseEvent != "" || f.Seq != seq || !json.Valid(f.raw) ||
		string(f.raw) != strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(string(wf.raw)) {
		t.Fatalf("event id %q name %q:\n%s\nwebsocket:\n%s", f.sseID, f.sseEvent, f.raw, wf.raw)
	}

	// Keep-alive comments while nothing happens.
	for {
		_ = src.conn.SetReadDeadline(time.Now().Add(wait))
		line, err := src.r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == ": keep-alive\n" {
			break
		}
		if line != "\n" {
			t.Fatalf("line %q", line)
		}
	}

	// Filters, and Last-Event-ID resume (it wins over since_seq).
	for i := range 6 {
		e.publish(t, ev{lib: "lib-1", typ: []string{"document.added", "document.deleted"}[i%2], source: []string{"app-1", "app-2", "app-3"}[i%3], data: "{}"})
	}
	filtered, err := openSSE(b.URL(), "/v1/libraries/lib-1/events?types=document.deleted&exclude_source=app-3&since_seq=1", strconv.FormatUint(seq, 10), &link{})
	if err != nil {
		t.Fatal(err)
	}
	defer filtered.close()
	if _, err := filtered.next(); err != nil { // connected
		t.Fatal(err)
	}
	var got []uint64
	for range 2 { // seq+2 (app-2) and seq+4 (app-1); seq+6 is app-3's
		f, err := filtered.next()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, f.Seq)
	}
	last, _ := e.publish(t, ev{lib: "lib-1", typ: "document.deleted", data: "{}"})
	f, err = filtered.next()
	if err != nil {
		t.Fatal(err)
	}
	requireSeqs(t, "filtered", append(got, f.Seq), []uint64{seq + 2, seq + 4, last})

	// Bad requests are answered before the stream starts.
	for _, c := range []struct{ path, lastID, want string }{
		{"/v1/libraries/lib-1/events?filter=x", "", `unknown query parameter \"filter\"`},
		{"/v1/libraries/a.b/events", "", "invalid library id"},
		{"/v1/libraries/lib-1/events?since_seq=x", "", "since_seq"},
		{"/v1/libraries/lib-1/events", "abc", `Last-Event-ID: \"abc\"`},
	} {
		_, err := openSSE(b.URL(), c.path, c.lastID, &link{})
		if err == nil || !strings.Contains(err.Error(), ": 400 ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s (Last-Event-ID %q): %v; want 400 with %q", c.path, c.lastID, err, c.want)
		}
	}
	if code, _ := do(t, http.MethodHead, b.URL()+"/v1/libraries/lib-1/events"); code != http.StatusOK {
		t.Errorf("HEAD: %d", code)
	}
	if code, _ := do(t, http.MethodPost, b.URL()+"/v1/libraries/lib-1/events"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", code)
	}
}

// TestSSESlowConsumer: an SSE client that stops reading ends with a close
// event naming the last id it was sent; resuming from it loses nothing.
func TestSSESlowConsumer(t *testing.T) {
	e := newEnv(t)
	b := e.bridge(t, func(c *bridge.Config) { c.ClientQueue = 8 })
	l := &link{}
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			l.mu.Lock()
			l.conn = c
			l.mu.Unlock()
		}
		return c, err
	}
	req, _ := http.NewRequest(http.MethodGet, b.URL()+"/v1/libraries/lib-1/events", nil)
	resp, err := (&http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	src := &sseSource{resp: resp, conn: l.current(), r: newReader(resp)}
	defer src.close()
	if _, err := src.next(); err != nil { // connected; then no reading
		t.Fatal(err)
	}
	big := `{"pad":"` + strings.Repeat("x", 64<<10) + `"}`
	var published []uint64
	for b.Stats().SlowConsumerDisconnects == 0 {
		if len(published) == 3000 {
			t.Fatal("never dropped")
		}
		seq, _ := e.publish(t, ev{lib: "lib-1", data: big})
		published = append(published, seq)
	}
	var last uint64
	for {
		f, err := src.next()
		if err != nil {
			t.Fatalf("after seq %d: %v, want a close event", last, err)
		}
		if f.Type == "close" {
			if f.sseEvent != "close" || f.Reason != "slow consumer: resume with since_seq="+strconv.FormatUint(last, 10) {
				t.Fatalf("close event %q: %s (last seq %d)", f.sseEvent, f.raw, last)
			}
			break
		}
		last = f.Seq
	}
	if _, err := src.next(); err == nil {
		t.Fatal("the stream goes on after the close event")
	}
	// Resuming from the last id gets the rest.
	rest, err := openSSE(b.URL(), "/v1/libraries/lib-1/events", strconv.FormatUint(last, 10), &link{})
	if err != nil {
		t.Fatal(err)
	}
	defer rest.close()
	var got []uint64
	for len(got) == 0 || got[len(got)-1] < published[len(published)-1] {
		f, err := rest.next()
		if err != nil {
			t.Fatal(err)
		}
		if f.Type == "event" {
			got = append(got, f.Seq)
		}
	}
	var want []uint64
	for _, s := range published {
		if s > last {
			want = append(want, s)
		}
	}
	requireSeqs(t, "resumed", got, want)
	testnats.Eventually(t, wait, func() error {
		if st := b.Stats(); st.ActiveSubscribers != 1 || st.SlowConsumerDisconnects != 1 {
			return fmt.Errorf("active %d, slow %d", st.ActiveSubscribers, st.SlowConsumerDisconnects)
		}
		return nil
	})
}
