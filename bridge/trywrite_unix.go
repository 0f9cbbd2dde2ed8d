//go:build unix

package bridge

import (
	"errors"
	"net"
	"syscall"
)

// tryWriter returns a function that writes to nc's socket with one
// non-blocking attempt (what the socket takes: all, part or nothing), or
// nil if nc has no socket to write so. Only the exact types of net's own
// connections qualify: any other syscall.Conn (a *tls.Conn does not
// implement it, but a listener's wrapper that embeds a *net.TCPConn
// does) may have a Write of its own that a raw write would bypass. The
// function is not safe for concurrent use: the batchConn calls it under
// its lock.
func tryWriter(nc net.Conn) func([]byte) (int, error) {
	var sc syscall.Conn
	switch c := nc.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	t := &rawTry{raw: raw}
	t.attemptFn = t.attempt // made once: a closure per write cost an allocation a frame
	return t.write
}

// rawTry is one socket's non-blocking write, with what an attempt needs
// kept in fields rather than captured by a closure made for every write.
type rawTry struct {
	raw       syscall.RawConn
	attemptFn func(fd uintptr) bool
	b         []byte
	n         int
	err       error
}

func (t *rawTry) write(b []byte) (int, error) {
	t.b = b
	rerr := t.raw.Write(t.attemptFn)
	n, err := t.n, t.err
	t.b, t.n, t.err = nil, 0, nil
	if n < 0 {
		n = 0
	}
	if errors.Is(err, syscall.EAGAIN) {
		err = nil // the socket is full: nothing taken
	}
	if rerr != nil {
		err = rerr // closed
	}
	return n, err
}

// attempt writes once (again only if interrupted): it never waits for the
// socket.
func (t *rawTry) attempt(fd uintptr) bool {
	for {
		t.n, t.err = syscall.Write(int(fd), t.b)
		if !errors.Is(t.err, syscall.EINTR) {
			return true
		}
	}
}
