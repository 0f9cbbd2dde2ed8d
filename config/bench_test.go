package config_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/arrwdb/arrwcdc/config"
	"github.com/arrwdb/arrwcdc/internal/bench"
)

func TestBenchSettings(t *testing.T) {
	def := config.BenchConfig{Config: bench.Config{Scenario: "publish", Mode: "async", Size: 300, Clients: 10, Libraries: 1}}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want func(b *config.BenchConfig)
		urls []string
	}{
		{"defaults", nil, nil, func(*config.BenchConfig) {}, nil},
		{"flags", []string{"--scenario", "ws", "--mode", "sync", "--events", "500", "--size", "1024", "--rate", "1000.5",
			"--clients", "100", "--libraries", "3", "--duration", "10s", "--json", "--cpu-profile", "cpu.out", "--mem-profile", "mem.out", "--trace", "trace.out", "--client-queue", "4096", "--centrifugo", "/opt/centrifugo"}, nil,
			func(b *config.BenchConfig) {
				*b = config.BenchConfig{JSON: true, Config: bench.Config{Scenario: "ws", Mode: "sync", Events: 500, Size: 1024, Rate: 1000.5, Clients: 100, Libraries: 3,
					Duration: 10 * time.Second, CPUProfile: "cpu.out", MemProfile: "mem.out", Trace: "trace.out", ClientQueue: 4096, Centrifugo: "/opt/centrifugo"}}
			}, nil},
		{"env", nil, map[string]string{"ARRWCDC_SCENARIO": "e2e", "ARRWCDC_MODE": "core", "ARRWCDC_NATS_URL": "nats://127.0.0.1:4999"},
			func(b *config.BenchConfig) { b.Scenario, b.Mode = "e2e", "core" }, []string{"nats://127.0.0.1:4999"}},
		{"peer", []string{"--scenario=ws-peer", "--clients=1000"}, nil, func(b *config.BenchConfig) { b.Scenario, b.Clients = "ws-peer", 1000 }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, "bench", tt.args, tt.env)
			want := def
			tt.want(&want)
			if !reflect.DeepEqual(c.Bench, want) {
				t.Errorf("Bench = %+v, want %+v", c.Bench, want)
			}
			if !reflect.DeepEqual(c.NATSURL, tt.urls) {
				t.Errorf("NATSURL = %q, want %q", c.NATSURL, tt.urls)
			}
		})
	}
	// Other commands do not take the bench settings.
	if _, err := load(t, "tail", []string{"--scenario", "ws"}, nil); !errors.Is(err, config.ErrUnknownSetting) {
		t.Errorf("tail --scenario: %v", err)
	}
}

func TestBenchErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want map[string]string // field -> message part
	}{
		{"scenario", []string{"--scenario", "fast"}, map[string]string{"scenario": `"fast": want publish, e2e, ws, ws-peer, ws-centrifugo, replay, outbox, conns, conns-peer or conns-centrifugo`}},
		{"mode", []string{"--mode", "fast"}, map[string]string{"mode": "want sync, async or core"}},
		{"core with ws", []string{"--scenario", "ws", "--mode", "core"}, map[string]string{"mode": "only with --scenario publish or e2e"}},
		{"numbers", []string{"--events=-1", "--size", "0", "--rate=-5", "--clients", "0", "--libraries", "100001", "--duration=-1s", "--client-queue=-1"},
			map[string]string{"client-queue": `"-1"`, "events": `"-1": want 0`, "size": `"0": want 1 to 1048576`, "rate": `"-5"`, "clients": `"0"`, "libraries": `"100001"`, "duration": `"-1s"`}},
		{"too large", []string{"--size", "1048577"}, map[string]string{"size": "want 1 to 1048576 bytes"}},
		{"peer with url", []string{"--scenario", "ws-peer", "--nats-url", "nats://127.0.0.1:4222"}, map[string]string{"nats-url": "leave --nats-url empty"}},
		{"conns peer with url", []string{"--scenario", "conns-peer", "--nats-url", "nats://127.0.0.1:4222"}, map[string]string{"nats-url": "conns-peer runs its own broker"}},
		{"bad url", []string{"--nats-url", "http://x"}, map[string]string{"nats-url": "want nats://host:port"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, "bench", tt.args, nil)
			if err == nil {
				t.Fatal("no error")
			}
			got := map[string]bool{}
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				fe, ok := errors.AsType[*config.FieldError](e)
				if !ok {
					t.Fatalf("%v is not a FieldError", e)
				}
				got[fe.Field] = true
				if msg, ok := tt.want[fe.Field]; !ok || !strings.Contains(e.Error(), msg) {
					t.Errorf("error %q: want field in %v with %q", e, tt.want, msg)
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("fields %v, want %v", got, tt.want)
			}
		})
	}
}
