package publisher

import (
	"context"
	"time"
)

// Future is the outcome of a [Publisher.PublishAsync], available once
// [Future.Done] is closed. It is safe for concurrent use.
type Future struct {
	done chan struct{}
	ack  Ack   // set before done is closed
	err  error // set before done is closed

	// What an async publish needs until it is resolved, under
	// Publisher.async.mu once registered (async.go).
	msg      prepared    // to send it again after "no responders"
	token    uint64      // of its reply subject
	deadline time.Time   // for its ack
	retries  int         // "no responders" answers so far
	retry    *time.Timer // set while it waits to be sent again
}

// ID is the event's id, known before the ack.
func (f *Future) ID() string { return f.msg.id }

// Done is closed when the publish is acknowledged or has failed.
func (f *Future) Done() <-chan struct{} { return f.done }

// Wait returns the ack, or the publish's error (wrapping the cause, as
// "publish <subject>: <cause>"), once the publish is resolved. If ctx ends
// first, Wait returns ctx's error and the publish goes on: wait again, or
// let [Publisher.Close] wait for it.
func (f *Future) Wait(ctx context.Context) (Ack, error) {
	select {
	case <-f.done:
		return f.ack, f.err
	default:
	}
	select {
	case <-f.done:
		return f.ack, f.err
	case <-ctx.Done():
		return Ack{}, ctx.Err()
	}
}

// resolve records the outcome; it is called exactly once.
func (f *Future) resolve(ack Ack, err error) {
	f.ack, f.err = ack, err
	close(f.done)
}
