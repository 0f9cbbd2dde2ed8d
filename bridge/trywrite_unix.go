//go:build unix

package bridge

import (
	"errors"
	"net"
	"syscall"
)

// tryWriter returns a function that writes to nc's socket with one
// non-blocking attempt (what the socket takes: all, part or nothing), or
// nil if nc has no socket to write so.
func tryWriter(nc net.Conn) func([]byte) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return func(b []byte) (n int, err error) {
		rerr := raw.Write(func(fd uintptr) bool {
			for {
				n, err = syscall.Write(int(fd), b)
				if !errors.Is(err, syscall.EINTR) {
					return true // one attempt: never wait for the socket
				}
			}
		})
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
}
