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
	"strconv"
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

// The protocols of the client processes' sockets ([connsJob.Kind]): one
// for each server the conns scenarios measure.
const (
	// connsBridge: the bridge's /v1/libraries/{id}/ws; connected at its
	// {"type":"connected"} frame; counts {"type":"event"} frames.
	connsBridge = "bridge"
	// connsNATS: the NATS protocol over nats-server's websocket listener
	// (CONNECT, SUB, PING; connected at the PONG); counts MSG and HMSG,
	// answers PING.
	connsNATS = "nats"
	// connsCentrifugo: Centrifugo's JSON protocol (connect, subscribe;
	// connected at the subscribe reply); counts publication pushes,
	// answers its pings.
	connsCentrifugo = "centrifugo"
)

// connsJob is what the conns scenario asks of one client process: the
// first line of its stdin.
type connsJob struct {
	Kind string `json:"kind"` // connsBridge ("" too), connsNATS or connsCentrifugo
	// URL is what every client dials: ws://host:port/v1/libraries/ (the
	// bridge: + Libs[i] + "/ws"), the NATS websocket listener, or
	// Centrifugo's /connection/websocket.
	URL string `json:"url"`
	// Libs is, per library, what its clients subscribe to: the library id
	// (bridge), its live subject (NATS) or its channel (Centrifugo);
	// client i watches Libs[i % len].
	Libs   []string `json:"libs"`
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
	nats *bufio.Reader // connsNATS: the protocol stream of conn
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
			err := c.dial(ctx, hc, &job)
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
				reason := c.read(job.Kind, &frames, &stopping, poke)
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

// dial opens the socket and waits until it is connected in the job's
// protocol (see [connsBridge] and the others).
func (c *connsClient) dial(ctx context.Context, hc *http.Client, job *connsJob) error {
	dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	target, url := job.Libs[c.lib], job.URL
	if job.Kind == connsBridge || job.Kind == "" {
		url += target + "/ws"
	}
	conn, resp, err := websocket.Dial(dctx, url, &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return fmt.Errorf("HTTP %d: %w", resp.StatusCode, err)
		}
		return err
	}
	conn.SetReadLimit(1 << 21)
	switch job.Kind {
	case connsNATS:
		err = c.natsHello(dctx, conn, target)
	case connsCentrifugo:
		err = centrifugoSubscribe(dctx, conn, target)
	default:
		err = bridgeHello(dctx, conn)
	}
	if err != nil {
		_ = conn.CloseNow()
		return err
	}
	c.conn = conn
	return nil
}

// bridgeHello reads the bridge's connected frame.
func bridgeHello(ctx context.Context, conn *websocket.Conn) error {
	_, hello, err := conn.Read(ctx)
	if err != nil {
		return fmt.Errorf("first frame: %w", err)
	}
	if !strings.Contains(string(hello), `"type":"connected"`) {
		return fmt.Errorf("first frame is not connected: %.200s", hello)
	}
	return nil
}

// natsConnect is the client's CONNECT: no +OK for every command, headers
// (the live subjects carry them), no responders.
const natsConnect = `CONNECT {"verbose":false,"pedantic":false,"protocol":1,"headers":true,"no_responders":true}` + "\r\n"

// natsHello speaks the NATS protocol's start over conn: the server's
// INFO, then CONNECT, SUB subject and PING in one message, and waits for
// the PONG, after which the subscription is in place. The reads of the
// stream outlive ctx (a message's reader keeps the context it was opened
// with), so ctx's end closes conn instead.
func (c *connsClient) natsHello(ctx context.Context, conn *websocket.Conn, subject string) error {
	stop := context.AfterFunc(ctx, func() { _ = conn.CloseNow() })
	defer stop()
	br := bufio.NewReaderSize(&wsStream{conn: conn}, 1024)
	op, line, err := readNATSOp(br)
	if err != nil {
		return fmt.Errorf("nats INFO: %w", err)
	}
	if op != "INFO" {
		return fmt.Errorf("nats: first line is not INFO: %.200s", line)
	}
	if err := conn.Write(ctx, websocket.MessageBinary, []byte(natsConnect+"SUB "+subject+" 1\r\nPING\r\n")); err != nil {
		return err
	}
	for {
		op, line, err := readNATSOp(br)
		switch {
		case err != nil:
			return fmt.Errorf("nats PONG: %w", err)
		case op == "PONG":
			if !stop() {
				return ctx.Err()
			}
			c.nats = br
			return nil
		case op == "PING":
			if err := conn.Write(ctx, websocket.MessageBinary, []byte("PONG\r\n")); err != nil {
				return err
			}
		case op == "-ERR":
			return fmt.Errorf("nats: %s", line)
		}
	}
}

// wsStream reads the messages of a WebSocket as one byte stream: NATS over
// WebSocket does not align its protocol with the messages.
type wsStream struct {
	conn *websocket.Conn
	r    io.Reader // the message being read
}

func (s *wsStream) Read(p []byte) (int, error) {
	for {
		if s.r == nil {
			_, r, err := s.conn.Reader(context.Background())
			if err != nil {
				return 0, err
			}
			s.r = r
		}
		n, err := s.r.Read(p)
		if err == io.EOF {
			s.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

// readNATSOp reads one line of the NATS protocol from br and returns its
// operation in upper case and the line without CRLF; for MSG and HMSG it
// skips the payload (the line's last field is its size).
func readNATSOp(br *bufio.Reader) (op, line string, err error) {
	line, err = br.ReadString('\n')
	if err != nil {
		return "", "", err
	}
	line = strings.TrimRight(line, "\r\n")
	op, args, _ := strings.Cut(line, " ")
	op = strings.ToUpper(op)
	if op == "MSG" || op == "HMSG" {
		f := strings.Fields(args)
		n := -1
		if len(f) >= 3 {
			n, _ = strconv.Atoi(f[len(f)-1])
		}
		if n < 0 {
			return "", "", fmt.Errorf("nats: bad %s line %.200q", op, line)
		}
		if _, err := br.Discard(n + 2); err != nil {
			return "", "", err
		}
	}
	return op, line, nil
}

// read counts event frames (NATS: messages) until the connection ends; it
// returns why the server closed it ("" when the bench closed it).
func (c *connsClient) read(kind string, frames *atomic.Int64, stopping *atomic.Bool, poke func()) string {
	got := func() {
		c.got.Add(1)
		frames.Add(1)
		poke()
	}
	var err error
	if kind == connsNATS {
		err = c.readNATS(got)
	} else {
		err = c.readFrames(kind, got)
	}
	if stopping.Load() {
		return ""
	}
	if ce, ok := errors.AsType[websocket.CloseError](err); ok {
		return fmt.Sprintf("close %d %s", ce.Code, ce.Reason)
	}
	return err.Error()
}

// readFrames reads the bridge's or Centrifugo's frames, calling got for
// each event, until an error.
func (c *connsClient) readFrames(kind string, got func()) error {
	var head [16]byte
	for {
		_, rd, err := c.conn.Reader(context.Background())
		if err != nil {
			return err
		}
		if kind == connsCentrifugo {
			msg, err := io.ReadAll(rd)
			if err != nil {
				return err
			}
			centrifugoPushes(c.conn, msg, func([]byte) { got() })
			continue
		}
		n, _ := io.ReadFull(rd, head[:])
		_, _ = io.Copy(io.Discard, rd)
		if strings.HasPrefix(string(head[:n]), `{"type":"event"`) {
			got()
		}
	}
}

// readNATS reads the NATS protocol, calling got for each MSG or HMSG and
// answering PING, until an error (-ERR is one).
func (c *connsClient) readNATS(got func()) error {
	for {
		op, line, err := readNATSOp(c.nats)
		if err != nil {
			return err
		}
		switch op {
		case "MSG", "HMSG":
			got()
		case "PING":
			if err := c.conn.Write(context.Background(), websocket.MessageBinary, []byte("PONG\r\n")); err != nil {
				return err
			}
		case "-ERR":
			return fmt.Errorf("nats: %s", line)
		}
	}
}
