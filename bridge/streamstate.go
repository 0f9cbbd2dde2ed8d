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

// streamInfo reads the stream's state now (not cached).
func (b *Bridge) streamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, streamInfoTimeout)
	defer cancel()
	s, err := b.js.Stream(ctx, broker.StreamName)
	if err != nil {
		return nil, err
	}
	return s.CachedInfo(), nil
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
