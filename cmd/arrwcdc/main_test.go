package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/goleak"

	"github.com/arrwdb/arrwcdc/broker"
	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/testnats"
	"github.com/arrwdb/arrwcdc/publisher"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// polls it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// running is a command started with run() in the background.
type running struct {
	stdout, stderr *syncBuffer
	cancel         context.CancelFunc
	done           chan error
}

func start(t *testing.T, stdin string, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- run(ctx, args, strings.NewReader(stdin), r.stdout, r.stderr, func(string) string { return "" })
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the command (SIGINT's twin) and waits for it to return.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("command did not stop; stderr:\n%s", r.stderr)
		return nil
	}
}

// waitOutput polls until re matches the command's stdout and returns the
// first submatch (or the match).
func (r *running) waitOutput(t *testing.T, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	var m []string
	testnats.Eventually(t, 20*time.Second, func() error {
		if m = rx.FindStringSubmatch(r.stdout.String()); m == nil {
			return fmt.Errorf("stdout %q has no %s (stderr %q)", r.stdout, re, r.stderr)
		}
		return nil
	})
	return m[len(m)-1]
}

func runOnce(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errOut syncBuffer
	err := run(t.Context(), args, strings.NewReader(stdin), &out, &errOut, func(string) string { return "" })
	if err != nil {
		t.Logf("stderr: %s", errOut.String())
	}
	return out.String(), err
}

// natsCmd runs the nats CLI against url with a private config dir (no
// user contexts).
func natsCmd(t *testing.T, ctx context.Context, url string, args ...string) *exec.Cmd {
	return testnats.CLI(t, ctx, url, args...)
}

// waitSub waits until some client of the broker subscribes to subject.
func waitSub(t *testing.T, b *broker.Broker, subject string) {
	t.Helper()
	testnats.Eventually(t, 20*time.Second, func() error {
		cz, err := b.Server().Connz(&server.ConnzOptions{Subscriptions: true})
		if err != nil {
			return err
		}
		for _, c := range cz.Conns {
			if slices.Contains(c.Subs, subject) {
				return nil
			}
		}
		return fmt.Errorf("no client subscribes to %s", subject)
	})
}

func fixedEvent() event.Event {
	return event.Event{
		ID:        "0193f1d2-8c4e-7b3a-9d2f-2c6e5a7b8c9d",
		Type:      event.TypeDocumentAdded,
		LibraryID: "550e8400-e29b-41d4-a716-446655440000",
		Timestamp: time.Date(2025, 10, 27, 6, 1, 0, 0, time.UTC),
		Source:    "app-1",
		Data:      json.RawMessage(`{"document_id":"a1b2c3d4-e5f6-7890-abcd-ef1234567890","title":"My Document","num_chunks":3}`),
	}
}

func TestNatsSubSeesPublisherJSON(t *testing.T) {
	b := testnats.Broker(t)
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := natsCmd(t, ctx, b.ClientURL(), "sub", "events.library.*.document.added", "--count", "1", "--raw")
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitSub(t, b, "events.library.*.document.added")

	nc := testnats.Conn(t, b.ClientURL())
	pub, err := publisher.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ev := fixedEvent()
	if _, err := pub.Publish(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("nats sub: %v: %s", err, out.String())
	}
	want, _ := event.Encode(&ev, 0)
	if got := strings.TrimSpace(out.String()); got != string(want) {
		t.Fatalf("nats sub printed\n%s\nwant\n%s", got, want)
	}
}

func TestTailPrintsNatsPub(t *testing.T) {
	b := testnats.Broker(t)
	tail := start(t, "", "tail", "--nats-url", b.ClientURL(), "--json")
	waitSub(t, b, "events.library.*.>")

	body := `{"type":"workflow.completed","library_id":"lib-1","timestamp":"2025-10-27T06:01:00.000000Z","data":{"status":"ok"}}`
	out, err := natsCmd(t, t.Context(), b.ClientURL(), "pub", "-H", "Nats-Msg-Id:hand-1",
		"events.library.lib-1.workflow.completed", body).CombinedOutput()
	if err != nil {
		t.Fatalf("nats pub: %v: %s", err, out)
	}
	// No id in the body: tail shows the Nats-Msg-Id header as the id.
	line := tail.waitOutput(t, `(?m)^(\{.*\})$`)
	want := `{"id":"hand-1","type":"workflow.completed","library_id":"lib-1","timestamp":"2025-10-27T06:01:00.000000Z","data":{"status":"ok"}}`
	if line != want {
		t.Fatalf("tail printed\n%s\nwant\n%s", line, want)
	}
	if err := tail.stop(t); err != nil {
		t.Fatalf("tail: %v", err)
	}
}

func TestTailPrettyAndFilters(t *testing.T) {
	b := testnats.Broker(t)
	tail := start(t, "", "tail", "--nats-url", b.ClientURL(), "--library", "lib-2", "--type", "document.*")
	waitSub(t, b, "events.library.lib-2.document.*")

	nc := testnats.Conn(t, b.ClientURL())
	pub, err := publisher.New(nc, publisher.WithSource("app-9"))
	if err != nil {
		t.Fatal(err)
	}
	// Only the last one passes the filters.
	for _, ev := range []struct{ lib, typ string }{
		{"lib-1", event.TypeDocumentAdded}, {"lib-2", event.TypeLibraryCreated}, {"lib-2", event.TypeDocumentDeleted},
	} {
		e := event.Event{Type: ev.typ, LibraryID: ev.lib, Data: json.RawMessage(`{"document_id":"d-7"}`)}
		if _, err := pub.Publish(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	line := tail.waitOutput(t, `(?m)^(.*document\.deleted.*)$`)
	for _, want := range []string{"library=lib-2", "source=app-9", `data={"document_id":"d-7"}`} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
	if err := tail.stop(t); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(tail.stdout.String(), "\n"); n != 1 {
		t.Fatalf("tail printed %d lines, want 1:\n%s", n, tail.stdout)
	}
}

func TestNatsStreamInfo(t *testing.T) {
	b := testnats.Broker(t)
	out, err := natsCmd(t, t.Context(), b.ClientURL(), "stream", "info", "EVENTS", "--json").Output()
	if err != nil {
		t.Fatalf("nats stream info: %v", err)
	}
	var info struct {
		Config struct {
			Name      string   `json:"name"`
			Subjects  []string `json:"subjects"`
			Storage   string   `json:"storage"`
			RePublish struct {
				Dest string `json:"dest"`
			} `json:"republish"`
		} `json:"config"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	c := info.Config
	if c.Name != "EVENTS" || len(c.Subjects) != 1 || c.Subjects[0] != "events.>" || c.Storage != "file" || c.RePublish.Dest != "live.events.>" {
		t.Fatalf("stream info: %+v", c)
	}
}

func TestPublishCommand(t *testing.T) {
	b := testnats.Broker(t)
	nc := testnats.Conn(t, b.ClientURL())
	s, err := testnats.JetStream(t, nc).Stream(t.Context(), broker.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	count := func() uint64 {
		info, err := s.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}

	out, err := runOnce(t, "", "publish", "--nats-url", b.ClientURL(), "--library", "lib-1", "--type", "document.added",
		"--data", `{"document_id":"d1","title":"T","num_chunks":1}`, "--id", "fixed-1", "--source", "cli")
	if err != nil || !strings.Contains(out, "published fixed-1 seq=1") {
		t.Fatalf("publish: %q, %v", out, err)
	}
	out, err = runOnce(t, "", "publish", "--nats-url", b.ClientURL(), "--library", "lib-1", "--type", "document.added", "--id", "fixed-1")
	if err != nil || !strings.Contains(out, "(duplicate)") {
		t.Fatalf("republish: %q, %v", out, err)
	}

	// Two envelopes on stdin, no id or timestamp.
	stdin := `{"type":"workflow.completed","library_id":"lib-1","data":{"n":1}}
	          {"type":"workflow.completed","library_id":"lib-2"}`
	out, err = runOnce(t, stdin, "publish", "--nats-url", b.ClientURL())
	if err != nil || strings.Count(out, "published ") != 2 {
		t.Fatalf("stdin publish: %q, %v", out, err)
	}
	if n := count(); n != 3 {
		t.Fatalf("stream holds %d, want 3", n)
	}

	// Bad input publishes nothing, not even the valid event before it.
	for _, bad := range []struct {
		stdin string
		args  []string
	}{
		{"", []string{"--library", "a.b", "--type", "document.added"}},
		{"", []string{"--library", "lib", "--type", "Document.Added"}},
		{"", []string{"--library", "lib", "--type", "document.added", "--data", "[1]"}},
		{`{"type":"x.y","library_id":"l"} not json`, nil},
		{`{"type":"x.y","library_id":"l"} {"type":"x.y","library_id":"l>"}`, nil},
		{`{"type":"x.y","library_id":"l","timestamp":"yesterday"}`, nil},
		{"", nil},
	} {
		args := append([]string{"publish", "--nats-url", b.ClientURL()}, bad.args...)
		if _, err := runOnce(t, bad.stdin, args...); err == nil {
			t.Errorf("publish %v with stdin %q: no error", bad.args, bad.stdin)
		}
	}
	if n := count(); n != 3 {
		t.Fatalf("after bad input the stream holds %d, want 3", n)
	}
}

func TestServePrintsURLsAndStops(t *testing.T) {
	dir := t.TempDir()
	srv := start(t, "", "serve", "--nats-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--data-dir", dir, "--log-level", "warn")
	url := srv.waitOutput(t, `NATS:\s+(nats://\S+)`)
	httpURL := srv.waitOutput(t, `HTTP:\s+(http://\S+)`)
	checkStats(t, httpURL)
	nc := testnats.Conn(t, url)
	if _, err := testnats.JetStream(t, nc).Stream(t.Context(), broker.StreamName); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if err := srv.stop(t); err != nil {
		t.Fatalf("serve returned %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "jetstream")); err != nil {
		t.Fatalf("no JetStream data in --data-dir: %v", err)
	}
}

func TestHelpAndErrors(t *testing.T) {
	out, err := runOnce(t, "", "--help")
	if err != nil || !strings.Contains(out, "serve") || !strings.Contains(out, "tail") {
		t.Fatalf("--help: %q, %v", out, err)
	}
	for _, cmd := range []string{"serve", "broker", "tail", "publish"} {
		out, err := runOnce(t, "", cmd, "--help")
		if err != nil || !strings.Contains(out, "--log-level") || !strings.Contains(out, "ARRWCDC_") {
			t.Errorf("%s --help: %q, %v", cmd, out, err)
		}
	}
	if _, err := runOnce(t, "", "frobnicate"); err == nil || !strings.Contains(err.Error(), "frobnicate") {
		t.Errorf("unknown command: %v", err)
	}
	if _, err := runOnce(t, "", "tail", "--library", "a.b"); err == nil || !strings.Contains(err.Error(), "a.b") {
		t.Errorf("bad library: %v", err)
	}
	if out, err := runOnce(t, "", "version"); err != nil || !strings.HasPrefix(out, "arrwcdc ") {
		t.Errorf("version: %q, %v", out, err)
	}
	if _, err := runOnce(t, ""); err == nil {
		t.Error("no command: no error")
	}
}

// checkStats asks a bridge for its statistics and checks the original
// event bus's fields are there.
func checkStats(t *testing.T, base string) {
	t.Helper()
	resp, err := http.Get(base + "/v1/events/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var stats map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&stats); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("stats: %d, %v", resp.StatusCode, err)
	}
	for _, k := range []string{"total_published", "total_delivered", "active_subscribers", "queue_size", "events_by_type", "average_delivery_latency_ms", "uptime_seconds"} {
		if _, ok := stats[k]; !ok {
			t.Errorf("stats lack %q: %v", k, stats)
		}
	}
}

func TestBridgeCommand(t *testing.T) {
	b := testnats.Broker(t)
	br := start(t, "", "bridge", "--nats-url", b.ClientURL(), "--http-listen", "127.0.0.1:0", "--log-level", "warn")
	base := br.waitOutput(t, `HTTP:\s+(http://\S+)`)
	checkStats(t, base)
	if err := br.stop(t); err != nil {
		t.Fatalf("bridge returned %v", err)
	}
}

func TestDemoAppCommandAndHealthcheck(t *testing.T) {
	b := testnats.Broker(t)
	app := start(t, "", "demo-app", "--nats-url", b.ClientURL(), "--http-listen", "127.0.0.1:0",
		"--db", filepath.Join(t.TempDir(), "demo.db"), "--source", "demo-x", "--log-level", "warn")
	base := app.waitOutput(t, `HTTP:\s+(http://\S+)`)
	if _, err := runOnce(t, "", "healthcheck", "--url", base+"/healthz"); err != nil {
		t.Fatalf("healthcheck of a live app: %v", err)
	}
	if _, err := runOnce(t, "", "healthcheck", "--url", base+"/no-such-page"); err == nil {
		t.Fatal("healthcheck of a 404 passed")
	}
	resp, err := http.Post(base+"/v1/libraries", "application/json", strings.NewReader(`{"name":"cli"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create library: %s", resp.Status)
	}
	nc := testnats.Conn(t, b.ClientURL())
	s, err := testnats.JetStream(t, nc).Stream(t.Context(), broker.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	testnats.Eventually(t, 10*time.Second, func() error {
		m, err := s.GetMsg(t.Context(), 1)
		if err != nil {
			return err
		}
		if ev, err := event.Decode(m.Data, 0); err != nil || ev.Type != event.TypeLibraryCreated || ev.Source != "demo-x" {
			return fmt.Errorf("first event %+v, %v", ev, err)
		}
		return nil
	})
	if err := app.stop(t); err != nil {
		t.Fatalf("demo-app returned %v", err)
	}
	if _, err := runOnce(t, "", "healthcheck", "--url", base+"/healthz"); err == nil {
		t.Fatal("healthcheck of a stopped app passed")
	}
}
