package bridge

import (
	"bufio"
	"encoding/binary"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// maxBatchBytes bounds what a socket collects before it writes anyway.
const maxBatchBytes = 64 << 10

// wsReadBuf and wsWriteBuf size the bufio.Reader and bufio.Writer that
// websocket.Conn keeps for a connection's whole life; net/http's 4 KiB
// pair would be most of an idle connection's memory. The bridge reads
// only control frames and the header of an unexpected data message: a
// pong to its ping (its payload is a counter) fits in 64 bytes, a larger
// control frame takes two reads. websocket.Conn writes only control
// frames (the bridge frames its data messages itself, batchConn.frame):
// a ping, a pong or a close frame is at most 2+125 bytes, so with a
// 128-byte buffer each reaches batchConn whole, in one Write, and never
// interleaves with the data frames batchConn collects.
const (
	wsReadBuf  = 64
	wsWriteBuf = 128
)

// batchPool recycles batch buffers, so idle clients hold none.
var batchPool = sync.Pool{New: func() any { return new([]byte) }}

// getBatchBuf takes an empty batch buffer from the pool.
func getBatchBuf() *[]byte {
	bp := batchPool.Get().(*[]byte)
	*bp = (*bp)[:0]
	return bp
}

// putBatchBuf gives a batch buffer back, unless a rare large batch grew it
// past twice the usual size.
func putBatchBuf(bp *[]byte) {
	if cap(*bp) <= 2*maxBatchBytes {
		*bp = (*bp)[:0]
		batchPool.Put(bp)
	}
}

// batchConn is a socket's hijacked connection. The client's writer
// collects its frames between begin and end (one round of draining its
// queue) and sends them with one system call, so a client with several
// queued frames gets them in one write. Outside a batch (pings, pongs,
// close frames), writes go straight through. A batch's write to the
// socket, and that of bytes a direct write left (whichever write pays
// them), has a deadline of timeout (if set): a client stuck in it fails
// the write.
//
// A room may also write a batch itself, on its own goroutine
// (tryBegin, tryEnd): that write never blocks. It makes one attempt; what
// the socket does not take is owed, and the next write of any kind sends
// it first, so bytes keep their order.
type batchConn struct {
	net.Conn
	timeout time.Duration // set before the first batch
	// try writes with one non-blocking attempt and returns what the
	// socket took; nil when the connection cannot (tryBegin fails).
	try      func([]byte) (int, error)
	mu       sync.Mutex
	batching bool
	direct   bool    // the batch is a tryBegin one: nothing blocks until tryEnd
	buf      *[]byte // from batchPool while batching
	owed     []byte  // bytes a tryEnd could not write, sent before anything else
	closing  bool    // a close frame was written: no data frame may follow
	err      error   // the first write error; every later write fails
}

// Write takes what websocket.Conn writes: control frames only, each
// whole (wsWriteBuf). A close frame ends the data frames.
func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if len(p) > 0 && p[0] == 0x80|opClose { // FIN, close: a control frame is never fragmented
		c.closing = true
	}
	if !c.batching {
		if err := c.payOwedLocked(); err != nil {
			return 0, err
		}
		n, err := c.Conn.Write(p)
		c.err = err
		return n, err
	}
	*c.buf = append(*c.buf, p...)
	return len(p), nil
}

// WebSocket opcodes (RFC 6455 §5.2) the bridge writes or watches for.
const (
	opText  = 0x1
	opClose = 0x8
)

// frame adds one text message to the batch, framed as a server sends it
// (FIN, unmasked). Once a close frame was written, it fails with
// net.ErrClosed.
func (c *batchConn) frame(p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	if c.closing {
		return net.ErrClosed
	}
	*c.buf = appendFrameHeader(*c.buf, len(p))
	*c.buf = append(*c.buf, p...)
	if !c.direct && len(*c.buf) >= maxBatchBytes {
		return c.flushLocked()
	}
	return nil
}

// appendFrameHeader appends the header of an unmasked final text frame
// of n bytes.
func appendFrameHeader(b []byte, n int) []byte {
	b = append(b, 0x80|opText)
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
	}
}

// payOwedLocked writes the owed bytes, blocking for timeout at most
// (mu held): a control frame written after a partial direct write pays
// them under the same deadline as a batch.
func (c *batchConn) payOwedLocked() error {
	if len(c.owed) == 0 {
		return nil
	}
	c.err = c.writeLocked(c.owed)
	c.owed = nil
	return c.err
}

// writeLocked writes b with a deadline of timeout (if set).
func (c *batchConn) writeLocked(b []byte) error {
	if c.timeout > 0 {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	}
	_, err := c.Conn.Write(b)
	if c.timeout > 0 && err == nil {
		_ = c.Conn.SetWriteDeadline(time.Time{})
	}
	return err
}

func (c *batchConn) flushLocked() error {
	if c.err == nil && c.payOwedLocked() == nil && len(*c.buf) > 0 {
		c.err = c.writeLocked(*c.buf)
	}
	*c.buf = (*c.buf)[:0]
	return c.err
}

// begin starts collecting writes.
func (c *batchConn) begin() {
	c.mu.Lock()
	c.startLocked(false)
	c.mu.Unlock()
}

func (c *batchConn) startLocked(direct bool) {
	c.batching, c.direct = true, direct
	c.buf = getBatchBuf()
}

// end writes what was collected (after what is owed) and stops
// collecting.
func (c *batchConn) end() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.flushLocked()
	c.stopLocked()
	return err
}

func (c *batchConn) stopLocked() {
	c.batching, c.direct = false, false
	putBatchBuf(c.buf)
	c.buf = nil
}

// tryBegin starts a batch that tryEnd writes without blocking. It fails
// (false) if the connection cannot write so, owes bytes already, failed,
// or is busy in a blocking write of another goroutine (a pong to a
// client that does not read): then the client's writer is the one to
// write.
func (c *batchConn) tryBegin() bool {
	if c.try == nil || !c.mu.TryLock() {
		return false
	}
	defer c.mu.Unlock()
	if c.err != nil || c.closing || len(c.owed) > 0 {
		return false
	}
	c.startLocked(true)
	return true
}

// tryEnd writes the batch of tryBegin with one attempt that never
// blocks, and stops collecting. done is false if the socket did not take
// it all: the rest is owed, and the next end (on the client's writer)
// writes it first.
func (c *batchConn) tryEnd() (done bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.stopLocked()
	b := *c.buf
	if c.err != nil {
		return false, c.err
	}
	if len(b) == 0 {
		return true, nil
	}
	n, err := c.try(b)
	if h := directHook.Load(); h != nil {
		(*h)()
	}
	if err != nil {
		c.err = err
		return false, err
	}
	if n < len(b) {
		c.owed = append([]byte(nil), b[n:]...)
		return false, nil
	}
	return true, nil
}

// directHook, if set (tests), is called for each direct write.
var directHook atomic.Pointer[func()]

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
	w.conn = &batchConn{Conn: nc, try: tryWriter(nc)}
	br := brw.Reader
	if br.Buffered() == 0 { // else the client sent ahead: keep what it sent
		br = bufio.NewReaderSize(w.conn, wsReadBuf)
	}
	return w.conn, bufio.NewReadWriter(br, bufio.NewWriterSize(w.conn, wsWriteBuf)), nil
}
