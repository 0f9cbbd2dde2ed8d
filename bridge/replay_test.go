package bridge_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/arrwdb/arrwcdc/bridge"
	"github.com/arrwdb/arrwcdc/internal/testnats"
)

// TestReplayLeavesNoConsumer: the ordered consumer of a replay is deleted
// when the replay hands over to live delivery, and when its client goes
// away in the middle of the replay while the reader waits on that client's
// writer.
func TestReplayLeavesNoConsumer(t *testing.T) {
	e := newEnv(t)
	b := e.bridge(t)
	const n = 300
	// Big events, so that the stalled client below backs up into the
	// bridge long before it read the backlog.
	pad := `{"pad":"` + strings.Repeat("x", 16<<10) + `"}`
	var last uint64
	for range n {
		last, _ = e.publish(t, ev{lib: "lib-1", data: pad})
	}
	// The bridge's own count of the consumers it obtained and has not
	// deleted: the stream's count could also hold one that the server
	// created for a request that timed out on a loaded machine, which the
	// bridge never knew of (the server deletes it after its inactivity
	// threshold).
	base := bridge.ReplayConsumers()
	consumersAre := func(want int64) func() error {
		return func() error {
			if got := bridge.ReplayConsumers() - base; got != want {
				return fmt.Errorf("%d consumers, want %d", got, want)
			}
			return nil
		}
	}
	noConsumer := consumersAre(0)

	// A client that reads the whole backlog, then a live event.
	c := dial(t, b, "/v1/libraries/lib-1/ws?since_seq=0")
	c.SetReadLimit(-1)
	connected(t, c)
	for want := uint64(1); want <= last; want++ {
		if f := read(t, c); f.Seq != want {
			t.Fatalf("got %.200s, want seq %d", f.raw, want)
		}
	}
	live, _ := e.publish(t, ev{lib: "lib-1"})
	if f := read(t, c); f.Seq != live {
		t.Fatalf("got %.200s, want the live seq %d", f.raw, live)
	}
	testnats.Eventually(t, wait, noConsumer)

	// A client that stops reading in the middle of its replay, then leaves:
	// its reader is blocked handing the writer an event when it goes.
	stalled := dialStalling(t, b, "/v1/libraries/lib-1/ws?since_seq=0")
	connected(t, stalled)
	testnats.Eventually(t, wait, consumersAre(1)) // the replay's
	if err := stalled.CloseNow(); err != nil {
		t.Fatal(err)
	}
	testnats.Eventually(t, wait, noConsumer)

	// The bridge still serves the first client.
	live, _ = e.publish(t, ev{lib: "lib-1"})
	if f := read(t, c); f.Seq != live {
		t.Fatalf("got %.200s, want seq %d", f.raw, live)
	}
}
