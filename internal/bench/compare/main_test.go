package main

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/arrwdb/arrwcdc/broker"
	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/bench"
	"github.com/arrwdb/arrwcdc/internal/testnats"
	"github.com/arrwdb/arrwcdc/publisher"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// The lines nats bench v0.5.0 prints.
func TestStatsLine(t *testing.T) {
	out := "19:47:27 Starting JetStream asynchronous publisher benchmark [batch=500]\n\n" +
		"NATS JetStream asynchronous publisher stats: 24,887 msgs/sec ~ 7.1 MiB/sec ~ min: 8,010.98us ~ P50: 16,594.16us\n"
	m := statsRe.FindAllStringSubmatch(out, -1)
	if len(m) != 1 || m[0][1] != "24,887" {
		t.Fatalf("match %q", m)
	}
}

func TestPrintTable(t *testing.T) {
	var buf bytes.Buffer
	rows := []row{
		{name: "PublishAsync", ours: &side{values: []float64{90, 100, 110}}, peer: &side{values: []float64{200}}, unit: "ev/s", target: 0.8, complete: true},
		{name: "latency", ours: &side{values: []float64{0.5}}, peer: &side{values: []float64{1}}, unit: "ms", inverse: true, complete: false},
		{name: "missing", ours: &side{}, peer: &side{values: []float64{1}}, unit: "ev/s", target: 1, complete: true},
	}
	printTable(&buf, options{size: 300, runs: 3}, rows, "1 2 3", "4 5 6", 0)
	out := buf.String()
	for _, want := range []string{"nproc", "before 1 2 3, after 4 5 6", "0.50×", "≥0.8 MISS", "2.00×", "latency (INCOMPLETE)", "0.500 ms", "90 100 110 / 200", "n/a"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// TestPrintTableIdle: the idle-memory rows have an absolute bound on the
// bridge's figure (lower is better), a ratio peer / ours, and their note
// printed once.
func TestPrintTableIdle(t *testing.T) {
	var buf bytes.Buffer
	rows := []row{
		{name: "idle ok", ours: &side{values: []float64{15_000}}, peer: &side{values: []float64{45_000}}, unit: "B", max: idleTarget, inverse: true, complete: true, note: idleNote},
		{name: "idle miss", ours: &side{values: []float64{17_354}}, peer: &side{values: []float64{34_708}}, unit: "B", max: idleTarget, inverse: true, complete: true, note: idleNote},
		{name: "idle none", ours: &side{}, peer: &side{values: []float64{1}}, unit: "B", max: idleTarget, inverse: true, complete: true, note: idleNote},
	}
	printTable(&buf, options{size: 300, runs: 1}, rows, "1 2 3", "4 5 6", 0)
	out := buf.String()
	for _, want := range []string{"15.0 kB", "45.0 kB", "3.00×", "≤16.0 kB ok", "17.4 kB", "2.00×", "≤16.0 kB MISS", "17354 / 34708"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if got := strings.Count(out, "Idle memory rows:"); got != 1 {
		t.Errorf("the note printed %d times, want once:\n%s", got, out)
	}
	for line := range strings.Lines(out) {
		if strings.Contains(line, "idle none") && !strings.Contains(line, "MISS") {
			t.Errorf("a row without a figure must not pass its bound: %s", line)
		}
	}
	if strings.Contains(out, "Latency rows") {
		t.Errorf("the latency note without latency rows:\n%s", out)
	}
}

func TestIdleCell(t *testing.T) {
	for _, tc := range []struct {
		gc, ret  []float64
		complete bool
		want     string
	}{
		{[]float64{17_000, 18_000, 16_000}, []float64{11_000}, true, "17000 / 11000"},
		{[]float64{63_500}, nil, true, "63500 / n/a"},
		{nil, nil, false, "n/a / n/a INCOMPLETE"},
	} {
		if got := idleCell(&side{values: tc.gc}, &side{values: tc.ret}, tc.complete); got != tc.want {
			t.Errorf("idleCell(%v, %v, %v) = %q, want %q", tc.gc, tc.ret, tc.complete, got, tc.want)
		}
	}
}

func TestParseOnly(t *testing.T) {
	m, err := parseOnly("outbox,replay")
	if err != nil {
		t.Fatal(err)
	}
	o := options{only: m}
	if !o.selected("outbox") || !o.selected("replay") || o.selected("async") {
		t.Errorf("selected: outbox %v replay %v async %v, want true true false", o.selected("outbox"), o.selected("replay"), o.selected("async"))
	}
	if all := (options{}); !all.selected("ws") {
		t.Error("no -only must select every pair")
	}
	if _, err := parseOnly("outbox,nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("parseOnly(nope) = %v, want an error naming it", err)
	}
}

// TestHeaderArgs checks that the peer's -H flags name exactly the headers
// a real publisher puts on an event, so the "same headers" rows compare
// like with like.
func TestHeaderArgs(t *testing.T) {
	b := testnats.Broker(t)
	nc := testnats.Conn(t, b.ClientURL())
	sub, err := nc.SubscribeSync("events.>")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := publisher.New(nc, publisher.WithCoreNATS(), publisher.WithSource("arrwcdc-bench"))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(context.Background())
	if _, err := pub.Publish(context.Background(), event.Event{Type: event.TypeDocumentAdded, LibraryID: "lib-1"}); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for k := range m.Header {
		got = append(got, strings.ToLower(k))
	}
	var want []string
	args := headerArgs(true)
	for i := 1; i < len(args); i += 2 {
		k, _, _ := strings.Cut(args[i], ":")
		want = append(want, strings.ToLower(k))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("publisher sends headers %v, the peer's -H flags name %v", got, want)
	}
}

// TestStreamLikeEvents: the peer's stream differs from EVENTS in its name
// and subjects only, and its subject prefix captures the subject the peer
// publishes to.
func TestStreamLikeEvents(t *testing.T) {
	b := testnats.Broker(t)
	nc := testnats.Conn(t, b.ClientURL())
	js := testnats.JetStream(t, nc)
	const name = "benchlike"
	for range 2 { // create, then an update that changes nothing
		if err := ensureStreamLikeEvents(t.Context(), b.ClientURL(), name); err != nil {
			t.Fatal(err)
		}
	}
	s, err := js.Stream(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	events, err := js.Stream(t.Context(), broker.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	got, want := s.CachedInfo().Config, events.CachedInfo().Config
	if got.RePublish == nil || got.RePublish.Destination != "live."+name+".>" {
		t.Errorf("republish %+v", got.RePublish)
	}
	got.Name, got.Subjects, got.RePublish, got.Description = want.Name, want.Subjects, want.RePublish, want.Description
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config\n%+v\nwant that of EVENTS\n%+v", got, want)
	}
	ack, err := js.Publish(t.Context(), likeEventsSubject(name), []byte("{}"))
	if err != nil || ack.Stream != name {
		t.Fatalf("publish to the peer's subject: %v, %+v", err, ack)
	}
}

func TestAddMeasured(t *testing.T) {
	if processCPU() == 0 {
		t.Skip("no process CPU time on this system")
	}
	s := &side{}
	s.addMeasured(1000, func() (float64, *bench.Result, error) {
		// Burn CPU in this process, as the embedded broker does during a load.
		t0 := processCPU()
		x := 0
		for processCPU()-t0 < 20*time.Millisecond {
			for i := range 100_000 {
				x += i
			}
		}
		return float64(x%7 + 1), nil, nil
	})
	if len(s.values) != 1 || len(s.cpu) != 1 {
		t.Fatalf("values %v, cpu %v: want one of each", s.values, s.cpu)
	}
	if s.cpu[0] < 20 { // ≥ 20 ms over 1000 events
		t.Errorf("cpu per event %.1f µs, want ≥ 20", s.cpu[0])
	}
	// A failed load (no figure) records no CPU.
	s.addMeasured(1000, func() (float64, *bench.Result, error) { return 0, nil, errors.New("boom") })
	if len(s.cpu) != 1 || len(s.errs) != 1 {
		t.Errorf("after a failed load: cpu %v, errs %v", s.cpu, s.errs)
	}
}

func TestPrintBrokerCPU(t *testing.T) {
	var none bytes.Buffer
	printBrokerCPU(&none, []cpuRow{{"a", &side{}, &side{}}})
	if none.Len() != 0 {
		t.Errorf("nothing measured, printed %q", none.String())
	}
	var buf bytes.Buffer
	printBrokerCPU(&buf, []cpuRow{
		{"plain", &side{cpu: []float64{5, 4, 6}}, &side{}},
		{"ours", &side{cpu: []float64{11.25}}, &side{cpu: []float64{100, 104}}},
	})
	out := buf.String()
	for _, want := range []string{"| plain", "5.0 |        - |", "| ours", "11.2 |    102.0 |"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}
