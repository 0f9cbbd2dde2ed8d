package bridge

import (
	"sync/atomic"

	"github.com/nats-io/nats.go"
)

// SetLiveHook makes the rooms of b show each live message to f first; f
// returning false drops it, as if live delivery had lost it. nil removes
// the hook.
func SetLiveHook(b *Bridge, f func(*nats.Msg) bool) {
	if f == nil {
		b.liveHook.Store(nil)
		return
	}
	b.liveHook.Store(&f)
}

// directWrites counts the direct writes of every bridge of the test
// binary (tests are not parallel).
var directWrites atomic.Int64

func init() {
	f := func() { directWrites.Add(1) }
	directHook.Store(&f)
}

// DirectWrites is how many direct writes (a room writing to a client's
// socket itself, batchConn.tryEnd) all bridges of the test binary made.
func DirectWrites() int64 { return directWrites.Load() }

// replayConsumers counts the ordered consumers that replays and re-syncs
// of every bridge of the test binary obtained and did not delete yet.
var replayConsumers atomic.Int64

func init() {
	f := func(delta int) { replayConsumers.Add(int64(delta)) }
	consumerHook.Store(&f)
}

// ReplayConsumers is how many ordered consumers the bridges of the test
// binary obtained and have not deleted.
func ReplayConsumers() int64 { return replayConsumers.Load() }
