package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/arrwdb/arrwcdc/internal/bench"
)

// TestBenchCommand runs `arrwcdc bench` alone (its own embedded broker)
// with tiny numbers: JSON, then the table. Counts only, no timings.
func TestBenchCommand(t *testing.T) {
	out, err := runOnce(t, "", "bench", "--scenario", "ws", "--events", "100", "--clients", "2", "--size", "500", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var res bench.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if res.Scenario != "ws" || res.Events != 100 || res.Delivered != 200 || res.Expected != 200 || res.EventSize != 500 || res.Latency == nil {
		t.Errorf("result %+v", res)
	}

	out, err = runOnce(t, "", "bench", "--mode", "sync", "--events", "50")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"arrwcdc bench publish (sync): 50 events of 300 B", "delivered    50 / 50 (100%)", "events/s", "latency      p50", "allocations"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\r") {
		t.Errorf("progress bar drawn on a non-terminal:\n%q", out)
	}
}

func TestBenchCommandErrors(t *testing.T) {
	_, err := runOnce(t, "", "bench", "--scenario", "nope")
	if err == nil || !strings.Contains(err.Error(), "--scenario") && !strings.Contains(err.Error(), "scenario") {
		t.Errorf("bad scenario: %v", err)
	}
	_, err = runOnce(t, "", "bench", "--nats-url", "nats://127.0.0.1:1", "--events", "1")
	if err == nil || errors.Is(err, bench.ErrIncomplete) {
		t.Errorf("unreachable server: %v", err)
	}
}
