package bridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/arrwdb/arrwcdc/bridge"
	"github.com/arrwdb/arrwcdc/event"
)

// post sends body to POST /v1/events with Content-Type ct ("" for none).
func post(t *testing.T, b *bridge.Bridge, query, ct, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.URL()+"/v1/events"+query, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	return roundTrip(t, req)
}

// lastSeq is the stream's last sequence.
func (e *env) lastSeq(t *testing.T) uint64 {
	t.Helper()
	s, err := e.js.Stream(t.Context(), "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State.LastSeq
}

func TestPublishHTTP(t *testing.T) {
	e := newEnv(t)
	b := e.bridge(t)
	c := dial(t, b, "/v1/libraries/lib-1/ws")
	connected(t, c)
	stream, err := e.js.Stream(t.Context(), "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	// stored checks that seq holds the event id of library lib and type typ.
	stored := func(seq uint64, id, subject string) event.Event {
		t.Helper()
		m, err := stream.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != subject || m.Header.Get(jetstream.MsgIDHeader) != id {
			t.Fatalf("seq %d: %s %v, want %s id %s", seq, m.Subject, m.Header, subject, id)
		}
		ev, err := event.Decode(m.Data, 0)
		if err != nil || ev.ID != id {
			t.Fatalf("seq %d: %s: %v", seq, m.Data, err)
		}
		return ev
	}
	accepted := func(code int, body []byte, n int) []bridge.PublishResult {
		t.Helper()
		var res []bridge.PublishResult
		if code != http.StatusAccepted || json.Unmarshal(body, &res) != nil || len(res) != n {
			t.Fatalf("got %d %s, want 202 with %d results", code, body, n)
		}
		return res
	}

	// One event, without id, timestamp and source: filled in.
	before := time.Now()
	code, body := post(t, b, "", "application/json", `{"type":"document.added","library_id":"lib-1","data":{"document_id":"d1","title":"T","num_chunks":1}}`)
	res := accepted(code, body, 1)
	ev := stored(res[0].Seq, res[0].ID, "events.library.lib-1.document.added")
	if ev.Timestamp.Before(before.Add(-time.Second)) || ev.Source != "" || string(ev.Data) != `{"document_id":"d1","title":"T","num_chunks":1}` {
		t.Fatalf("stored %+v", ev)
	}
	if f := read(t, c); f.Seq != res[0].Seq || f.ID != res[0].ID {
		t.Fatalf("frame %s, want %+v", f.raw, res[0])
	}

	// An array, ids and timestamps given, any JSON content type.
	code, body = post(t, b, "", "application/cloudevents-batch+json; charset=utf-8", `[
		{"id":"id-a","type":"library.created","library_id":"lib-1","timestamp":"2025-10-27T06:01:00.000000","source":"http-1","data":{"name":"n"}},
		{"id":"id-b","type":"workflow.completed","library_id":"lib-2","timestamp":"2025-10-27T06:01:00Z"},
		{"type":"document.deleted","library_id":"lib-1","data":null}
	]`)
	res = accepted(code, body, 3)
	for i, subj := range []string{"events.library.lib-1.library.created", "events.library.lib-2.workflow.completed", "events.library.lib-1.document.deleted"} {
		if i > 0 && res[i].Seq != res[i-1].Seq+1 {
			t.Fatalf("seqs %+v", res)
		}
		ev := stored(res[i].Seq, res[i].ID, subj)
		if i == 0 && (ev.ID != "id-a" || ev.Source != "http-1" || !ev.Timestamp.Equal(time.Date(2025, 10, 27, 6, 1, 0, 0, time.UTC))) {
			t.Fatalf("stored %+v", ev)
		}
	}
	for _, want := range []bridge.PublishResult{res[0], res[2]} { // lib-1's
		if f := read(t, c); f.Seq != want.Seq || f.ID != want.ID {
			t.Fatalf("frame %s, want %+v", f.raw, want)
		}
	}

	// The same id again: the stream keeps the first.
	code, body = post(t, b, "", "application/json", `{"id":"id-a","type":"library.created","library_id":"lib-1"}`)
	if dup := accepted(code, body, 1)[0]; !dup.Duplicate || dup.Seq != res[0].Seq {
		t.Fatalf("duplicate: %+v", dup)
	}

	// Invalid input: 400 naming the event, and nothing of the request is
	// published.
	last := e.lastSeq(t)
	for _, c := range []struct{ name, body, want string }{
		{"second of three", `[{"type":"document.added","library_id":"lib-1"},{"type":"Bad","library_id":"lib-1"},{"type":"document.added","library_id":"lib-1"}]`, "events[1]: invalid event: type: invalid event type"},
		{"unknown field", `{"type":"document.added","libary_id":"lib-1"}`, `event: invalid event: json: unknown field "libary_id"`},
		{"missing type", `[{"library_id":"lib-1"}]`, "events[0]: invalid event: type: missing"},
		{"missing library", `{"type":"document.added"}`, "event: invalid event: library_id: missing"},
		{"subject injection", `{"type":"document.added","library_id":"a.b"}`, "event: invalid event: library_id: invalid library id"},
		{"data not an object", `{"type":"document.added","library_id":"lib-1","data":[1]}`, "data: must be a JSON object"},
		{"bad timestamp", `{"type":"document.added","library_id":"lib-1","timestamp":"yesterday"}`, `timestamp "yesterday"`},
		{"event too large", `{"type":"document.added","library_id":"lib-1","data":{"x":"` + strings.Repeat("x", 1<<20) + `"}}`, "event: event too large"},
		{"not an object", `[{"type":"document.added","library_id":"lib-1"}, 7]`, "events[1]: invalid event: not a JSON object"},
		{"two values", `{"type":"document.added","library_id":"lib-1"} {}`, "more than one JSON value"},
		{"empty array", `[]`, "empty array"},
		{"empty body", ``, "empty body"},
		{"not JSON", `hello`, "want an event object or a JSON array"},
		{"broken array", `[{"type":`, "body: unexpected end of JSON input"},
	} {
		code, body := post(t, b, "", "application/json", c.body)
		var msg struct{ Error string }
		if code != http.StatusBadRequest || json.Unmarshal(body, &msg) != nil || !strings.Contains(msg.Error, c.want) {
			t.Errorf("%s: %d %s; want 400 with %q", c.name, code, body, c.want)
		}
	}
	if got := e.lastSeq(t); got != last {
		t.Fatalf("invalid requests published: last seq %d, was %d", got, last)
	}

	// Too large: the body (413), too many events (413); a wrong content
	// type (415), method (405), query parameter (400).
	code, body = post(t, b, "", "application/json", `{"type":"document.added","library_id":"lib-1","data":{"x":"`+strings.Repeat("x", 4<<20)+`"}}`)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "body larger than 4194304 bytes") {
		t.Fatalf("oversized body: %d %s", code, body)
	}
	code, body = post(t, b, "", "application/json", `[`+strings.Repeat(`{"type":"a.b","library_id":"l"},`, 10000)+`{"type":"a.b","library_id":"l"}]`)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "more than 10000 events") {
		t.Fatalf("too many events: %d %s", code, body)
	}
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; x"} {
		// What a page of another site can send without a preflight, and
		// garbage.
		if code, body := post(t, b, "", ct, `{"type":"a.b","library_id":"l"}`); code != http.StatusUnsupportedMediaType ||
			!strings.Contains(string(body), "send application/json") {
			t.Fatalf("Content-Type %q: %d %s", ct, code, body)
		}
	}
	if code, body := post(t, b, "?x=1", "", `{}`); code != http.StatusBadRequest || !strings.Contains(string(body), `unknown query parameter \"x\"`) {
		t.Fatalf("query: %d %s", code, body)
	}
	if code, body := get(t, b.URL()+"/v1/events"); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d %s", code, body)
	}
	if got := e.lastSeq(t); got != last {
		t.Fatalf("refused requests published: last seq %d, was %d", got, last)
	}

	// Many events in one request: one ack each, in order.
	var sb strings.Builder
	sb.WriteString("[")
	for i := range 500 {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `{"type":"document.added","library_id":"lib-3","data":{"n":%d}}`, i)
	}
	sb.WriteString("]")
	code, body = post(t, b, "?token=x", "application/json", sb.String())
	res = accepted(code, body, 500)
	for i, r := range res {
		if r.Seq != last+1+uint64(i) {
			t.Fatalf("result %d: %+v, want seq %d", i, r, last+1+uint64(i))
		}
	}
	stored(res[499].Seq, res[499].ID, "events.library.lib-3.document.added")

	// After shutdown: 503 (the publisher is closed).
	_ = c.CloseNow() // not reading: it would hold up the close handshake
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{header: http.Header{}}
	req, _ := http.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(`{"type":"a.b","library_id":"l"}`))
	req.Header.Set("Content-Type", "application/json")
	b.Handler().ServeHTTP(rec, req)
	if rec.code != http.StatusServiceUnavailable || !strings.Contains(string(rec.body), "publisher: closed") {
		t.Fatalf("after shutdown: %d %s", rec.code, rec.body)
	}
}
