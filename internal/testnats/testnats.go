// Package testnats starts real embedded NATS brokers for tests: single nodes
// and clusters on free loopback ports, in-process, each with its own data
// directory, shut down by t.Cleanup.
package testnats

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/arrwdb/arrwcdc/broker"
)

// Broker starts one node on 127.0.0.1:0 with JetStream in t.TempDir() and
// the EVENTS stream provisioned. edit, if given, adjusts the config first.
func Broker(t testing.TB, edit ...func(*broker.Config)) *broker.Broker {
	t.Helper()
	cfg := broker.Config{NATSListen: "127.0.0.1:0", DataDir: t.TempDir()}
	for _, e := range edit {
		e(&cfg)
	}
	return Start(t, cfg)
}

// Start starts a node with cfg as it is (a fixed port and data directory
// make a restarted node the same node to its clients); cleanup shuts it
// down, again if the test already did.
func Start(t testing.TB, cfg broker.Config) *broker.Broker {
	t.Helper()
	b, err := broker.New(cfg, zaptest.NewLogger(t, zaptest.Level(zapcore.WarnLevel)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Shutdown(context.Background()) })
	return b
}

// Cluster starts n clustered nodes on loopback. Every node lists every
// route (a seed with no routes is fatal to clustered JetStream), and the
// nodes start concurrently, as in a real deployment.
func Cluster(t testing.TB, n int, edit ...func(*broker.Config)) []*broker.Broker {
	t.Helper()
	ports := FreePorts(t, n)
	routes := make([]string, n)
	for i, p := range ports {
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", p)
	}
	cfgs := make([]broker.Config, n)
	for i := range cfgs {
		cfgs[i] = broker.Config{
			NATSListen:    "127.0.0.1:0",
			ClusterListen: fmt.Sprintf("127.0.0.1:%d", ports[i]),
			ClusterName:   "test",
			Routes:        routes,
			ServerName:    fmt.Sprintf("n%d", i+1),
			DataDir:       t.TempDir(),
		}
		for _, e := range edit {
			e(&cfgs[i])
		}
	}
	nodes := make([]*broker.Broker, n)
	errs := make(chan error, n)
	for i := range cfgs {
		b, err := broker.New(cfgs[i], zaptest.NewLogger(t, zaptest.Level(zapcore.WarnLevel)))
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = b
		t.Cleanup(func() { _ = b.Shutdown(context.Background()) })
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			errs <- b.Start(ctx)
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	return nodes
}

// FreePorts reserves n distinct free TCP ports on 127.0.0.1 and releases
// them for the caller to bind.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	var ls []net.Listener
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// Conn connects to url over TCP and closes the connection at cleanup.
func Conn(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// JetStream returns a JetStream context on nc.
func JetStream(t testing.TB, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// Eventually polls fn every 10 ms until it returns nil, failing t with the
// last error if timeout passes first.
func Eventually(t testing.TB, timeout time.Duration, fn func() error) {
	t.Helper()
	EventuallyEvery(t, timeout, 10*time.Millisecond, fn)
}

// EventuallyEvery is [Eventually] polling every interval, for checks that
// cost more than a look at a counter (a whole stream read, a CLI run).
func EventuallyEvery(t testing.TB, timeout, interval time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", timeout, err)
		}
		time.Sleep(interval)
	}
}
