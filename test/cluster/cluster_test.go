// Package cluster_test runs the scale-out story in one process: a
// three-node cluster of embedded brokers on loopback, a publisher on node
// 1, bridges on nodes 2 and 3 with WebSocket clients, and a durable
// consumer; node 2 is shut down mid-stream and brought back. Nothing
// acknowledged may be lost or delivered twice.
package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/arrwdb/arrwcdc/bridge"
	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/checker"
	"github.com/arrwdb/arrwcdc/internal/testnats"
	"github.com/arrwdb/arrwcdc/publisher"
	"github.com/arrwdb/arrwcdc/subscriber"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const library = "lib-1"

// connect dials the given node first and the others after it, reconnecting
// for ever, as an application pointed at every broker would.
func connect(t *testing.T, name string, first string, urls []string) *nats.Conn {
	t.Helper()
	ordered := []string{first}
	for _, u := range urls {
		if u != first {
			ordered = append(ordered, u)
		}
	}
	nc, err := nats.Connect(strings.Join(ordered, ","), nats.Name(name), nats.DontRandomize(),
		nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// wsClient reads one library's frames from a bridge and, whenever its
// socket ends, reconnects with since_seq = the last seq it got.
func wsClient(t *testing.T, ctx context.Context, base string, chk *checker.Checker, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		var last uint64
		connected := false
		for ctx.Err() == nil {
			url := "ws" + strings.TrimPrefix(base, "http") + "/v1/libraries/" + library + "/ws"
			if connected {
				url += fmt.Sprintf("?since_seq=%d", last)
			}
			c, _, err := websocket.Dial(ctx, url, nil)
			if err != nil {
				select {
				case <-ctx.Done():
				case <-time.After(50 * time.Millisecond):
				}
				continue
			}
			connected = true
			c.SetReadLimit(-1)
			for {
				_, data, err := c.Read(ctx)
				if err != nil {
					break
				}
				var f struct {
					Type string `json:"type"`
					ID   string `json:"id"`
					Seq  uint64 `json:"seq"`
				}
				if json.Unmarshal(data, &f) == nil && f.Type == "event" {
					chk.Record(f.Seq, f.ID)
					last = f.Seq
				}
			}
			c.CloseNow()
		}
	}()
}

func TestNodeLossLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("a cluster, a node loss and a restart take tens of seconds")
	}
	nodes := testnats.Cluster(t, 3)
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.ClientURL()
	}
	log := zaptest.NewLogger(t, zaptest.Level(zapcore.WarnLevel))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	// Bridges on nodes 2 and 3, each with a WebSocket client.
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wsChecks := []*checker.Checker{checker.New(), checker.New()}
	for i, node := range []int{1, 2} {
		b, err := bridge.New(bridge.Config{HTTPListen: "127.0.0.1:0"}, connect(t, fmt.Sprintf("bridge-%d", node+1), urls[node], urls), log)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Shutdown(context.Background()) })
		wsClient(t, ctx, b.URL(), wsChecks[i], &wg)
	}
	// A durable consumer attached to node 2.
	durable := checker.New()
	js := testnats.JetStream(t, connect(t, "consumer", urls[1], urls))
	sub, err := subscriber.Consume(ctx, js, "cluster-test", subscriber.Filter{LibraryID: library},
		func(_ context.Context, d subscriber.Delivery) error { durable.Record(d.Seq, d.ID); return nil },
		subscriber.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	// Publishers on node 1 and on node 2 (which goes away: its publisher
	// must reconnect to a survivor on its own) take turns. Each retries an
	// event (same id) until it is acknowledged; the stream's dedup keeps
	// one copy.
	var pubs [2]*publisher.Publisher
	var pubConns [2]*nats.Conn
	for i := range pubs {
		pubConns[i] = connect(t, fmt.Sprintf("publisher-%d", i+1), urls[i], urls)
		p, err := publisher.New(pubConns[i], publisher.WithDefaultTimeout(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close(context.Background())
		pubs[i] = p
	}
	all := []*checker.Checker{wsChecks[0], wsChecks[1], durable}
	const total = 1500
	publishOne := func(i int) {
		ev, _ := event.NewDocumentAdded(library, event.DocumentAdded{DocumentID: fmt.Sprint(i), Title: "t", NumChunks: 1})
		for attempt := 0; ; attempt++ {
			ack, err := pubs[i%2].Publish(ctx, ev)
			if err == nil {
				for _, c := range all {
					c.Ack(ack.Seq, ack.ID)
				}
				return
			}
			if attempt > 200 || ctx.Err() != nil {
				t.Fatalf("event %d never acknowledged: %v", i, err)
			}
		}
	}
	for i := range total / 3 {
		publishOne(i)
	}
	// Node 2 goes away mid-stream, then comes back on the same data.
	cfg := nodes[1].Config()
	if err := nodes[1].Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := total / 3; i < 2*total/3; i++ {
		publishOne(i)
	}
	if nc := pubConns[1]; nc.Stats().Reconnects == 0 || nc.ConnectedUrl() == urls[1] {
		t.Fatalf("publisher 2 did not move off node 2: %d reconnects, on %s", nc.Stats().Reconnects, nc.ConnectedUrl())
	}
	testnats.Start(t, cfg) // node 2 again: same routes, data directory and ports
	for i := 2 * total / 3; i < total; i++ {
		publishOne(i)
	}

	for name, c := range map[string]*checker.Checker{"ws via node 2": wsChecks[0], "ws via node 3": wsChecks[1], "durable": durable} {
		t.Run(name, func(t *testing.T) {
			c.Wait(t, 60*time.Second)
			c.Require(t)
		})
	}
}
