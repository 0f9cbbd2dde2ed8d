package bridge

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"time"
)

// maxBatchBytes bounds what a socket collects before it writes anyway.
const maxBatchBytes = 64 << 10

// wsReadBuf and wsWriteBuf size the bufio.Reader and bufio.Writer that
// websocket.Conn keeps for a connection's whole life; net/http's 4 KiB
// pair would be most of an idle connection's memory. The bridge reads
// only control frames and the header of an unexpected data message: a
// pong to its ping (its payload is a counter) fits in 64 bytes, a larger
// control frame takes two reads. It writes its frames in batches that
// batchConn collects (bufio passes a frame larger than its buffer
// through), so the writer's buffer only has to hold a control frame to
// send it in one write: a ping, or a close frame with the longest reason
// the bridge sends (61 bytes with a 20-digit seq).
const (
	wsReadBuf  = 64
	wsWriteBuf = 64
)

// batchPool recycles batch buffers, so idle clients hold none.
var batchPool = sync.Pool{New: func() any { return new([]byte) }}

// batchConn is a socket's hijacked connection. websocket.Conn flushes one
// message per write; between begin and end (one round of the client's
// writer draining its queue), batchConn collects those writes and sends
// them with one system call, so a client with several queued frames gets
// them in one write. Outside a batch (pings, pongs, close frames), writes
// go straight through. A batch's write to the socket has a deadline of
// timeout (if set): a client stuck in it fails the write.
type batchConn struct {
	net.Conn
	timeout  time.Duration // set before the first batch
	mu       sync.Mutex
	batching bool
	buf      *[]byte // from batchPool while batching
	err      error   // the first write error; every later write fails
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if !c.batching {
		n, err := c.Conn.Write(p)
		c.err = err
		return n, err
	}
	*c.buf = append(*c.buf, p...)
	if len(*c.buf) >= maxBatchBytes {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (c *batchConn) flushLocked() error {
	if c.err == nil && len(*c.buf) > 0 {
		if c.timeout > 0 {
			_ = c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
		}
		_, c.err = c.Conn.Write(*c.buf)
		if c.timeout > 0 && c.err == nil {
			_ = c.Conn.SetWriteDeadline(time.Time{})
		}
	}
	*c.buf = (*c.buf)[:0]
	return c.err
}

// begin starts collecting writes.
func (c *batchConn) begin() {
	c.mu.Lock()
	c.batching = true
	c.buf = batchPool.Get().(*[]byte)
	c.mu.Unlock()
}

// end writes what was collected and stops collecting.
func (c *batchConn) end() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.flushLocked()
	c.batching = false
	if cap(*c.buf) <= 2*maxBatchBytes {
		batchPool.Put(c.buf)
	}
	c.buf = nil
	return err
}

// batchWriter hands websocket.Accept a batchConn when it hijacks, with
// small buffers (wsReadBuf, wsWriteBuf) instead of the server's.
type batchWriter struct {
	http.ResponseWriter
	conn *batchConn // set by Hijack
}

func (w *batchWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *batchWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		nc.Close()
		return nil, nil, err
	}
	w.conn = &batchConn{Conn: nc}
	br := brw.Reader
	if br.Buffered() == 0 { // else the client sent ahead: keep what it sent
		br = bufio.NewReaderSize(w.conn, wsReadBuf)
	}
	return w.conn, bufio.NewReadWriter(br, bufio.NewWriterSize(w.conn, wsWriteBuf)), nil
}
