package bridge

import "github.com/nats-io/nats.go"

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
