package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// connsClientEnv, set to "1", makes a process a client process of the
// conns scenario: see [ConnsClientRequested].
const connsClientEnv = "ARRWCDC_BENCH_CONNS_CLIENT"

// ConnsClientRequested reports whether this process was started by the
// conns scenario as one of its client processes; the process then runs
// [RunConnsClient] instead of its usual work.
func ConnsClientRequested() bool { return os.Getenv(connsClientEnv) == "1" }

// connsJob is what the conns scenario asks of one client process: the
// first line of its stdin.
type connsJob struct {
	URL    string   `json:"url"`    // ws://host:port/v1/libraries/
	Libs   []string `json:"libs"`   // library ids; client i watches Libs[i % len]
	First  int      `json:"first"`  // global index of this process's first client
	Count  int      `json:"count"`  // clients to open
	Source string   `json:"source"` // local IP address to dial from ("" = any)
	Dials  int      `json:"dials"`  // dials in flight at once
}

// connsStatus is one line a client process writes to its stdout: its
// state so far. Final is set on the last line, after the clients closed.
type connsStatus struct {
	Connected   int64  `json:"connected"`
	Failed      int64  `json:"failed"`
	DialError   string `json:"dial_error,omitempty"` // the first
	Frames      int64  `json:"frames"`               // event frames received, all clients
	Complete    int64  `json:"complete"`             // clients with every expected frame
	Excess      int64  `json:"excess"`               // frames beyond the expected ones
	Closed      int64  `json:"closed"`               // clients the server closed
	CloseReason string `json:"close_reason,omitempty"`
	RSS         uint64 `json:"rss"` // this process's VmRSS
	NoFile      uint64 `json:"nofile"`
	Final       bool   `json:"final,omitempty"`
}

// connsClient is one idle client socket of a client process.
type connsClient struct {
	lib  int
	got  atomic.Int64
	conn *websocket.Conn
}

// RunConnsClient is the body of a client process of the conns scenario.
// It reads a job (one JSON line) from in, opens its clients, then writes
// its status to out as JSON lines, every 100 ms while it changes. Later
// lines of in are commands: "expect [n0,n1,…]" gives the event frames
// each library's clients are to receive (a client is complete when it
// has them). At EOF of in (the parent closed it, or died) it closes every
// client, writes the final status and returns.
func RunConnsClient(ctx context.Context, in io.Reader, out io.Writer) error {
	nofile, _ := raiseNoFile()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	if !sc.Scan() {
		return fmt.Errorf("bench: conns client: no job on stdin: %v", sc.Err())
	}
	var job connsJob
	if err := json.Unmarshal(sc.Bytes(), &job); err != nil {
		return fmt.Errorf("bench: conns client: job: %w", err)
	}
	if len(job.Libs) == 0 || job.Count < 0 {
		return errors.New("bench: conns client: empty job")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		mu          sync.Mutex
		st          = connsStatus{NoFile: nofile}
		expect      []int64 // per library; nil until told
		clients     = make([]*connsClient, job.Count)
		readers     sync.WaitGroup
		stopping    atomic.Bool
		changed     = make(chan struct{}, 1)
		frames      atomic.Int64
		closedCount atomic.Int64
	)
	poke := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	// The writer of status lines.
	enc := json.NewEncoder(out)
	status := func(final bool) error {
		mu.Lock()
		s := st
		exp := expect
		mu.Unlock()
		s.Frames = frames.Load()
		s.Closed = closedCount.Load()
		if exp != nil {
			for _, c := range clients {
				if c == nil {
					continue
				}
				n, want := c.got.Load(), exp[c.lib]
				if n >= want {
					s.Complete++
				}
				if n > want {
					s.Excess += n - want
				}
			}
		}
		s.RSS, _ = readRSS()
		s.Final = final
		return enc.Encode(s)
	}
	statusDone := make(chan struct{})
	go func() {
		defer close(statusDone)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-changed:
			}
			if status(false) != nil {
				cancel()
				return
			}
			select { // at most one line a tick
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()

	// The commands: expect, then EOF.
	inDone := make(chan struct{})
	go func() {
		defer close(inDone)
		for sc.Scan() {
			cmd, arg, _ := strings.Cut(sc.Text(), " ")
			if cmd == "expect" {
				var e []int64
				if err := json.Unmarshal([]byte(arg), &e); err == nil && len(e) == len(job.Libs) {
					mu.Lock()
					expect = e
					mu.Unlock()
					poke()
				}
			}
		}
	}()

	// Dial.
	var src *net.TCPAddr
	if job.Source != "" {
		src = &net.TCPAddr{IP: net.ParseIP(job.Source)}
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{LocalAddr: src, Timeout: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: -1,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	sem := make(chan struct{}, max(job.Dials, 1))
	var dials sync.WaitGroup
	for i := range job.Count {
		select {
		case <-inDone: // the parent gave up
		case sem <- struct{}{}:
		}
		if ctx.Err() != nil || isClosed(inDone) {
			break
		}
		c := &connsClient{lib: (job.First + i) % len(job.Libs)}
		dials.Go(func() {
			defer func() { <-sem }()
			err := c.dial(ctx, hc, job.URL+job.Libs[c.lib]+"/ws")
			mu.Lock()
			if err != nil {
				st.Failed++
				if st.DialError == "" {
					st.DialError = err.Error()
				}
			} else {
				st.Connected++
				clients[i] = c
			}
			mu.Unlock()
			poke()
			if err != nil {
				return
			}
			readers.Go(func() {
				reason := c.read(&frames, &stopping, poke)
				if reason != "" {
					closedCount.Add(1)
					mu.Lock()
					if st.CloseReason == "" {
						st.CloseReason = reason
					}
					mu.Unlock()
				}
			})
		})
	}
	dials.Wait()
	poke()

	<-inDone
	stopping.Store(true)
	for _, c := range clients {
		if c != nil {
			_ = c.conn.CloseNow()
		}
	}
	readers.Wait()
	cancel()
	<-statusDone
	return status(true)
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// dial opens the socket and reads its connected frame.
func (c *connsClient) dial(ctx context.Context, hc *http.Client, url string) error {
	dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(dctx, url, &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return fmt.Errorf("HTTP %d: %w", resp.StatusCode, err)
		}
		return err
	}
	conn.SetReadLimit(1 << 21)
	_, hello, err := conn.Read(dctx)
	if err != nil {
		_ = conn.CloseNow()
		return fmt.Errorf("first frame: %w", err)
	}
	if !strings.Contains(string(hello), `"type":"connected"`) {
		_ = conn.CloseNow()
		return fmt.Errorf("first frame is not connected: %.200s", hello)
	}
	c.conn = conn
	return nil
}

// read counts event frames until the connection ends; it returns why the
// server closed it ("" when the bench closed it).
func (c *connsClient) read(frames *atomic.Int64, stopping *atomic.Bool, poke func()) string {
	var head [16]byte
	for {
		_, rd, err := c.conn.Reader(context.Background())
		if err != nil {
			if stopping.Load() {
				return ""
			}
			if ce, ok := errors.AsType[websocket.CloseError](err); ok {
				return fmt.Sprintf("close %d %s", ce.Code, ce.Reason)
			}
			return err.Error()
		}
		n, _ := io.ReadFull(rd, head[:])
		_, _ = io.Copy(io.Discard, rd)
		if strings.HasPrefix(string(head[:n]), `{"type":"event"`) {
			c.got.Add(1)
			frames.Add(1)
			poke()
		}
	}
}
