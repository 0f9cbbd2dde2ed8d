package bridge

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/event"
)

func TestHistBuckets(t *testing.T) {
	prevLo := uint64(0)
	for i := range histBuckets {
		lo, w := histBounds(i)
		if i > 0 && lo <= prevLo {
			t.Fatalf("bucket %d starts at %d, not after %d", i, lo, prevLo)
		}
		prevLo = lo
		for _, v := range []uint64{lo, lo + w - 1} {
			if got := histIndex(v); got != i {
				t.Fatalf("histIndex(%d) = %d, want %d", v, got, i)
			}
		}
		if i > histSub && w*histSub > lo {
			t.Fatalf("bucket %d: width %d over 1/%d of %d", i, w, histSub, lo)
		}
	}
	if histIndex(math.MaxUint64) != histBuckets-1 {
		t.Fatal("huge values are not in the last bucket")
	}
}

func TestHistQuantilesAndMerge(t *testing.T) {
	var a, b hist
	for v := uint64(1); v <= 1000; v++ { // 1..1000 ms in µs, split over two hists
		if v%2 == 0 {
			a.record(v * 1000)
		} else {
			b.record(v * 1000)
		}
	}
	s := a.snapshot()
	s.merge(b.snapshot())
	l := s.latency()
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"p50", l.P50, 500}, {"p90", l.P90, 900}, {"p99", l.P99, 990}, {"max", l.Max, 1000}, {"avg", l.Avg, 500.5}} {
		if math.Abs(c.got-c.want) > c.want*0.07 {
			t.Errorf("%s = %v, want about %v", c.name, c.got, c.want)
		}
	}
	if l.Count != 1000 || l.Max != 1000 {
		t.Errorf("latency %+v", l)
	}
	// The snapshot survives JSON (what ?scope=cluster sends).
	raw, _ := json.Marshal(s)
	var back histSnapshot
	if err := json.Unmarshal(raw, &back); err != nil || back.latency() != l {
		t.Fatalf("round trip: %+v, %v", back.latency(), err)
	}
	if got := s.cumulativeBelow(1 << 19); got != 524 { // values < 524.288 ms
		t.Errorf("cumulativeBelow(2^19 µs) = %d, want 524", got)
	}
	var empty histSnapshot
	if empty.latency() != (Latency{}) {
		t.Errorf("empty: %+v", empty.latency())
	}
}

func TestEventFrame(t *testing.T) {
	ev := event.Event{
		ID: "id-1", Type: "document.added", LibraryID: "lib-1",
		Timestamp: time.Date(2025, 10, 27, 6, 1, 0, 123456789, time.FixedZone("CET", 3600)),
		Source:    "app \"1\"\n", Data: json.RawMessage(`{"a": [1, 2]}`),
	}
	got := string(appendEventFrame(nil, &ev, 42))
	want := `{"type":"event","event_type":"document.added","id":"id-1","seq":42,"library_id":"lib-1",` +
		`"timestamp":"2025-10-27T05:01:00.123456Z","source":"app \"1\"\n","data":{"a": [1, 2]}}`
	if got != want {
		t.Fatalf("frame\n got %s\nwant %s", got, want)
	}
	if !json.Valid([]byte(got)) {
		t.Fatal("not JSON")
	}
	if got := string(connectedFrame("filter", "events.library.*.>", 7)); got != `{"type":"connected","filter":"events.library.*.>","stream_seq":7}` {
		t.Fatal(got)
	}
}

func TestParseLive(t *testing.T) {
	wire := `{"type":"document.added","library_id":"lib-1","timestamp":"2025-10-27T06:01:00Z","data":{}}`
	msg := func(subject, seq string) *nats.Msg {
		return &nats.Msg{Subject: subject, Data: []byte(wire), Header: nats.Header{"Nats-Sequence": {seq}, "Nats-Msg-Id": {"m-1"}}}
	}
	ev, seq, err := parseLive(msg("live.events.library.lib-1.document.added", "9"), 0)
	if err != nil || seq != 9 || ev.ID != "m-1" {
		t.Fatalf("parseLive = %+v, %d, %v", ev, seq, err)
	}
	for _, m := range []*nats.Msg{
		msg("events.library.lib-1.document.added", "9"),      // not live
		msg("live.events.library.lib-2.document.added", "9"), // another library
		msg("live.events.library.lib-1.document.added", ""),  // no sequence
		msg("live.events.library.lib-1.document.added", "0"),
	} {
		if _, _, err := parseLive(m, 0); err == nil {
			t.Errorf("parseLive(%s, seq %v) accepted", m.Subject, m.Header["Nats-Sequence"])
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	bad := Config{HTTPListen: "nohost", Prefix: "a b", ClientQueue: -1, WriteTimeout: -time.Second}
	err := bad.Validate()
	for _, want := range []string{"http_listen", "prefix", "client_queue", "write_timeout"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
	if _, err := New(bad, nil, nil); err == nil {
		t.Error("New accepted a bad config")
	}
	if err := (Config{ClientQueueBytes: -1}).Validate(); err == nil || !strings.Contains(err.Error(), "client_queue_bytes") {
		t.Errorf("no bound at all: %v", err)
	}
	if err := (Config{ClientQueueBytes: -1, ClientQueue: 100}).Validate(); err != nil {
		t.Errorf("frame bound only: %v", err)
	}
	if _, err := New(Config{}, nil, nil); err == nil {
		t.Error("New accepted a nil connection")
	}
	if d := (Config{}).WithDefaults(); d.ClientQueue != 0 || d.ClientQueueBytes != 4<<20 || d.HTTPListen != "127.0.0.1:8000" || d.Prefix != "events" ||
		d.StatsQueue != "arrwcdc-bridge-stats" || d.ClusterStatsTimeout != 500*time.Millisecond {
		t.Errorf("defaults %+v", d)
	}
}

func TestFrameRingBytes(t *testing.T) {
	var q frameRing
	fr := func(seq uint64, n int) *frame { return &frame{seq: seq, buf: make([]byte, n)} }
	if !q.fits(fr(1, 1000), 0, 10) {
		t.Fatal("an empty ring refused a frame larger than the byte bound")
	}
	for i := range 100 {
		f := fr(uint64(i+1), 10)
		if !q.fits(f, 0, 1000) {
			t.Fatalf("frame %d does not fit in %d bytes", i+1, q.bytes)
		}
		q.push(f, 0)
	}
	if q.fits(fr(101, 1), 0, 1000) || !q.fits(fr(101, 1), 0, 1001) || q.fits(fr(101, 1), 100, 0) {
		t.Fatalf("fits wrong at %d frames, %d bytes", q.len(), q.bytes)
	}
	if len(q.buf) != 128 {
		t.Fatalf("storage %d, want 128", len(q.buf))
	}
	for i := range 100 {
		if f := q.pop(); f.seq != uint64(i+1) {
			t.Fatalf("pop %d: seq %d", i, f.seq)
		}
	}
	if q.bytes != 0 || len(q.buf) != 128 {
		t.Fatalf("after a burst: %d bytes, storage %d (kept for the next burst)", q.bytes, len(q.buf))
	}
	q.push(fr(1, 10), 0)
	q.pop()
	if q.buf != nil {
		t.Fatalf("storage %d kept after a small run", len(q.buf))
	}
	q.push(fr(1, 10), 0)
	q.pop()
	q.trim()
	if q.buf != nil {
		t.Fatal("trim kept storage")
	}
}

func TestOfferBytes(t *testing.T) {
	b := &Bridge{cfg: Config{ClientQueueBytes: 100}.WithDefaults(), log: zap.NewNop(), counters: newCounters()}
	fr := func(seq uint64) *frame { return &frame{seq: seq, buf: make([]byte, 30)} }
	cl := newClient(b, socketOptions{dropOldest: true}, "", "websocket")
	for seq := uint64(1); seq <= 5; seq++ {
		cl.offer(fr(seq), true)
	}
	out, from, to, _ := cl.take(nil, 10, 0)
	if len(out) != 3 || out[0].seq != 3 || from != 1 || to != 2 {
		t.Fatalf("drop_oldest: %d frames from %d, gap %d-%d", len(out), out[0].seq, from, to)
	}
	cl = newClient(b, socketOptions{}, "", "websocket")
	for seq := uint64(1); seq <= 4; seq++ {
		cl.offer(fr(seq), true)
	}
	if !cl.kicked.Load() {
		t.Fatal("a client over its byte bound was not kicked")
	}
	if n, _ := cl.state(); n != 3 {
		t.Fatalf("%d frames queued, want 3", n)
	}
}

// TestStatsKeepNoPayload: the statistics keep the type and library id of
// an event read in place from a message's payload (parseLive decodes
// shared) as copies, not as strings into the payload, which they would
// keep alive (up to MaxEventSize a library) and see change were it reused.
func TestStatsKeepNoPayload(t *testing.T) {
	wire := []byte(`{"type":"custom.thing","library_id":"lib-1","timestamp":"2025-10-27T06:01:00Z","data":{}}`)
	m := &nats.Msg{Subject: "live.events.library.lib-1.custom.thing", Data: wire, Header: nats.Header{"Nats-Sequence": {"3"}}}
	ev, _, err := parseLive(m, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := newCounters()
	c.countPublished(c.typ(ev.Type), ev.LibraryID)
	for i := range wire { // the payload's memory, reused
		wire[i] = 'x'
	}
	if _, ok := c.types["custom.thing"]; !ok || c.types["custom.thing"].name != "custom.thing" {
		t.Errorf("types = %v: the type's name changed with the payload", c.types)
	}
	if c.libs["lib-1"] != 1 {
		t.Errorf("libs = %v: the library id changed with the payload", c.libs)
	}
}

// TestFrameKeepsNoPayload: a frame keeps the type and source of an event
// read in place from a message's payload (frameOf decodes shared) in its
// own memory, not as strings into the payload, which every queued frame
// would keep alive beside its own bytes (the queues count only those).
func TestFrameKeepsNoPayload(t *testing.T) {
	wire := []byte(`{"type":"custom.thing","library_id":"lib-1","timestamp":"2025-10-27T06:01:00Z","source":"app-1","data":{}}`)
	m := &nats.Msg{Subject: "live.events.library.lib-1.custom.thing", Data: wire, Header: nats.Header{"Nats-Sequence": {"3"}}}
	b := &Bridge{counters: newCounters()}
	f := b.frameOf(m, 3)
	if f == nil {
		t.Fatal("frameOf refused a valid event")
	}
	frame := string(f.buf)
	for i := range wire { // the payload's memory, reused
		wire[i] = 'x'
	}
	if f.etype != "custom.thing" || f.source != "app-1" {
		t.Errorf("type %q, source %q: they changed with the payload", f.etype, f.source)
	}
	if string(f.buf) != frame {
		t.Errorf("frame %s, was %s", f.buf, frame)
	}
}
