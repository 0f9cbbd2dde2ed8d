package bridge_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/arrwdb/arrwcdc/bridge"
	"github.com/arrwdb/arrwcdc/event"
)

// TestBurstReachesEveryClient publishes a burst to one library watched by
// several clients: under load the room pokes the writers once for several
// live messages (while more wait in its subscription), and the last
// message of the burst must still reach every client, each frame once, in
// order. Keep-alives are turned off (an hour apart), so that only the
// room's pokes can get the frames out.
func TestBurstReachesEveryClient(t *testing.T) {
	e := newEnv(t)
	b := e.bridge(t, func(c *bridge.Config) { c.PingInterval = time.Hour })
	const lib, n, clients = "burst", 3000, 4
	var seqs [clients][]uint64
	conns := make([]func() (wsFrame, error), clients)
	for i := range clients {
		c := dial(t, b, "/v1/libraries/"+lib+"/ws")
		connected(t, c)
		conns[i] = func() (wsFrame, error) { return tryRead(c) }
	}
	l := &ledger{}
	publishMany(t, e.newPublisher(t), l, n, func(i int) event.Event { return mkEvent(lib, event.TypeDocumentAdded, "", i) })
	want := l.want(func(pubEvent) bool { return true })
	for i, next := range conns {
		for len(seqs[i]) < len(want) {
			f, err := next()
			if err != nil {
				t.Fatalf("client %d after %d of %d frames: %v", i, len(seqs[i]), len(want), err)
			}
			if f.Type == "event" {
				seqs[i] = append(seqs[i], f.Seq)
			}
		}
		requireSeqs(t, fmt.Sprintf("client %d", i), seqs[i], want)
	}
}
