package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// TestConns runs the conns scenario small: 50 idle clients over 2 client
// processes (this test binary again) and 3 libraries, every event
// delivered to every client. Memory figures are printed, not asserted.
func TestConns(t *testing.T) {
	c := testConns(t, Config{Scenario: "conns", Clients: 50, Libraries: 3, ConnsPerProcess: 25})
	if c.ServerPID != 0 || !strings.Contains(c.Server, "bridge") {
		t.Errorf("server %q pid %d, want the bridge in this process", c.Server, c.ServerPID)
	}
}

// TestConnsPeer runs conns-peer small: 20 clients speaking the NATS
// protocol over the embedded broker's websocket listener, from 2 client
// processes, over 2 libraries; no bridge.
func TestConnsPeer(t *testing.T) {
	c := testConns(t, Config{Scenario: "conns-peer", Clients: 20, Libraries: 2, ConnsPerProcess: 10})
	if c.ServerPID != 0 || !strings.Contains(c.Server, "websocket") || strings.Contains(c.Server, "bridge ") {
		t.Errorf("server %q pid %d, want the broker's websocket listener in this process", c.Server, c.ServerPID)
	}
}

// TestConnsCentrifugo runs conns-centrifugo small: 20 clients speaking
// Centrifugo's protocol, the memory read from the centrifugo process.
func TestConnsCentrifugo(t *testing.T) {
	bin := centrifugoBinary(t)
	c := testConns(t, Config{Scenario: "conns-centrifugo", Centrifugo: bin, Clients: 20, Libraries: 2, ConnsPerProcess: 10})
	if c.ServerPID == 0 || !strings.Contains(c.Server, "centrifugo") || c.IdleScavengedPerConn != 0 {
		t.Errorf("server %q pid %d, scavenged %d; want the centrifugo process and no scavenged figure", c.Server, c.ServerPID, c.IdleScavengedPerConn)
	}
}

// centrifugoBinary returns the centrifugo on the PATH or in .tools/bin
// (absolute: the bench starts it in a directory of its own), or skips.
func centrifugoBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("centrifugo")
	if err == nil {
		return bin
	}
	bin, err = filepath.Abs(filepath.Join("..", "..", ".tools", "bin", "centrifugo"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skip("no centrifugo binary (make bench-peers builds one)")
	}
	return bin
}

// testConns runs cfg (a conns scenario: Clients over Clients /
// ConnsPerProcess client processes, 3 events a library) and checks what
// every conns scenario must give: every client held from its own
// source address, every event delivered to each client of its library,
// the figures filled and in the JSON.
func testConns(t *testing.T, cfg Config) *ConnsFigures {
	t.Helper()
	cfg.ClientArgs, cfg.Drain = []string{"-test.run=^$"}, 30*time.Second
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
	procs := cfg.Clients / cfg.ConnsPerProcess
	if c.Held != cfg.Clients || c.ClientProcesses != procs || c.DialFailures != 0 || c.CappedByFDLimit {
		t.Errorf("held %d from %d processes, %d failures, capped %v; want %d from %d, 0, false",
			c.Held, c.ClientProcesses, c.DialFailures, c.CappedByFDLimit, cfg.Clients, procs)
	}
	var want []string
	for i := range procs {
		want = append(want, "127.0.0."+string(rune('2'+i)))
	}
	if got := strings.Join(c.SourceAddrs, ","); got != strings.Join(want, ",") {
		t.Errorf("source addresses %s, want %s", got, strings.Join(want, ","))
	}
	events, frames := int64(3*cfg.Libraries), int64(3*cfg.Clients)
	if res.Events != events || c.Complete != int64(cfg.Clients) || res.Delivered != res.Expected || res.Expected != frames || c.Excess != 0 || res.Disconnects != 0 {
		t.Errorf("events %d, complete %d, delivered %d of %d, excess %d, disconnects %d; want %d, %d, %d of %d, 0, 0",
			res.Events, c.Complete, res.Delivered, res.Expected, c.Excess, res.Disconnects, events, cfg.Clients, frames, frames)
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
	for _, k := range []string{"idle_bytes_per_conn", "idle_heap_stack_bytes_per_conn", "goroutines_per_conn", "held_clients", "capped_by_fd_limit", "server_process"} {
		if _, ok := conns[k]; !ok {
			t.Errorf("JSON has no conns.%s", k)
		}
	}
	return c
}
