package bridge_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/arrwdb/arrwcdc/event"
)

func TestFrames(t *testing.T) {
	e := newEnv(t)
	b := e.bridge(t)
	// Events stored before the client connects are not sent; stream_seq
	// says where live begins (the stream's last sequence, any library).
	e.publish(t, ev{lib: "lib-1"})
	e.publish(t, ev{lib: "lib-2"})
	before, _ := e.publish(t, ev{lib: "lib-1"})

	c := dial(t, b, "/v1/libraries/lib-1/ws")
	hello := connected(t, c)
	if want := fmt.Sprintf(`{"type":"connected","library_id":"lib-1","stream_seq":%d}`, before); string(hello.raw) != want {
		t.Fatalf("connected frame\n got %s\nwant %s", hello.raw, want)
	}

	ts := event.Now()
	seq, id := e.publish(t, ev{lib: "lib-1", source: "app-1", ts: ts, data: `{"document_id":"d9","title":"My \"Doc\"","num_chunks":3}`})
	f := read(t, c)
	want := fmt.Sprintf(`{"type":"event","event_type":"document.added","id":%q,"seq":%d,"library_id":"lib-1","timestamp":%q,"source":"app-1","data":{"document_id":"d9","title":"My \"Doc\"","num_chunks":3}}`,
		id, seq, ts.Format(event.TimeLayout))
	if string(f.raw) != want {
		t.Fatalf("event frame\n got %s\nwant %s", f.raw, want)
	}

	// An event without id (hand-published) gets its Nats-Msg-Id; one
	// without source and data gets "" and {}.
	body := fmt.Sprintf(`{"type":"library.deleted","library_id":"lib-1","timestamp":%q}`, ts.Format(event.TimeLayout))
	seq2 := e.publishRaw(t, "events.library.lib-1.library.deleted", "hand-1", []byte(body))
	f = read(t, c)
	want = fmt.Sprintf(`{"type":"event","event_type":"library.deleted","id":"hand-1","seq":%d,"library_id":"lib-1","timestamp":%q,"source":"","data":{}}`,
		seq2, ts.Format(event.TimeLayout))
	if string(f.raw) != want {
		t.Fatalf("event frame\n got %s\nwant %s", f.raw, want)
	}
}

func TestFilters(t *testing.T) {
	e := newEnv(t)
	b := e.bridge(t)
	c := dial(t, b, "/v1/libraries/lib-1/ws?types=document.added,library.*&types=*.performed&exclude_source=app-1")
	connected(t, c)
	all := dial(t, b, "/v1/libraries/lib-1/ws")
	connected(t, all)

	type pub struct {
		typ, source string
		want        bool
	}
	pubs := []pub{
		{event.TypeDocumentAdded, "app-2", true},
		{event.TypeDocumentAdded, "app-1", false}, // excluded source
		{event.TypeDocumentDeleted, "app-2", false},
		{event.TypeLibraryCreated, "", true},
		{event.TypeLibraryDeleted, "app-1", false},
		{event.TypeSearchPerformed, "app-3", true},
		{"workflow.completed", "app-2", false},
		{event.TypeDocumentAdded, "", true},
	}
	var want []string
	for _, p := range pubs {
		_, id := e.publish(t, ev{lib: "lib-1", typ: p.typ, source: p.source, data: "{}"})
		if p.want {
			want = append(want, id)
		}
	}
	for i, id := range want {
		if f := read(t, c); f.ID != id {
			t.Fatalf("filtered frame %d: %s, want id %s", i, f.raw, id)
		}
	}
	// The unfiltered client sees all of them, so the filtered one had its
	// chance to see the others too; the next frame it gets is the sentinel.
	for range pubs {
		read(t, all)
	}
	_, sentinel := e.publish(t, ev{lib: "lib-1"})
	if f := read(t, c); f.ID != sentinel {
		t.Fatalf("after the filtered events got %s, want the sentinel %s", f.raw, sentinel)
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t)
	b := e.bridge(t)
	cases := []struct {
		name, path, want string
	}{
		{"dot in id", "/v1/libraries/a.b/ws", "invalid library id"},
		{"star id", "/v1/libraries/*/ws", "invalid library id"},
		{"gt id", "/v1/libraries/%3E/ws", "invalid library id"},
		{"129 chars", "/v1/libraries/" + strings.Repeat("a", 129) + "/ws", "longer than 128"},
		{"space", "/v1/libraries/a%20b/ws", "invalid library id"},
		{"unknown param", "/v1/libraries/lib-1/ws?typ=document.added", `unknown query parameter "typ"`},
		{"filter on library socket", "/v1/libraries/lib-1/ws?filter=events.>", `unknown query parameter "filter"`},
		{"bad type", "/v1/libraries/lib-1/ws?types=Document.added", "types: invalid event type"},
		{"empty type entry", "/v1/libraries/lib-1/ws?types=document.added,,", "types: empty entry"},
		{"empty exclude", "/v1/libraries/lib-1/ws?exclude_source=", "exclude_source: empty"},
		{"since_seq not a number", "/v1/libraries/lib-1/ws?since_seq=abc", "since_seq: \"abc\": want a stream sequence"},
		{"negative since_seq", "/v1/libraries/lib-1/ws?since_seq=-1", "since_seq: \"-1\""},
		{"two since_seq", "/v1/libraries/lib-1/ws?since_seq=1&since_seq=2", "give one value"},
		{"since_seq and since_time", "/v1/libraries/lib-1/ws?since_seq=1&since_time=2025-01-01T00:00:00Z", "not both"},
		{"bad since_time", "/v1/libraries/lib-1/ws?since_time=yesterday", "since_time: \"yesterday\": want RFC 3339"},
		{"bad on_slow", "/v1/libraries/lib-1/ws?on_slow=x", "on_slow"},
		{"two on_slow", "/v1/libraries/lib-1/ws?on_slow=disconnect&on_slow=drop_oldest", "on_slow: give one value"},
		{"bad filter", "/v1/events/ws?filter=other.>", "filter: invalid subject pattern"},
		{"filter escaping the grammar", "/v1/events/ws?filter=events.library.a.b.c.d", "filter: invalid subject pattern"},
		{"two filters", "/v1/events/ws?filter=events.>&filter=events.>", "one pattern"},
		{"unknown param on pattern socket", "/v1/events/ws?library=x", `unknown query parameter "library"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// As a WebSocket client: refused before the upgrade.
			_, resp, err := websocket.Dial(t.Context(), wsURL(b, c.path), nil)
			if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("dial: %v, %+v; want 400", err, resp)
			}
			// As plain HTTP: a JSON reason.
			code, body := get(t, b.URL()+c.path)
			var msg struct{ Error string }
			if code != http.StatusBadRequest || json.Unmarshal(body, &msg) != nil || !strings.Contains(msg.Error, c.want) {
				t.Fatalf("GET %s = %d %s; want 400 with %q", c.path, code, body, c.want)
			}
		})
	}
	// on_slow, token and the resume parameters are accepted.
	for _, q := range []string{"on_slow=disconnect&token=x", "on_slow=drop_oldest", "since_seq=0", "since_time=2025-01-01T00:00:00Z"} {
		c := dial(t, b, "/v1/libraries/lib-1/ws?"+q)
		connected(t, c)
	}
}

func TestIsolationAndOrder(t *testing.T) {
	e := newEnv(t)
	b := e.bridge(t)
	libs := []string{"lib-a", "lib-b", "lib-c"}
	conns := map[string]*websocket.Conn{}
	for _, l := range libs {
		conns[l] = dial(t, b, "/v1/libraries/"+l+"/ws")
		connected(t, conns[l])
	}
	const per = 40
	seqs := map[string][]uint64{}
	for i := range per * len(libs) {
		l := libs[i%len(libs)]
		seq, _ := e.publish(t, ev{lib: l})
		seqs[l] = append(seqs[l], seq)
	}
	for _, l := range libs {
		for i, want := range seqs[l] {
			f := read(t, conns[l])
			if f.LibraryID != l || f.Seq != want {
				t.Fatalf("client of %s, frame %d: %s; want seq %d", l, i, f.raw, want)
			}
		}
	}
}

func TestHundredClients(t *testing.T) {
	e := newEnv(t)
	b := e.bridge(t)
	const clients, events = 100, 200
	conns := make([]*websocket.Conn, clients)
	for i := range conns {
		conns[i] = dial(t, b, "/v1/libraries/lib-1/ws")
		connected(t, conns[i])
	}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i, c := range conns {
		wg.Go(func() {
			var last uint64
			for n := range events {
				f, err := tryRead(c)
				if err != nil {
					errs <- fmt.Errorf("client %d after %d frames: %w", i, n, err)
					return
				}
				if f.Type != "event" || f.Seq <= last {
					errs <- fmt.Errorf("client %d: frame %s after seq %d", i, f.raw, last)
					return
				}
				last = f.Seq
			}
		})
	}
	for range events {
		e.publish(t, ev{lib: "lib-1"})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := stats(t, b, "")
	if st.ActiveSubscribers != clients || st.SlowConsumerDisconnects != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPatternSocket(t *testing.T) {
	e := newEnv(t)
	b := e.bridge(t)
	c := dial(t, b, "/v1/events/ws?filter=events.library.*.document.added")
	hello := connected(t, c)
	if hello.Filter != "events.library.*.document.added" || hello.LibraryID != "" {
		t.Fatalf("connected frame %s", hello.raw)
	}
	var want []uint64
	for i := range 12 {
		typ := []string{event.TypeDocumentAdded, event.TypeDocumentDeleted, event.TypeLibraryCreated}[i%3]
		seq, _ := e.publish(t, ev{lib: fmt.Sprintf("lib-%d", i%4), typ: typ, data: "{}"})
		if typ == event.TypeDocumentAdded {
			want = append(want, seq)
		}
	}
	for _, seq := range want {
		if f := read(t, c); f.Seq != seq || f.EventType != event.TypeDocumentAdded {
			t.Fatalf("got %s, want document.added seq %d", f.raw, seq)
		}
	}
	// Without a filter: every event of the prefix.
	everything := dial(t, b, "/v1/events/ws")
	if hello := connected(t, everything); hello.Filter != "events.>" {
		t.Fatalf("connected frame %s", hello.raw)
	}
	seq, _ := e.publish(t, ev{lib: "zzz", typ: "workflow.completed", data: "{}"})
	if f := read(t, everything); f.Seq != seq {
		t.Fatalf("got %s, want seq %d", f.raw, seq)
	}
}
