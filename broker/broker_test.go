package broker_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/arrwdb/arrwcdc/broker"
	"github.com/arrwdb/arrwcdc/internal/testnats"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStartProvisionsStream(t *testing.T) {
	b := testnats.Broker(t)
	if !strings.HasPrefix(b.ClientURL(), "nats://127.0.0.1:") || strings.HasSuffix(b.ClientURL(), ":4222") {
		t.Fatalf("client url %q: want a free loopback port", b.ClientURL())
	}
	nc := testnats.Conn(t, b.ClientURL())
	js := testnats.JetStream(t, nc)
	s, err := js.Stream(t.Context(), broker.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	if got := cfg.Subjects; len(got) != 1 || got[0] != "events.>" {
		t.Errorf("subjects = %v", got)
	}
	if cfg.Storage != jetstream.FileStorage || cfg.Replicas != 1 || cfg.Duplicates != 2*time.Minute || cfg.MaxAge != 7*24*time.Hour {
		t.Errorf("config = %+v", cfg)
	}
	if cfg.RePublish == nil || cfg.RePublish.Destination != "live.events.>" {
		t.Errorf("republish = %+v", cfg.RePublish)
	}

	// A stored event is republished on the live subject with its sequence.
	live, err := nc.SubscribeSync("live.events.>")
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg("events.library.l1.document.added")
	msg.Data = []byte(`{}`)
	msg.Header.Set(jetstream.MsgIDHeader, "id-1")
	ack, err := js.PublishMsg(t.Context(), msg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := live.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject != "live.events.library.l1.document.added" || got.Header.Get("Nats-Sequence") != "1" || ack.Sequence != 1 {
		t.Errorf("live msg %s seq %q, ack %d", got.Subject, got.Header.Get("Nats-Sequence"), ack.Sequence)
	}
	// A second publish with the same Nats-Msg-Id is a duplicate.
	ack2, err := js.PublishMsg(t.Context(), msg)
	if err != nil || !ack2.Duplicate {
		t.Errorf("republish of id-1: %+v, %v; want duplicate", ack2, err)
	}
}

func TestRestartKeepsAndUpdatesStream(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	cfg := broker.Config{NATSListen: "127.0.0.1:0", DataDir: dir, Stream: broker.StreamConfig{MaxAge: time.Hour}}
	b, err := broker.New(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	nc, err := b.Connect()
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	for range 3 {
		if _, err := js.Publish(ctx, "events.library.l1.document.added", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	nc.Close()
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b.Shutdown(context.Background()); err != nil { // idempotent
		t.Fatal(err)
	}

	// Same data dir, newer config: the stream is updated in place.
	cfg.Stream.MaxAge = 48 * time.Hour
	b2, err := broker.New(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := b2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b2.Shutdown(context.Background()) })
	nc2 := testnats.Conn(t, b2.ClientURL())
	s, err := testnats.JetStream(t, nc2).Stream(ctx, broker.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info := s.CachedInfo()
	if info.State.Msgs != 3 || info.Config.MaxAge != 48*time.Hour {
		t.Fatalf("after restart: msgs %d max_age %v", info.State.Msgs, info.Config.MaxAge)
	}
	// Ensuring again is a no-op.
	if _, err := broker.EnsureStream(ctx, testnats.JetStream(t, nc2), "events", cfg.Stream); err != nil {
		t.Fatal(err)
	}
}

func TestMonitorListener(t *testing.T) {
	b := testnats.Broker(t, func(c *broker.Config) { c.MonitorListen = "127.0.0.1:0" })
	if !strings.HasPrefix(b.MonitorURL(), "http://127.0.0.1:") {
		t.Fatalf("monitor url %q", b.MonitorURL())
	}
	if testnats.Broker(t).MonitorURL() != "" {
		t.Fatal("monitoring on by default")
	}
}

func TestConfigValidate(t *testing.T) {
	bad := broker.Config{
		NATSListen:    "nohostport",
		MonitorListen: "127.0.0.1:99999",
		Routes:        []string{"http://x:1", "nats-route://a:6222"},
		Prefix:        "bad prefix",
		Stream:        broker.StreamConfig{Replicas: 3, MaxAge: -time.Second},
	}
	err := bad.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"nats_listen", "monitor_listen", `"http://x:1"`, "routes: need cluster_listen", "prefix", "stream.replicas", "stream.max_age"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
	if _, err := broker.New(bad, nil); err == nil {
		t.Error("New accepted a bad config")
	}
	if err := (broker.Config{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
}

func TestClusterSize(t *testing.T) {
	cases := []struct {
		cfg  broker.Config
		want int
	}{
		{broker.Config{}, 1},
		{broker.Config{ClusterListen: "127.0.0.1:6222", Routes: []string{"nats-route://127.0.0.1:6222"}}, 1},
		{broker.Config{ClusterListen: "127.0.0.1:6222", Routes: []string{
			"nats-route://127.0.0.1:6222", "nats-route://127.0.0.1:6223", "nats-route://127.0.0.1:6223", "nats-route://127.0.0.1:6224"}}, 3},
		{broker.Config{ClusterListen: "0.0.0.0:6222", ServerName: "b1", Routes: []string{
			"nats-route://b1:6222", "nats-route://b2:6222", "nats-route://b3:6222"}}, 3},
	}
	for _, c := range cases {
		if got := c.cfg.ClusterSize(); got != c.want {
			t.Errorf("ClusterSize(%v) = %d, want %d", c.cfg.Routes, got, c.want)
		}
		if got := c.cfg.WithDefaults().Stream.Replicas; got != min(3, c.want) {
			t.Errorf("replicas = %d", got)
		}
	}
}

func TestStartFailsCleanly(t *testing.T) {
	// Two nodes cannot share one client port: the second fails and leaves
	// nothing running (goleak checks the goroutines).
	a := testnats.Broker(t)
	b, err := broker.New(broker.Config{NATSListen: broker.Addr(a.ClientURL()), DataDir: t.TempDir(), ReadyTimeout: 2 * time.Second}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	err = b.Start(t.Context())
	if !errors.Is(err, broker.ErrNotReady) {
		t.Fatalf("err = %v, want ErrNotReady", err)
	}
	if b.ClientURL() != "" {
		t.Fatal("failed broker still has a client url")
	}
}

func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster start takes seconds")
	}
	nodes := testnats.Cluster(t, 3)
	nc := testnats.Conn(t, nodes[2].ClientURL())
	s, err := testnats.JetStream(t, nc).Stream(t.Context(), broker.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if r := s.CachedInfo().Config.Replicas; r != 3 {
		t.Fatalf("replicas = %d, want 3", r)
	}
}
