package bridge

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// countConn records each Write it gets.
type countConn struct {
	net.Conn
	writes [][]byte
	err    error
}

func (c *countConn) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

// frames returns the text messages framed in b; it fails t on anything
// else.
func frames(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	for len(b) > 0 {
		if len(b) < 2 || b[0] != 0x81 || b[1]&0x80 != 0 {
			t.Fatalf("not an unmasked final text frame: % x", b[:min(len(b), 10)])
		}
		n, h := int(b[1]), 2
		switch n {
		case 126:
			n, h = int(b[2])<<8|int(b[3]), 4
		case 127:
			n, h = 0, 10
			for _, c := range b[2:10] {
				n = n<<8 | int(c)
			}
		}
		if len(b) < h+n {
			t.Fatalf("frame of %d bytes, %d left", n, len(b)-h)
		}
		out = append(out, string(b[h:h+n]))
		b = b[h+n:]
	}
	return out
}

func TestBatchConn(t *testing.T) {
	under := &countConn{}
	c := &batchConn{Conn: under}
	_, _ = c.Write([]byte("hello")) // outside a batch: straight through
	c.begin()
	for _, s := range []string{"a", "bb", "ccc"} {
		if err := c.frame([]byte(s)); err != nil {
			t.Fatalf("frame: %v", err)
		}
	}
	if len(under.writes) != 1 {
		t.Fatalf("%d writes before end", len(under.writes))
	}
	if err := c.end(); err != nil {
		t.Fatal(err)
	}
	if len(under.writes) != 2 || strings.Join(frames(t, under.writes[1]), ",") != "a,bb,ccc" {
		t.Fatalf("writes %q, want the batch in one", under.writes)
	}
	// A batch over maxBatchBytes is written as it fills.
	c.begin()
	big := bytes.Repeat([]byte("x"), maxBatchBytes/2+1)
	_ = c.frame(big)
	_ = c.frame(big)
	_ = c.frame([]byte("tail"))
	_ = c.end()
	if len(under.writes) != 4 || len(frames(t, under.writes[2])) != 2 || frames(t, under.writes[3])[0] != "tail" {
		t.Fatalf("%d writes", len(under.writes))
	}
	// An empty batch writes nothing; an error sticks.
	c.begin()
	_ = c.end()
	under.err = errors.New("broken")
	c.begin()
	_ = c.frame([]byte("lost"))
	if err := c.end(); err == nil {
		t.Fatal("end hid the write error")
	}
	if _, err := c.Write([]byte("after")); err == nil {
		t.Fatal("write after an error succeeded")
	}
	if len(under.writes) != 4 {
		t.Fatalf("%d writes", len(under.writes))
	}
}

// TestFrameHeader: the three length encodings of RFC 6455, read back by
// a WebSocket client.
func TestFrameHeader(t *testing.T) {
	srv, cli := net.Pipe()
	defer cli.Close()
	sizes := []int{0, 125, 126, 0xffff, 0x10000}
	go func() {
		defer srv.Close()
		c := &batchConn{Conn: srv}
		for _, n := range sizes {
			c.begin()
			_ = c.frame(bytes.Repeat([]byte{'x'}, n))
			if c.end() != nil {
				return
			}
		}
	}()
	br := bufio.NewReader(cli)
	for _, n := range sizes {
		b := make([]byte, 0, n+10)
		var hdr [2]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			t.Fatal(err)
		}
		b = append(b, hdr[:]...)
		ext := map[byte]int{126: 2, 127: 8}[hdr[1]]
		rest := make([]byte, ext)
		if _, err := io.ReadFull(br, rest); err != nil {
			t.Fatal(err)
		}
		b = append(b, rest...)
		got := frames(t, append(b, make([]byte, n)...))
		if len(got) != 1 || len(got[0]) != n {
			t.Fatalf("size %d: header % x", n, b)
		}
		if _, err := io.ReadFull(br, make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBatchConnTry: a direct batch takes one attempt; what the socket
// does not take is owed and goes out before anything written later,
// control frame or batch; while bytes are owed, no direct batch starts.
func TestBatchConnTry(t *testing.T) {
	under := &countConn{}
	var room int // what the socket takes at the next attempt
	c := &batchConn{Conn: under, try: func(b []byte) (int, error) {
		n := min(room, len(b))
		under.writes = append(under.writes, bytes.Clone(b[:n]))
		return n, nil
	}}
	room = 1 << 20
	if !c.tryBegin() {
		t.Fatal("tryBegin failed")
	}
	_ = c.frame([]byte("one"))
	if done, err := c.tryEnd(); !done || err != nil {
		t.Fatalf("tryEnd = %v, %v", done, err)
	}
	room = 3
	c.tryBegin()
	_ = c.frame([]byte("two"))
	_ = c.frame([]byte("three"))
	if done, err := c.tryEnd(); done || err != nil {
		t.Fatalf("tryEnd with a full socket = %v, %v", done, err)
	}
	if c.tryBegin() {
		t.Fatal("tryBegin while bytes are owed")
	}
	_, _ = c.Write([]byte{0x89, 0}) // a ping, outside a batch: after what is owed
	c.begin()
	_ = c.frame([]byte("four"))
	if err := c.end(); err != nil {
		t.Fatal(err)
	}
	all := bytes.Join(under.writes, nil)
	ping := bytes.Index(all, []byte{0x89, 0})
	if ping < 0 {
		t.Fatalf("no ping in % x", all)
	}
	if got := strings.Join(frames(t, append(all[:ping:ping], all[ping+2:]...)), ","); got != "one,two,three,four" {
		t.Fatalf("frames %q", got)
	}
	if want := len("\x81\x03one\x81\x03two\x81\x05three"); ping != want {
		t.Fatalf("ping at byte %d, want it after what was owed (%d)", ping, want)
	}
	if !c.tryBegin() {
		t.Fatal("tryBegin failed once nothing was owed")
	}
	_, _ = c.tryEnd()
}

// TestBatchConnClose: after websocket.Conn wrote a close frame, no data
// frame follows it, directly or not.
func TestBatchConnClose(t *testing.T) {
	under := &countConn{}
	c := &batchConn{Conn: under, try: func(b []byte) (int, error) { return len(b), nil }}
	_, _ = c.Write([]byte{0x88, 2, 0x03, 0xe8}) // close 1000
	c.begin()
	if err := c.frame([]byte("late")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("frame after close: %v", err)
	}
	_ = c.end()
	if c.tryBegin() {
		t.Fatal("tryBegin after close")
	}
	if len(under.writes) != 1 {
		t.Fatalf("writes %q", under.writes)
	}
}

// blockConn blocks its Writes until release is closed.
type blockConn struct {
	net.Conn
	entered, release chan struct{}
}

func (c *blockConn) Write(p []byte) (int, error) {
	close(c.entered)
	<-c.release
	return len(p), nil
}

// TestBatchConnTryBusy: while another goroutine is stuck in a blocking
// write (a pong to a client that does not read), tryBegin fails at once
// instead of waiting for it.
func TestBatchConnTryBusy(t *testing.T) {
	under := &blockConn{entered: make(chan struct{}), release: make(chan struct{})}
	c := &batchConn{Conn: under, try: func(b []byte) (int, error) { return len(b), nil }}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = c.Write([]byte{0x8a, 0}) // a pong
	}()
	<-under.entered
	if c.tryBegin() {
		t.Fatal("tryBegin while a write blocks")
	}
	close(under.release)
	<-done
	if !c.tryBegin() {
		t.Fatal("tryBegin failed once the write was done")
	}
	_, _ = c.tryEnd()
}

// deadlineConn records, for each Write, whether a write deadline was set.
type deadlineConn struct {
	net.Conn
	deadline time.Time
	writes   []bool // a deadline was set
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error { c.deadline = t; return nil }

func (c *deadlineConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, !c.deadline.IsZero())
	return len(p), nil
}

// TestBatchConnOwedDeadline: bytes a direct write left are written under
// the write deadline, also when a control frame (a ping, a close frame)
// is what pays them, outside a batch.
func TestBatchConnOwedDeadline(t *testing.T) {
	under := &deadlineConn{}
	c := &batchConn{Conn: under, timeout: time.Second, try: func(b []byte) (int, error) { return len(b) / 2, nil }}
	c.tryBegin()
	_ = c.frame([]byte("owed in part"))
	if done, err := c.tryEnd(); done || err != nil {
		t.Fatalf("tryEnd = %v, %v", done, err)
	}
	_, _ = c.Write([]byte{0x89, 0}) // a ping: pays what is owed first
	if len(under.writes) != 2 || !under.writes[0] {
		t.Fatalf("writes with a deadline: %v, want the owed bytes' with one", under.writes)
	}
	if !under.deadline.IsZero() {
		t.Fatal("deadline left set")
	}
	c.begin()
	_ = c.frame([]byte("batch"))
	if err := c.end(); err != nil || len(under.writes) != 3 || !under.writes[2] || !under.deadline.IsZero() {
		t.Fatalf("a batch: %v, writes with a deadline %v, deadline %v", err, under.writes, under.deadline)
	}
}
