package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/arrwdb/arrwcdc/bridge"
	"github.com/arrwdb/arrwcdc/internal/testnats"
)

// dialStalling opens a WebSocket client whose socket has the smallest
// receive buffer the kernel allows, so that a client that stops reading
// backs up into the bridge after a few frames.
func dialStalling(t *testing.T, b *bridge.Bridge, path string) *websocket.Conn {
	t.Helper()
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, _, err := websocket.Dial(ctx, wsURL(b, path), &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: &http.Transport{DialContext: d.DialContext}},
	})
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(-1)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

func TestSlowConsumer(t *testing.T) {
	e := newEnv(t)
	b := e.bridge(t, func(c *bridge.Config) { c.ClientQueue = 8 })
	stalled := dialStalling(t, b, "/v1/libraries/lib-1/ws")
	hello := connected(t, stalled) // and no more reads until it is dropped
	good := dial(t, b, "/v1/libraries/lib-1/ws")
	connected(t, good)
	got, readErr := readFrames(good, 4096)

	// Publish big events until the stalled client overflows: its socket
	// buffers fill, then its queue of 8.
	big := `{"pad":"` + strings.Repeat("x", 64<<10) + `"}`
	var published []uint64
	for b.Stats().SlowConsumerDisconnects == 0 {
		if len(published) == 3000 {
			t.Fatal("the stalled client was never dropped")
		}
		seq, _ := e.publish(t, ev{lib: "lib-1", data: big})
		published = append(published, seq)
	}
	for range 5 {
		seq, _ := e.publish(t, ev{lib: "lib-1", data: big})
		published = append(published, seq)
	}
	t.Logf("dropped after %d events of 64 KiB", len(published)-5)

	// The other client of the library got everything, in order.
	for i, want := range published {
		select {
		case f, ok := <-got:
			if !ok {
				t.Fatalf("good client, frame %d (seq %d): %v", i, want, <-readErr)
			}
			if f.Seq != want {
				t.Fatalf("good client, frame %d: seq %d, want %d", i, f.Seq, want)
			}
		case <-time.After(wait):
			t.Fatalf("good client: frame %d (seq %d) not received", i, want)
		}
	}

	// The stalled client gets what was written to it, then the close
	// frame naming the last seq it was sent.
	last := *hello.StreamSeq
	for {
		f, err := tryRead(stalled)
		if err != nil {
			var ce websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != bridge.CloseSlowConsumer {
				t.Fatalf("stalled client: %v; want close %d", err, bridge.CloseSlowConsumer)
			}
			if want := fmt.Sprintf("slow consumer: resume with since_seq=%d", last); ce.Reason != want {
				t.Fatalf("close reason %q, want %q", ce.Reason, want)
			}
			break
		}
		if f.Seq <= last {
			t.Fatalf("stalled client: seq %d after %d", f.Seq, last)
		}
		last = f.Seq
	}
	if last >= published[len(published)-1] {
		t.Fatalf("the stalled client got every event (last %d)", last)
	}
	testnats.Eventually(t, wait, func() error {
		if st := b.Stats(); st.SlowConsumerDisconnects != 1 || st.ActiveSubscribers != 1 {
			return fmt.Errorf("slow %d, active %d", st.SlowConsumerDisconnects, st.ActiveSubscribers)
		}
		return nil
	})
}

func TestPingDropsSilentClients(t *testing.T) {
	e := newEnv(t)
	b := e.bridge(t, func(c *bridge.Config) {
		c.PingInterval = 20 * time.Millisecond
		c.WriteTimeout = 300 * time.Millisecond
	})
	// A client that answers pings (its Read is pending) stays; one that
	// never reads cannot answer and is dropped, as a vanished peer would be.
	alive := dial(t, b, "/v1/libraries/lib-1/ws")
	connected(t, alive)
	frames := make(chan wsFrame, 1)
	go func() {
		f, err := tryRead(alive)
		if err == nil {
			frames <- f
		}
		close(frames)
	}()
	silent := dial(t, b, "/v1/libraries/lib-1/ws")
	connected(t, silent)
	testnats.Eventually(t, wait, func() error {
		if n := b.Stats().ActiveSubscribers; n != 1 {
			return fmt.Errorf("%d active", n)
		}
		return nil
	})
	seq, _ := e.publish(t, ev{lib: "lib-1"})
	if f, ok := <-frames; !ok || f.Seq != seq {
		t.Fatalf("the answering client: %s (open %v), want seq %d", f.raw, ok, seq)
	}
}

// TestDropOldest: a stalled client with on_slow=drop_oldest is not closed:
// the oldest queued frames are dropped, and a gap frame names exactly the
// sequences it missed, where they would have been.
func TestDropOldest(t *testing.T) {
	e := newEnv(t)
	b := e.bridge(t, func(c *bridge.Config) { c.ClientQueue = 8 })
	stalled := dialStalling(t, b, "/v1/libraries/lib-1/ws?on_slow=drop_oldest")
	connected(t, stalled)

	big := `{"pad":"` + strings.Repeat("x", 64<<10) + `"}`
	var published []uint64
	for b.Stats().DroppedFrames == 0 {
		if len(published) == 3000 {
			t.Fatal("nothing was dropped")
		}
		seq, _ := e.publish(t, ev{lib: "lib-1", data: big})
		published = append(published, seq)
	}
	for range 20 {
		seq, _ := e.publish(t, ev{lib: "lib-1", data: big})
		published = append(published, seq)
	}
	last := published[len(published)-1]

	// Read everything: events and gaps, in stream order.
	received := map[uint64]bool{}
	var covered []uint64 // what the gaps name
	var prev uint64
	gaps := 0
	for prev < last {
		f := read(t, stalled)
		switch f.Type {
		case "event":
			received[f.Seq] = true
		case "gap":
			if f.Reason != "slow" || f.FromSeq <= prev || f.ToSeq < f.FromSeq {
				t.Fatalf("gap %s after seq %d", f.raw, prev)
			}
			for s := f.FromSeq; s <= f.ToSeq; s++ {
				covered = append(covered, s)
			}
			gaps++
			f.Seq = f.ToSeq
		default:
			t.Fatalf("frame %s", f.raw)
		}
		if f.Seq <= prev {
			t.Fatalf("seq %d after %d", f.Seq, prev)
		}
		prev = f.Seq
	}
	var missing []uint64
	for _, s := range published {
		if !received[s] {
			missing = append(missing, s)
		}
	}
	// Every event of the library in the range is published here, so the
	// gaps name exactly the missing ones.
	requireSeqs(t, "gaps", covered, missing)
	st := b.Stats()
	if st.SlowConsumerDisconnects != 0 || st.DroppedFrames != uint64(len(missing)) || st.ActiveSubscribers != 1 {
		t.Fatalf("slow %d, dropped %d (missing %d), active %d", st.SlowConsumerDisconnects, st.DroppedFrames, len(missing), st.ActiveSubscribers)
	}
	t.Logf("%d events, %d dropped in %d gaps", len(published), len(missing), gaps)
}

// TestFullSocketNeverBlocksTheRoom: events come one at a time, so the
// room writes them to its clients itself (nothing waits to be batched);
// one client stops reading and its socket fills, with a write timeout
// longer than the test's wait. The other client still gets each event
// before the next is published: the room's writes never block, what a
// full socket does not take is left to that client's writer.
func TestFullSocketNeverBlocksTheRoom(t *testing.T) {
	e := newEnv(t)
	b := e.bridge(t, func(c *bridge.Config) { c.WriteTimeout, c.PingInterval = 3*wait, time.Hour })
	stalled := dialStalling(t, b, "/v1/libraries/lib-1/ws")
	connected(t, stalled) // and no more reads
	good := dial(t, b, "/v1/libraries/lib-1/ws")
	connected(t, good)
	big := `{"pad":"` + strings.Repeat("x", 64<<10) + `"}`
	for i := range 200 { // 12.5 MiB: more than the stalled socket's buffers
		seq, _ := e.publish(t, ev{lib: "lib-1", data: big})
		if f := read(t, good); f.Seq != seq {
			t.Fatalf("event %d: seq %d, want %d", i, f.Seq, seq)
		}
	}
	// Closing the stalled client ends the bridge's blocked write to it.
	_ = stalled.CloseNow()
}
