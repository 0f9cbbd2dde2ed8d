package bridge

import (
	"bytes"
	"errors"
	"net"
	"testing"
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

func TestBatchConn(t *testing.T) {
	under := &countConn{}
	c := &batchConn{Conn: under}
	_, _ = c.Write([]byte("hello")) // outside a batch: straight through
	c.begin()
	for _, s := range []string{"a", "bb", "ccc"} {
		if n, err := c.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if len(under.writes) != 1 {
		t.Fatalf("%d writes before end", len(under.writes))
	}
	if err := c.end(); err != nil {
		t.Fatal(err)
	}
	if len(under.writes) != 2 || string(under.writes[1]) != "abbccc" {
		t.Fatalf("writes %q, want the batch in one", under.writes)
	}
	// A batch over maxBatchBytes is written as it fills.
	c.begin()
	big := bytes.Repeat([]byte("x"), maxBatchBytes/2+1)
	_, _ = c.Write(big)
	_, _ = c.Write(big)
	_, _ = c.Write([]byte("tail"))
	_ = c.end()
	if len(under.writes) != 4 || len(under.writes[2]) != 2*len(big) || string(under.writes[3]) != "tail" {
		t.Fatalf("%d writes", len(under.writes))
	}
	// An empty batch writes nothing; an error sticks.
	c.begin()
	_ = c.end()
	under.err = errors.New("broken")
	c.begin()
	_, _ = c.Write([]byte("lost"))
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
