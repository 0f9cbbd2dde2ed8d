package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// TestConns runs the conns scenario small: 50 idle clients over 2 client
// processes (this test binary again) and 3 libraries, every event
// delivered to every client. Memory figures are printed, not asserted.
func TestConns(t *testing.T) {
	cfg := Config{Scenario: "conns", Clients: 50, Libraries: 3, ConnsPerProcess: 25,
		ClientArgs: []string{"-test.run=^$"}, Drain: 30 * time.Second}
	res, err := Run(t.Context(), cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := res.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	c := res.Conns
	if c == nil {
		t.Fatal("no conns figures")
	}
	if c.Held != 50 || c.ClientProcesses != 2 || c.DialFailures != 0 || c.CappedByFDLimit {
		t.Errorf("held %d from %d processes, %d failures, capped %v; want 50 from 2, 0, false", c.Held, c.ClientProcesses, c.DialFailures, c.CappedByFDLimit)
	}
	if got := strings.Join(c.SourceAddrs, ","); got != "127.0.0.2,127.0.0.3" {
		t.Errorf("source addresses %s", got)
	}
	if res.Events != 9 || c.Complete != 50 || res.Delivered != res.Expected || res.Expected != 150 || c.Excess != 0 || res.Disconnects != 0 {
		t.Errorf("events %d, complete %d, delivered %d of %d, excess %d, disconnects %d; want 9, 50, 150 of 150, 0, 0",
			res.Events, c.Complete, res.Delivered, res.Expected, c.Excess, res.Disconnects)
	}
	if err := res.Check(); err != nil {
		t.Error(err)
	}
	if c.GoroutinesIdle <= c.GoroutinesBefore || c.RSSIdle == 0 || c.HeapStackIdle == 0 {
		t.Errorf("figures not filled: %+v", c)
	}
	var js map[string]any
	var buf bytes.Buffer
	if err := res.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(buf.Bytes(), &js); err != nil {
		t.Fatal(err)
	}
	conns, _ := js["conns"].(map[string]any)
	for _, k := range []string{"idle_bytes_per_conn", "idle_heap_stack_bytes_per_conn", "goroutines_per_conn", "held_clients", "capped_by_fd_limit"} {
		if _, ok := conns[k]; !ok {
			t.Errorf("JSON has no conns.%s", k)
		}
	}
}
