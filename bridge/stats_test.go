package bridge_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/arrwdb/arrwcdc/bridge"
	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/testnats"
)

func TestStatsAreTrue(t *testing.T) {
	e := newEnv(t)
	b := e.bridge(t)
	c := dial(t, b, "/v1/libraries/lib-1/ws")
	connected(t, c)

	// Events stamped one second ago: each delivery latency is at least
	// 1000 ms and at most the time it is counted by minus the stamp.
	const n = 30
	var first time.Time
	added := 0
	for i := range n {
		typ := event.TypeDocumentAdded
		if i%3 == 0 {
			typ = event.TypeDocumentDeleted
		} else {
			added++
		}
		ts := event.Now().Add(-time.Second)
		if i == 0 {
			first = ts
		}
		e.publish(t, ev{lib: "lib-1", typ: typ, ts: ts, data: "{}"})
		read(t, c)
	}
	for range 10 { // a library nobody watches still counts
		e.publish(t, ev{lib: "lib-2", typ: event.TypeLibraryCreated, data: "{}"})
	}

	var st bridge.Stats
	testnats.Eventually(t, wait, func() error {
		st = stats(t, b, "")
		if st.TotalPublished != n+10 || st.TotalDelivered != n {
			return fmt.Errorf("published %d delivered %d", st.TotalPublished, st.TotalDelivered)
		}
		return nil
	})
	maxLatency := time.Since(first)
	wantTypes := map[string]uint64{event.TypeDocumentAdded: uint64(added), event.TypeDocumentDeleted: uint64(n - added), event.TypeLibraryCreated: 10}
	if fmt.Sprint(st.EventsByType) != fmt.Sprint(wantTypes) {
		t.Errorf("events_by_type %v, want %v", st.EventsByType, wantTypes)
	}
	maxMS := float64(maxLatency.Microseconds()) / 1000
	if st.AverageDeliveryLatencyMS < 1000 || st.AverageDeliveryLatencyMS > maxMS {
		t.Errorf("average latency %v ms, want within [1000, %v]", st.AverageDeliveryLatencyMS, maxMS)
	}
	l := st.LatencyMS
	if l.Count != n || l.P50 < 1000*0.93 || l.P50 > l.P90 || l.P90 > l.P99 || l.P99 > l.Max || l.Max > maxMS || l.Max < 1000 {
		t.Errorf("latency %+v (max seen %v ms)", l, maxMS)
	}
	if len(st.LatencyByTypeMS) != 2 || st.LatencyByTypeMS[event.TypeDocumentAdded].Count != uint64(added) {
		t.Errorf("latency by type %+v", st.LatencyByTypeMS)
	}
	if st.DeliveredByType[event.TypeDocumentDeleted] != uint64(n-added) {
		t.Errorf("delivered by type %v", st.DeliveredByType)
	}
	want := []bridge.LibraryCount{{LibraryID: "lib-1", Events: n}, {LibraryID: "lib-2", Events: 10}}
	if fmt.Sprint(st.BusiestLibraries) != fmt.Sprint(want) {
		t.Errorf("busiest %v", st.BusiestLibraries)
	}
	if st.ActiveSubscribers != 1 || st.QueueSize != 0 || st.InvalidEvents != 0 || st.SlowConsumerDisconnects != 0 ||
		st.LiveSubscriptions != 1 || st.UptimeSeconds <= 0 || st.Scope != "bridge" || st.Bridges != 1 {
		t.Errorf("stats %+v", st)
	}
	if !st.NATS.Connected || st.NATS.Status != "connected" || st.NATS.URL == "" {
		t.Errorf("nats %+v", st.NATS)
	}

	// The stream's state, as JetStream reports it (read at most 1 s ago),
	// in both scopes; a consumer appears in consumer_count.
	_, err := e.js.CreateConsumer(t.Context(), "EVENTS", jetstream.ConsumerConfig{Durable: "stats-test"})
	if err != nil {
		t.Fatal(err)
	}
	testnats.Eventually(t, wait, func() error {
		want := bridge.StreamState{Messages: n + 10, FirstSeq: 1, LastSeq: n + 10, ConsumerCount: 1}
		for _, q := range []string{"", "?scope=cluster"} {
			got := stats(t, b, q).Stream
			if got.Bytes == 0 {
				return fmt.Errorf("stream%s %+v: no bytes", q, got)
			}
			want.Bytes = got.Bytes
			if got != want {
				return fmt.Errorf("stream%s %+v, want %+v", q, got, want)
			}
		}
		return nil
	})

	for _, q := range []string{"?x=1", "?scope=everything", "?scope=bridge&scope=cluster"} {
		if code, body := get(t, b.URL()+"/v1/events/stats"+q); code != http.StatusBadRequest {
			t.Errorf("stats%s = %d %s, want 400", q, code, body)
		}
	}
}

func TestClusterStats(t *testing.T) {
	e := newEnv(t)
	b1 := e.bridge(t)
	b2 := e.bridge(t)
	const n = 60
	var first string
	for i := range n {
		_, id := e.publish(t, ev{lib: fmt.Sprintf("lib-%d", i%6)})
		if i == 0 {
			first = id
		}
	}
	// A duplicate the stream drops is not republished, so not counted.
	if seq, _ := e.publish(t, ev{lib: "lib-0", id: first}); seq != 1 {
		t.Fatalf("duplicate stored at %d", seq)
	}
	testnats.Eventually(t, wait, func() error {
		s1, s2 := stats(t, b1, ""), stats(t, b2, "")
		if s1.TotalPublished+s2.TotalPublished != n {
			return fmt.Errorf("bridges counted %d + %d", s1.TotalPublished, s2.TotalPublished)
		}
		return nil
	})
	for _, b := range []*bridge.Bridge{b1, b2} {
		own := stats(t, b, "")
		st := stats(t, b, "?scope=cluster")
		if st.TotalPublished != n || st.Bridges != 2 || st.Scope != "cluster" || st.EventsByType[event.TypeDocumentAdded] != n {
			t.Fatalf("cluster stats %+v", st)
		}
		if len(st.BusiestLibraries) != 6 || st.BusiestLibraries[0].Events != n/6 {
			t.Fatalf("busiest %+v", st.BusiestLibraries)
		}
		if st.UptimeSeconds < own.UptimeSeconds {
			t.Fatalf("cluster uptime %v < this bridge's %v", st.UptimeSeconds, own.UptimeSeconds)
		}
	}
}

func TestGarbageOnTheBus(t *testing.T) {
	e := newEnv(t)
	b := e.bridge(t, func(c *bridge.Config) { c.MaxEventSize = 2048 })
	c := dial(t, b, "/v1/libraries/lib-x/ws")
	connected(t, c)
	all := dial(t, b, "/v1/events/ws")
	connected(t, all)

	ts := event.Now().Format(event.TimeLayout)
	valid := func(lib, typ, data string) string {
		return fmt.Sprintf(`{"type":%q,"library_id":%q,"timestamp":%q,"data":%s}`, typ, lib, ts, data)
	}
	subj := "events.library.lib-x.document.added"
	garbage := []struct{ subject, body string }{
		{subj, "not json"},
		{subj, ""},
		{subj, "[1,2]"},
		{subj, `{"type":"document.added"}`}, // fields missing
		{subj, valid("lib-x", "document.added", "[]")},                                    // data not an object
		{subj, valid("lib-y", "document.added", "{}")},                                    // another library
		{subj, valid("lib-x", "document.deleted", "{}")},                                  // another type
		{subj, valid("lib-x", "document.added", `{"x":"`+strings.Repeat("x", 3000)+`"}`)}, // too large
		{"events.library.lib-x.document", "{}"},                                           // not an event subject
	}
	for _, g := range garbage {
		if err := e.nc.Publish(g.subject, []byte(g.body)); err != nil { // core NATS, as `nats pub` does
			t.Fatal(err)
		}
	}
	seq, id := e.publish(t, ev{lib: "lib-x"})
	for _, conn := range []string{"library", "everything"} {
		ws := c
		if conn == "everything" {
			ws = all
		}
		if f := read(t, ws); f.ID != id || f.Seq != seq {
			t.Fatalf("%s socket: first frame %s, want the valid event %d", conn, f.raw, seq)
		}
	}
	if seq != uint64(len(garbage))+1 {
		t.Fatalf("valid event at %d: the garbage was not stored", seq)
	}
	testnats.Eventually(t, wait, func() error {
		if st := b.Stats(); st.InvalidEvents != uint64(len(garbage)) || st.TotalPublished != 1 {
			return fmt.Errorf("invalid %d, published %d", st.InvalidEvents, st.TotalPublished)
		}
		return nil
	})
	seq, _ = e.publish(t, ev{lib: "lib-x"})
	if f := read(t, c); f.Seq != seq {
		t.Fatalf("got %s, want seq %d", f.raw, seq)
	}
}
