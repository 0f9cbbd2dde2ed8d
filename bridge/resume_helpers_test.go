package bridge_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/arrwdb/arrwcdc/bridge"
	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/checker"
	"github.com/arrwdb/arrwcdc/publisher"
)

// pubEvent is one event the stream acknowledged.
type pubEvent struct {
	seq                  uint64
	id, lib, typ, source string
}

// ledger is the gap-and-duplicate check's reference: every acknowledged
// event. Safe for concurrent use.
type ledger struct {
	mu  sync.Mutex
	evs []pubEvent
}

func (l *ledger) add(e pubEvent) {
	l.mu.Lock()
	l.evs = append(l.evs, e)
	l.mu.Unlock()
}

// want returns the seqs of the acknowledged events that pred selects, in
// stream order.
func (l *ledger) want(pred func(pubEvent) bool) []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []uint64
	for _, e := range l.evs {
		if pred(e) {
			out = append(out, e.seq)
		}
	}
	slices.Sort(out)
	return out
}

// events returns the acknowledged events that pred selects.
func (l *ledger) events(pred func(pubEvent) bool) []pubEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []pubEvent
	for _, e := range l.evs {
		if pred(e) {
			out = append(out, e)
		}
	}
	return out
}

func (l *ledger) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.evs)
}

// newPublisher returns a publisher on e's connection, closed by cleanup.
func (e *env) newPublisher(t testing.TB) *publisher.Publisher {
	t.Helper()
	p, err := publisher.New(e.nc, publisher.WithSource(""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

// mkEvent is event i of a test flow.
func mkEvent(lib, typ, source string, i int) event.Event {
	return event.Event{Type: typ, LibraryID: lib, Source: source, Data: json.RawMessage(`{"n":` + strconv.Itoa(i) + `}`)}
}

// pubWindow is how many async publishes a flow keeps in flight.
const pubWindow = 256

// publishMany publishes n events made by mk, PublishAsync with a window,
// records each ack in l and returns when all are acknowledged.
func publishMany(t testing.TB, p *publisher.Publisher, l *ledger, n int, mk func(i int) event.Event) {
	t.Helper()
	if err := publishFlow(p, l, n, mk, nil, 0); err != nil {
		t.Fatal(err)
	}
}

// publishFlow publishes events made by mk until n are published (n <= 0:
// no limit) or stop is closed, at most one every pace (0: as fast as the
// acks come), and records the acks in l.
func publishFlow(p *publisher.Publisher, l *ledger, n int, mk func(i int) event.Event, stop <-chan struct{}, pace time.Duration) error {
	var tick <-chan time.Time
	if pace > 0 {
		tk := time.NewTicker(pace)
		defer tk.Stop()
		tick = tk.C
	}
	type pending struct {
		f  *publisher.Future
		ev event.Event
	}
	var inflight []pending
	settle := func(keep int) error {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		for len(inflight) > keep {
			p := inflight[0]
			inflight = inflight[1:]
			ack, err := p.f.Wait(ctx)
			if err != nil {
				return err
			}
			l.add(pubEvent{seq: ack.Seq, id: ack.ID, lib: p.ev.LibraryID, typ: p.ev.Type, source: p.ev.Source})
		}
		return nil
	}
	for i := 0; n <= 0 || i < n; i++ {
		if stop != nil {
			select {
			case <-stop:
				return settle(0)
			default:
			}
		}
		if tick != nil {
			select {
			case <-tick:
			case <-stop:
				return settle(0)
			}
		}
		ev := mk(i)
		if ev.ID == "" {
			ev.ID = event.NewID()
		}
		f, err := p.PublishAsync(ev)
		if err != nil {
			return err
		}
		inflight = append(inflight, pending{f, ev})
		if err := settle(pubWindow); err != nil {
			return err
		}
	}
	return settle(0)
}

// requireDelivered is the gap-and-duplicate check: the events f got must
// be exactly the acknowledged events of l that pred selects, nothing
// missing, nothing twice, nothing else, each at its acknowledged seq. (The
// follower already failed if a seq did not follow the one before.)
func requireDelivered(t testing.TB, name string, f *follower, l *ledger, pred func(pubEvent) bool) {
	t.Helper()
	c := checker.New()
	want := l.events(pred)
	for _, e := range want {
		c.Ack(e.seq, e.id)
	}
	f.mu.Lock()
	for i, seq := range f.seqs {
		c.Record(seq, f.ids[i])
	}
	f.mu.Unlock()
	if err := c.Err(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// requireSeqs fails t unless got is exactly want: nothing missing, nothing
// twice, nothing else, in the same order.
func requireSeqs(t testing.TB, name string, got, want []uint64) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	wantSet := make(map[uint64]bool, len(want))
	for _, s := range want {
		wantSet[s] = true
	}
	seen := make(map[uint64]int, len(got))
	var dups, extra, missing []uint64
	for _, s := range got {
		seen[s]++
		if seen[s] == 2 {
			dups = append(dups, s)
		}
		if !wantSet[s] {
			extra = append(extra, s)
		}
	}
	for _, s := range want {
		if seen[s] == 0 {
			missing = append(missing, s)
		}
	}
	head := func(s []uint64) []uint64 { return s[:min(len(s), 10)] }
	t.Fatalf("%s: got %d events, want %d: %d missing %v, %d duplicated %v, %d unexpected %v (order differs: %v)",
		name, len(got), len(want), len(missing), head(missing), len(dups), head(dups), len(extra), head(extra),
		len(missing)+len(dups)+len(extra) == 0)
}

// link is a client's TCP connection, which the test can cut.
type link struct {
	mu   sync.Mutex
	conn net.Conn
}

func (l *link) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err == nil {
		l.mu.Lock()
		l.conn = c
		l.mu.Unlock()
	}
	return c, err
}

// cut closes the current connection without any goodbye.
func (l *link) cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		_ = l.conn.Close()
	}
}

func (l *link) current() net.Conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conn
}

// source is a client stream: WebSocket frames or SSE events, as frames.
type source interface {
	next() (wsFrame, error)
	close()
}

type wsSource struct{ c *websocket.Conn }

func (s wsSource) next() (wsFrame, error) { return tryRead(s.c) }
func (s wsSource) close()                 { _ = s.c.CloseNow() }

// openWS dials a WebSocket client of url+path over l.
func openWS(url, path string, l *link) (source, error) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+path, &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: &http.Transport{DialContext: l.dial}},
	})
	if err != nil {
		if resp != nil && resp.Body != nil {
			raw, _ := io.ReadAll(resp.Body)
			err = fmt.Errorf("%w: %s", err, raw)
		}
		return nil, err
	}
	c.SetReadLimit(-1)
	return wsSource{c}, nil
}

// sseSource reads Server-Sent Events as a plain HTTP client (what curl -N
// does) and turns each into the frame its data holds.
type sseSource struct {
	resp       *http.Response
	conn       net.Conn
	r          *bufio.Reader
	keepAlives int
	retry      string
}

// openSSE GETs url+path over l with Last-Event-ID lastID (if not "").
func openSSE(url, path, lastID string, l *link) (*sseSource, error) {
	req, err := http.NewRequest(http.MethodGet, url+path, nil)
	if err != nil {
		return nil, err
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	req.Header.Set("Accept", "text/event-stream")
	client := &http.Client{Transport: &http.Transport{DialContext: l.dial, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, raw)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		resp.Body.Close()
		return nil, fmt.Errorf("content type %q", ct)
	}
	return &sseSource{resp: resp, conn: l.current(), r: bufio.NewReader(resp.Body)}, nil
}

func (s *sseSource) close() { s.resp.Body.Close() }

// next reads one event. Its frame carries the SSE id and event name.
func (s *sseSource) next() (wsFrame, error) {
	var id, name string
	var data []string
	for {
		_ = s.conn.SetReadDeadline(time.Now().Add(wait))
		line, err := s.r.ReadString('\n')
		if err != nil {
			return wsFrame{}, err
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		switch {
		case line == "":
			if data == nil {
				continue
			}
			raw := strings.Join(data, "\n")
			var f wsFrame
			if err := json.Unmarshal([]byte(raw), &f); err != nil {
				return wsFrame{}, fmt.Errorf("event data %q: %w", raw, err)
			}
			f.raw, f.sseID, f.sseEvent = []byte(raw), id, name
			return f, nil
		case strings.HasPrefix(line, ":"):
			s.keepAlives++
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "id":
				id = value
			case "event":
				name = value
			case "data":
				data = append(data, value)
			case "retry":
				s.retry = value
			default:
				return wsFrame{}, fmt.Errorf("unknown SSE field in %q", line)
			}
		}
	}
}

// follower reads one client stream until it gets the event whose id is
// stopID, reconnecting after any disconnection with the last seq it got:
// what a resuming client does. Each event must have a higher seq than the
// one before, across reconnections.
type follower struct {
	open   func(last uint64, first bool) (source, error)
	stopID atomic.Pointer[string]

	mu       sync.Mutex
	seqs     []uint64
	ids      []string
	gaps     []wsFrame
	connects int
	closes   []string // why the stream ended, each time
}

func (f *follower) stopAt(id string) { f.stopID.Store(&id) }

func (f *follower) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.seqs)
}

// run follows until the stop event, ctx's end, or an error.
func (f *follower) run(ctx context.Context) error {
	var last uint64
	first := true
	for {
		src, err := f.open(last, first)
		for err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("reconnect after seq %d: %w", last, err)
			}
			time.Sleep(10 * time.Millisecond) // a client's reconnect backoff
			src, err = f.open(last, first)
		}
		first = false
		f.mu.Lock()
		f.connects++
		f.mu.Unlock()
		stopped := context.AfterFunc(ctx, src.close)
		for {
			fr, err := src.next()
			if err == nil && fr.Type == "close" { // the SSE end of a slow consumer
				err = errors.New(fr.Reason)
			}
			if err != nil {
				f.mu.Lock()
				f.closes = append(f.closes, err.Error())
				f.mu.Unlock()
				break
			}
			switch fr.Type {
			case "connected":
				continue
			case "gap":
				f.mu.Lock()
				f.gaps = append(f.gaps, fr)
				f.mu.Unlock()
				continue
			case "event":
			default:
				return fmt.Errorf("unexpected frame %s", fr.raw)
			}
			if fr.Seq <= last {
				src.close()
				return fmt.Errorf("seq %d after %d: a duplicate or out of order", fr.Seq, last)
			}
			if fr.sseEvent != "" || fr.sseID != "" && fr.sseID != strconv.FormatUint(fr.Seq, 10) {
				src.close()
				return fmt.Errorf("SSE event %q id %q for seq %d", fr.sseEvent, fr.sseID, fr.Seq)
			}
			last = fr.Seq
			f.mu.Lock()
			f.seqs = append(f.seqs, fr.Seq)
			f.ids = append(f.ids, fr.ID)
			f.mu.Unlock()
			if p := f.stopID.Load(); p != nil && fr.ID == *p {
				stopped()
				src.close()
				return nil
			}
		}
		stopped()
		src.close()
		if ctx.Err() != nil {
			return fmt.Errorf("after seq %d: %w", last, ctx.Err())
		}
	}
}

// wsFollower follows a WebSocket path (with its filters) of the bridge
// that url returns. The first connection adds query (a since_seq or
// since_time, or ""); later ones resume with since_seq.
func wsFollower(url func() string, path, query string, l *link) *follower {
	return &follower{open: func(last uint64, first bool) (source, error) {
		q := query
		if !first {
			q = "since_seq=" + strconv.FormatUint(last, 10)
		}
		if q == "" {
			return openWS(url(), path, l)
		}
		return openWS(url(), path+sep(path)+q, l)
	}}
}

// sseFollower follows an SSE path as EventSource does: always the same
// URL (path and query), and after a disconnection Last-Event-ID.
func sseFollower(url func() string, path, query string, l *link) *follower {
	if query != "" {
		path += sep(path) + query
	}
	return &follower{open: func(last uint64, first bool) (source, error) {
		id := ""
		if !first {
			id = strconv.FormatUint(last, 10)
		}
		return openSSE(url(), path, id, l)
	}}
}

func sep(path string) string {
	if strings.Contains(path, "?") {
		return "&"
	}
	return "?"
}

// start runs f in the background; the returned function waits for it
// (within wait after the call) and returns its error.
func (f *follower) start(t testing.TB) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return func() error {
		select {
		case err := <-done:
			done <- err
			return err
		case <-time.After(3 * wait):
			cancel()
			err := <-done
			done <- err
			return fmt.Errorf("the stop event did not come: %v (got %d events)", err, f.count())
		}
	}
}

// bridgeURL returns a func giving b's URL.
func bridgeURL(b *bridge.Bridge) func() string { return b.URL }

func newReader(resp *http.Response) *bufio.Reader { return bufio.NewReader(resp.Body) }
