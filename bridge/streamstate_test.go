package bridge

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/arrwdb/arrwcdc/internal/testnats"
)

// TestInfoReadsShareOnlyLaterRequests checks the coalescing of stream info
// requests: callers that arrive while a request is out share the next one,
// never the one already sent, and a burst costs two requests, not one each.
func TestInfoReadsShareOnlyLaterRequests(t *testing.T) {
	var q infoReads
	started := make(chan int, 10)
	release := make(chan struct{})
	calls := 0
	read := func() (*jetstream.StreamInfo, error) {
		calls++ // run's requests go one after another
		n := calls
		started <- n
		<-release
		return &jetstream.StreamInfo{State: jetstream.StreamState{LastSeq: uint64(n)}}, nil
	}
	defer q.wait()

	first := q.join(read)
	if n := <-started; n != 1 {
		t.Fatalf("first request is call %d", n)
	}
	// Ten callers while the first request is out: they must not get it.
	var later []*infoRead
	for range 10 {
		r := q.join(read)
		if r == first {
			t.Fatal("a caller shared a request sent before it called")
		}
		later = append(later, r)
	}
	for _, r := range later[1:] {
		if r != later[0] {
			t.Fatal("callers waiting together got different requests")
		}
	}
	release <- struct{}{}
	<-first.done
	if first.info.State.LastSeq != 1 {
		t.Errorf("first request: last seq %d, want 1", first.info.State.LastSeq)
	}
	if n := <-started; n != 2 {
		t.Fatalf("second request is call %d", n)
	}
	release <- struct{}{}
	select {
	case <-later[0].done:
	case <-time.After(5 * time.Second):
		t.Fatal("the shared second request never finished")
	}
	if got := later[0].info.State.LastSeq; got != 2 {
		t.Errorf("the later callers got last seq %d, want 2 (the request sent after they called)", got)
	}
	// The run ends once nobody waits for a next request.
	testnats.Eventually(t, 5*time.Second, func() error {
		q.mu.Lock()
		defer q.mu.Unlock()
		if q.running {
			return errors.New("the requests' goroutine is still running")
		}
		return nil
	})
	// calls was written before running was cleared under q.mu.
	if calls != 2 {
		t.Errorf("%d requests for 11 callers, want 2", calls)
	}
	// Idle again: the next caller sends a request of its own at once.
	r := q.join(read)
	<-started
	close(release)
	<-r.done
	if r.info.State.LastSeq != 3 {
		t.Errorf("after idle: last seq %d, want 3", r.info.State.LastSeq)
	}
	// After wait (Shutdown), callers are refused without a request.
	q.wait()
	if r := q.join(read); r.err != errClosing {
		t.Errorf("after wait: err %v, want errClosing", r.err)
	}
}
