package bridge

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/arrwdb/arrwcdc/internal/testnats"
)

// gatedTransport holds its first end (the connected frame's write) until
// release is closed.
type gatedTransport struct {
	entered, release chan struct{}
	once             sync.Once
}

func (t *gatedTransport) end() error {
	t.once.Do(func() {
		close(t.entered)
		<-t.release
	})
	return nil
}
func (*gatedTransport) send(frameKind, uint64, []byte) error { return nil }
func (*gatedTransport) begin()                               {}
func (*gatedTransport) tryBegin() bool                       { return false }
func (*gatedTransport) tryEnd() (bool, error)                { return false, errNoDirect }
func (*gatedTransport) keepAlive() error                     { return nil }
func (*gatedTransport) closeSlow(string)                     {}
func (*gatedTransport) goingAway()                           {}
func (*gatedTransport) expired()                             {}
func (*gatedTransport) gone() <-chan struct{}                { return nil }
func (*gatedTransport) drop()                                {}

// TestFinishDuringHello: a resuming client's connection ends while its
// writer is still writing the connected frame. finish must return
// without waiting for the replay: the writer sees the end before it
// starts the replay (whose wait for items nothing else would wake). The
// broker is gone, so a replay, had it started, would yield nothing.
func TestFinishDuringHello(t *testing.T) {
	br := testnats.Broker(t)
	nc := testnats.Conn(t, br.ClientURL())
	b, err := New(Config{HTTPListen: "127.0.0.1:0", PingInterval: time.Hour}, nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.cancel()
	if err := br.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	cl := newClient(b, socketOptions{since: &sincePoint{seq: 0}}, "test", "websocket")
	tr := &gatedTransport{entered: make(chan struct{}), release: make(chan struct{})}
	cl.start(tr, start{hello: []byte(`{}`), replay: &readSpec{filters: []string{"events.library.lib.>"}, startSeq: 1}})
	<-tr.entered
	finished := make(chan struct{})
	go func() { cl.finish(); close(finished) }()
	testnats.Eventually(t, 5*time.Second, func() error {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		if !cl.ended {
			return errors.New("finish has not marked the client ended yet")
		}
		return nil
	})
	close(tr.release)
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		cl.mu.Lock()
		cl.wakeLocked() // let the test end
		cl.mu.Unlock()
		<-finished
		t.Fatal("finish waited for a replay that nothing wakes")
	}
	if cl.w.rp != nil {
		t.Error("the replay started after the client ended")
	}
}
