//go:build unix

package bridge

import (
	"crypto/tls"
	"net"
	"testing"
)

// wrapConn is a listener's wrapper: it embeds the concrete *net.TCPConn
// (so it is a syscall.Conn) and has a Write of its own.
type wrapConn struct {
	*net.TCPConn
	written int
}

func (c *wrapConn) Write(p []byte) (int, error) { c.written += len(p); return c.TCPConn.Write(p) }

// Only net's own connections get a raw write: a *tls.Conn or a wrapper
// with its own Write must be written through.
func TestTryWriterTypes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if tryWriter(sc) == nil {
		t.Error("*net.TCPConn: no raw write")
	}
	if tryWriter(tls.Server(sc, &tls.Config{})) != nil {
		t.Error("*tls.Conn: raw write")
	}
	if tryWriter(&wrapConn{TCPConn: sc.(*net.TCPConn)}) != nil {
		t.Error("wrapper embedding *net.TCPConn with its own Write: raw write")
	}
}
