package bridge

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/arrwdb/arrwcdc/broker"
)

// streamStateTTL is how long the statistics reuse the stream's state, so
// that polling the statistics does not poll JetStream.
const streamStateTTL = time.Second

// StreamState is the EVENTS stream as JetStream reports it, in
// [Stats.Stream]. Error is set (and the numbers are zero) when it could
// not be read.
type StreamState struct {
	Messages      uint64 `json:"messages"`
	Bytes         uint64 `json:"bytes"`
	FirstSeq      uint64 `json:"first_seq"`
	LastSeq       uint64 `json:"last_seq"`
	ConsumerCount int    `json:"consumer_count"`
	Error         string `json:"error,omitempty"`
}

// streamCache holds the last StreamState read and when.
type streamCache struct {
	mu    sync.Mutex // held while reading, so concurrent askers wait for one read
	state StreamState
	at    time.Time
}

// streamInfo reads the stream's state now: from a request sent after
// the call, so whatever was stored before the call is counted. Concurrent
// callers share requests (infoReads): a storm of connecting clients, say
// 50 000 after a bridge restart, costs JetStream's API a few requests,
// not one each. ctx bounds the caller's wait, not the shared request.
func (b *Bridge) streamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	r := b.infoReads.join(b.readStreamInfo)
	select {
	case <-r.done:
		return r.info, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// readStreamInfo sends one stream info request.
func (b *Bridge) readStreamInfo() (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(b.doneCtx, streamInfoTimeout)
	defer cancel()
	s, err := b.js.Stream(ctx, broker.StreamName)
	if err != nil {
		return nil, err
	}
	return s.CachedInfo(), nil
}

// infoReads runs at most one stream info request at a time. A caller
// never shares a request already sent (it could predate the caller's own
// subscription): it joins the next one, which goes out as soon as the
// current one is answered, on behalf of everyone who joined meanwhile.
type infoReads struct {
	mu      sync.Mutex
	running bool
	next    *infoRead // the request to send after the running one; nil: none yet
	closed  bool      // wait was called: no more requests
	wg      sync.WaitGroup
}

// infoRead is one shared request; info and err are set before done closes.
type infoRead struct {
	done chan struct{}
	info *jetstream.StreamInfo
	err  error
}

// join returns the request the caller is to wait for, starting it with
// read if none is running.
func (q *infoReads) join(read func() (*jetstream.StreamInfo, error)) *infoRead {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		r := &infoRead{done: make(chan struct{}), err: errClosing}
		close(r.done)
		return r
	}
	if q.next == nil {
		q.next = &infoRead{done: make(chan struct{})}
	}
	r := q.next
	if !q.running {
		q.running, q.next = true, nil
		q.wg.Go(func() { q.run(r, read) })
	}
	return r
}

// wait refuses new requests (errClosing) and waits for the running ones
// (Shutdown).
func (q *infoReads) wait() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.wg.Wait()
}

// run sends r, then the requests joined meanwhile, one after another.
func (q *infoReads) run(r *infoRead, read func() (*jetstream.StreamInfo, error)) {
	for r != nil {
		r.info, r.err = read()
		close(r.done)
		q.mu.Lock()
		r, q.next = q.next, nil
		q.running = r != nil
		q.mu.Unlock()
	}
}

// streamState returns the stream's state, read at most streamStateTTL ago.
func (b *Bridge) streamState() StreamState {
	c := &b.stream
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < streamStateTTL {
		return c.state
	}
	var st StreamState
	if !b.nc.IsConnected() {
		st.Error = "nats: " + b.nc.Status().String()
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		info, err := b.streamInfo(ctx)
		cancel()
		switch {
		case err != nil:
			st.Error = "stream " + broker.StreamName + ": " + err.Error()
		case info == nil:
			st.Error = "stream " + broker.StreamName + ": no info"
		default:
			st = StreamState{
				Messages:      info.State.Msgs,
				Bytes:         info.State.Bytes,
				FirstSeq:      info.State.FirstSeq,
				LastSeq:       info.State.LastSeq,
				ConsumerCount: info.State.Consumers,
			}
		}
	}
	c.state, c.at = st, time.Now()
	return st
}
