package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/testnats"
)

func TestMain(m *testing.M) {
	if ConnsClientRequested() { // a client process of TestConns
		if err := RunConnsClient(context.Background(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// TestScenarios runs each scenario once with tiny numbers against its own
// embedded server and checks the counts: every event delivered to every
// receiver. No timing is asserted.
func TestScenarios(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		// receivers of each event
		receivers int64
	}{
		{"publish sync", Config{Scenario: "publish", Mode: "sync"}, 1},
		{"publish async", Config{Scenario: "publish", Mode: "async", Libraries: 3}, 1},
		{"publish core", Config{Scenario: "publish", Mode: "core"}, 1},
		{"e2e async", Config{Scenario: "e2e"}, 1},
		{"e2e core, libraries", Config{Scenario: "e2e", Mode: "core", Libraries: 2}, 1},
		{"ws", Config{Scenario: "ws", Clients: 2}, 2},
		{"ws libraries", Config{Scenario: "ws", Clients: 4, Libraries: 2}, 2},
		{"ws-peer", Config{Scenario: "ws-peer", Clients: 2}, 2},
		{"replay", Config{Scenario: "replay"}, 1},
		{"outbox", Config{Scenario: "outbox"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Events = 200
			cfg.Drain = 30 * time.Second // -race on a loaded machine
			res, err := Run(t.Context(), cfg, zaptest.NewLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			if res.Unsupported != "" {
				t.Skipf("unsupported: %s", res.Unsupported)
			}
			if res.Events != 200 || res.PublishErrors != 0 {
				t.Errorf("events %d, publish errors %d; want 200, 0", res.Events, res.PublishErrors)
			}
			if want := 200 * tt.receivers; res.Expected != want || res.Delivered != want {
				t.Errorf("delivered %d of %d, want %d of %d (notes %q)", res.Delivered, res.Expected, want, want, res.Notes)
			}
			if res.Disconnects != 0 || res.OutOfOrder != 0 {
				t.Errorf("disconnects %d, out of order %d", res.Disconnects, res.OutOfOrder)
			}
			if err := res.Check(); err != nil {
				t.Error(err)
			}
			if res.EventSize != DefaultSize {
				t.Errorf("event size %d, want %d", res.EventSize, DefaultSize)
			}
			if hasLatency := res.Latency != nil; hasLatency != (tt.cfg.Scenario != "replay" && tt.cfg.Scenario != "outbox") {
				t.Errorf("latency %+v", res.Latency)
			} else if hasLatency && res.Latency.Count != uint64(200*tt.receivers) {
				t.Errorf("latency count %d", res.Latency.Count)
			}
			if res.ElapsedSeconds <= 0 || res.Mallocs == 0 || res.RSSBytes == 0 {
				t.Errorf("elapsed %v, mallocs %d, rss %d", res.ElapsedSeconds, res.Mallocs, res.RSSBytes)
			}
		})
	}
}

// TestExternalServer runs against a server given by URL, as bench-compare
// does: the embedded broker of one run serves another.
func TestExternalServer(t *testing.T) {
	r := &runner{cfg: Config{}.withDefaults(), log: zaptest.NewLogger(t), runID: "x"}
	r.progress = r.cfg.Progress
	t.Cleanup(r.close)
	if err := r.connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, sc := range []string{"publish", "ws"} {
		res, err := Run(t.Context(), Config{Scenario: sc, Events: 100, Clients: 1, NATSURL: []string{r.broker.ClientURL()}}, zaptest.NewLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		if res.Delivered != 100 || res.Server != r.broker.ClientURL() {
			t.Errorf("%s: delivered %d, server %q", sc, res.Delivered, res.Server)
		}
	}
	_, err := Run(t.Context(), Config{NATSURL: []string{"nats://127.0.0.1:1"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("unreachable server: %v", err)
	}
}

func TestDurationStopsPublishing(t *testing.T) {
	res, err := Run(t.Context(), Config{Mode: "sync", Events: 1_000_000, Duration: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Events == 0 || res.Events >= 1_000_000 || res.Delivered != res.Events {
		t.Errorf("events %d, delivered %d", res.Events, res.Delivered)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Scenario: "nope"}, `scenario "nope"`},
		{Config{Mode: "nope"}, `mode "nope"`},
		{Config{Scenario: "ws", Mode: "core"}, "mode core"},
		{Config{Events: -1}, "out of range"},
		{Config{Size: 2 << 20}, "out of range"},
		{Config{Scenario: "ws-peer", NATSURL: []string{"nats://x"}}, "no NATS URL"},
		{Config{Prefix: "a..b"}, "prefix"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
		if _, err := Run(context.Background(), tc.cfg, nil); err == nil {
			t.Errorf("%+v: Run without error", tc.cfg)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero Config: %v", err)
	}
	if c := (Config{Mode: "sync"}).withDefaults(); c.Events != DefaultEvents["publish/sync"] || c.Clients != DefaultClients || c.Libraries != 1 {
		t.Errorf("defaults %+v", c)
	}
}

func TestEventTemplate(t *testing.T) {
	for _, size := range []int{300, 1000, 64 << 10} {
		ev, n, err := eventTemplate("lib-1", size)
		if err != nil {
			t.Fatal(err)
		}
		ev.ID, ev.Timestamp = event.NewID(), event.Now()
		b, err := event.Encode(&ev, event.DefaultMaxSize)
		if err != nil {
			t.Fatal(err)
		}
		if n != size || len(b) != size {
			t.Errorf("size %d: template says %d, encodes to %d", size, n, len(b))
		}
	}
	_, n, err := eventTemplate("lib-1", 10)
	if err != nil || n < 150 || n > 300 {
		t.Errorf("smallest event: %d bytes, %v", n, err)
	}
}

func TestFrameFields(t *testing.T) {
	at := time.Date(2025, 10, 27, 6, 1, 0, 123456000, time.UTC)
	frame := []byte(`{"type":"event","event_type":"document.added","id":"x","seq":42,"library_id":"l","timestamp":"2025-10-27T06:01:00.123456Z","source":"s","data":{"timestamp":"1999"}}`)
	if us, ok := frameTimestamp(frame); !ok || us != at.UnixMicro() {
		t.Errorf("timestamp %d %v, want %d", us, ok, at.UnixMicro())
	}
	if seq := frameSeq(frame); seq != 42 {
		t.Errorf("seq %d", seq)
	}
	// Another layout falls back to event.ParseTime; garbage is not a time.
	if us, ok := frameTimestamp([]byte(`{"timestamp":"2025-10-27T06:01:00.123456"}`)); !ok || us != at.UnixMicro() {
		t.Errorf("zone-less timestamp %d %v", us, ok)
	}
	for _, bad := range []string{`{}`, `{"timestamp":"soon"}`, `{"timestamp":"2025-10-27T06:01:00.12345xZ"}`, `{"timestamp":"2025`} {
		if _, ok := frameTimestamp([]byte(bad)); ok {
			t.Errorf("%s: parsed", bad)
		}
	}
	if seq := frameSeq([]byte(`{"type":"connected"}`)); seq != 0 {
		t.Errorf("seq of a frame without one: %d", seq)
	}
}

func sampleResult() *Result {
	r := &Result{
		Scenario: "ws", Mode: "async", Server: "embedded broker nats://127.0.0.1:4222", EventSize: 300, Clients: 2, Libraries: 1,
		Events: 1000, Expected: 2000, Delivered: 1990, Disconnects: 1, Mallocs: 50_000, AllocBytes: 3 << 20,
		RSSBytes: 40 << 20, PeakRSSBytes: 50 << 20, GCs: 3, CPUs: 2, GoVersion: "go1.26", LoadBefore: "1.00 2.00 3.00", LoadAfter: "1.50 2.00 3.00",
		LatencyOf: "frame read − event timestamp", elapsed: 2 * time.Second, bytes: 1990 * 400,
	}
	for i := range 1000 {
		r.hist.Record(time.Duration(i+1) * time.Microsecond)
	}
	r.finish()
	return r
}

func TestResultFigures(t *testing.T) {
	r := sampleResult()
	if r.EventsPerSec != 500 || r.DeliveriesPerSec != 995 || r.AllocsPerEvent != 50 || r.BytesPerEvent != 3146 {
		t.Errorf("rates: %v %v %v %v", r.EventsPerSec, r.DeliveriesPerSec, r.AllocsPerEvent, r.BytesPerEvent)
	}
	if r.MiBPerSec != 0.38 {
		t.Errorf("MiB/s %v", r.MiBPerSec)
	}
	l := r.Latency
	if l == nil || l.Count != 1000 || l.Max != 1 || l.P50 < 0.49 || l.P50 > 0.51 || l.P99 < 0.97 || l.P99 > 1 {
		t.Errorf("latency %+v", l)
	}
	if r.Complete() || !errors.Is(r.Check(), ErrIncomplete) {
		t.Errorf("incomplete result passes: %v", r.Check())
	}
	r.Delivered = r.Expected
	if !r.Complete() || r.Check() != nil {
		t.Errorf("complete result fails: %v", r.Check())
	}
	r.Unsupported = "no"
	if r.Check() != nil {
		t.Error("unsupported result fails")
	}
}

func TestWriteJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleResult().WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Scenario != "ws" || back.Delivered != 1990 || back.Latency == nil || back.Latency.Count != 1000 || back.EventsPerSec != 500 {
		t.Errorf("round trip: %+v", back)
	}
	var m map[string]any
	_ = json.Unmarshal(buf.Bytes(), &m)
	for _, k := range []string{"events_per_s", "deliveries_per_s", "mib_per_s", "latency", "rss_bytes", "peak_rss_bytes", "mallocs", "allocs_per_event", "load_before", "elapsed_s"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
}

func TestWriteTable(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleResult().WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"arrwcdc bench ws (async): 1,000 events of 300 B, 2 clients, 1 library — embedded broker",
		"delivered    1,990 / 2,000 (99.5%)  INCOMPLETE, 1 clients disconnected",
		"events/s     500\n", "frames/s     995\n", "MiB/s        0.38\n",
		"latency      p50 0.5", "max 1 ms  (frame read − event timestamp)",
		"memory       RSS 40.0 MiB, peak 50.0 MiB",
		"allocations  50,000 (50/event), 3.0 MiB (3146 B/event), 3 GCs",
		"machine      2 CPUs, go1.26, load 1.00 2.00 3.00 -> 1.50 2.00 3.00",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	r := sampleResult()
	r.Unsupported = "the bridge answered since_seq with HTTP 400"
	buf.Reset()
	_ = r.WriteTable(&buf)
	if !strings.Contains(buf.String(), "unsupported: the bridge answered") || strings.Contains(buf.String(), "events/s") {
		t.Errorf("unsupported table:\n%s", buf.String())
	}
}

func TestFormatting(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := count(n); got != want {
			t.Errorf("count(%d) = %q", n, got)
		}
	}
	if got := trimFloat(1.23456); got != "1.235" {
		t.Errorf("trimFloat = %q", got)
	}
	if got := renderBar("publishing", 50, 200, 1500*time.Millisecond, 8); got != "publishing           [##......] 50/200  25%   1.5s" {
		t.Errorf("bar %q", got)
	}
	if got := renderBar("x", 5, 0, 0, 4); !strings.Contains(got, "[....]") {
		t.Errorf("bar without total %q", got)
	}
}

func TestParseStatus(t *testing.T) {
	rss, hwm := parseStatus([]byte("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nThreads:\t3\n"))
	if rss != 1024<<10 || hwm != 2048<<10 {
		t.Errorf("rss %d hwm %d", rss, hwm)
	}
}

func TestProgress(t *testing.T) {
	var buf safeBuffer
	p := &Progress{}
	p.start("publishing", 10)
	p.done.Store(5)
	stop := ShowProgress(&buf, p, time.Millisecond)
	testnats.Eventually(t, 10*time.Second, func() error {
		if !strings.Contains(buf.String(), "5/10") {
			return fmt.Errorf("no 5/10 in the bar: %q", buf.String())
		}
		return nil
	})
	stop()
	stop()
	if !strings.HasSuffix(buf.String(), "\r\033[K") {
		t.Errorf("bar not erased: %q", buf.String())
	}
	if IsTerminal(&buf) {
		t.Error("a buffer is a terminal")
	}
}

// TestCentrifugoPeer runs ws-centrifugo when a centrifugo binary is at
// hand (make bench-peers builds one into .tools/bin); skipped otherwise.
func TestCentrifugoPeer(t *testing.T) {
	res, err := Run(t.Context(), Config{Scenario: "ws-centrifugo", Centrifugo: centrifugoBinary(t), Events: 200, Clients: 2, Drain: 30 * time.Second}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.Delivered != 400 || res.Expected != 400 || res.Latency == nil || res.Latency.Count != 400 {
		t.Errorf("delivered %d of %d, latency %+v", res.Delivered, res.Expected, res.Latency)
	}
}

// TestReplayRefused checks what replay reports when the bridge refuses
// since_seq: the dial error carries the status and the body.
func TestReplayRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"since_seq: not supported yet"}`))
	}))
	defer srv.Close()
	cs := &clientSet{}
	defer cs.close()
	err := cs.dialBridge(t.Context(), "ws"+strings.TrimPrefix(srv.URL, "http")+"/v1/libraries/x/ws?since_seq=0", cs.add(0))
	de, ok := errors.AsType[*dialErr](err)
	if !ok || de.status != http.StatusBadRequest || !strings.Contains(de.body, "not supported yet") {
		t.Fatalf("error %v", err)
	}
}
