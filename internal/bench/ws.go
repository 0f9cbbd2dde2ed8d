package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"

	"github.com/arrwdb/arrwcdc/bridge"
	"github.com/arrwdb/arrwcdc/internal/hist"
	"github.com/arrwdb/arrwcdc/subjects"
)

// receiver is what one client has received. A client reads on one
// goroutine, so mu is never contended; it guards against the late frames
// of a nats.go client whose callback goroutine outlives the measurement.
type receiver struct {
	lib int
	// stored says its frames are stored events read back (a replay): old
	// by design, so their age (receipt − event timestamp) is not recorded.
	stored bool
	got    atomic.Int64
	last   atomic.Int64  // unix ns of the last event received
	total  *atomic.Int64 // all receivers' events, for progress
	gone   *atomic.Int64 // receivers the server closed

	mu         sync.Mutex
	bytes      int64
	lastSeq    uint64
	outOfOrder int64
	lat        hist.Hist
	closed     bool   // the server closed the connection
	closeInfo  string // why
}

// serverClosed records that the server closed the client, and why.
func (rc *receiver) serverClosed(why string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if !rc.closed {
		rc.closed, rc.closeInfo = true, why
		rc.gone.Add(1)
	}
}

// event records one event frame or message received at now.
func (rc *receiver) event(now time.Time, data []byte, seq uint64) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if !rc.stored {
		if ts, ok := frameTimestamp(data); ok {
			rc.lat.Record(sinceUS(now, ts))
		}
	}
	if seq > 0 {
		if seq <= rc.lastSeq {
			rc.outOfOrder++
		}
		rc.lastSeq = seq
	}
	rc.bytes += int64(len(data))
	rc.got.Add(1)
	rc.total.Add(1)
	rc.last.Store(now.UnixNano())
}

// clientSet is the clients of a run and their totals.
type clientSet struct {
	recv  []*receiver
	total atomic.Int64
	gone  atomic.Int64   // clients the server closed
	wg    sync.WaitGroup // the readers

	mu       sync.Mutex
	conns    []*websocket.Conn
	closers  []func()
	stopping atomic.Bool
}

// track registers a connection (or a close function) for close.
func (cs *clientSet) track(c *websocket.Conn, f func()) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if c != nil {
		cs.conns = append(cs.conns, c)
	}
	if f != nil {
		cs.closers = append(cs.closers, f)
	}
}

// close ends every client and waits for the readers. The readers read
// with a context that is never done (one with a Done channel costs
// coder/websocket a context.AfterFunc per message), so they are stopped by
// closing their connections.
func (cs *clientSet) close() {
	cs.stopping.Store(true)
	cs.mu.Lock()
	conns, closers := cs.conns, cs.closers
	cs.conns, cs.closers = nil, nil
	cs.mu.Unlock()
	for _, c := range conns {
		c.CloseNow()
	}
	for _, f := range closers {
		f()
	}
	cs.wg.Wait()
}

func (cs *clientSet) add(lib int) *receiver {
	rc := &receiver{lib: lib, total: &cs.total, gone: &cs.gone}
	cs.recv = append(cs.recv, rc)
	return rc
}

// done reports whether the clients received want events, or whether the
// server closed them all (nothing more can come).
func (cs *clientSet) done(want int64) bool {
	return cs.total.Load() >= want || cs.gone.Load() == int64(len(cs.recv))
}

// collect adds the receivers' figures into res, against the expected
// events per library.
func (cs *clientSet) collect(res *Result, perLib []int64) {
	var reasons []string
	for _, rc := range cs.recv {
		rc.mu.Lock()
		res.Expected += perLib[rc.lib]
		res.Delivered += rc.got.Load()
		res.bytes += rc.bytes
		res.OutOfOrder += rc.outOfOrder
		if rc.closed {
			res.Disconnects++
			if rc.closeInfo != "" && len(reasons) < 3 {
				reasons = append(reasons, rc.closeInfo)
			}
		}
		res.hist.Merge(&rc.lat)
		rc.mu.Unlock()
	}
	if len(reasons) > 0 {
		res.Notes = append(res.Notes, "closed by the server: "+strings.Join(reasons, "; "))
	}
}

func (cs *clientSet) lastEvent() time.Time {
	var last int64
	for _, rc := range cs.recv {
		last = max(last, rc.last.Load())
	}
	return time.Unix(0, last)
}

// startBridge runs a bridge on 127.0.0.1:0 on a connection of its own (in
// process with the embedded broker, as `arrwcdc serve` does), stopped when
// the run closes.
func (r *runner) startBridge(ctx context.Context) (*bridge.Bridge, error) {
	var nc *nats.Conn
	var err error
	if r.broker != nil {
		nc, err = r.broker.Connect(nats.Name("arrwcdc-bench-bridge"), nats.MaxReconnects(-1))
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		r.onClose(nc.Close)
	} else if nc, err = r.dial(r.nc.ConnectedUrl(), "arrwcdc-bench-bridge"); err != nil {
		return nil, err
	}
	// No connection limits: the bench's clients dial from one address (or
	// a few), and the conns scenario measures how many the bridge holds.
	b, err := bridge.New(bridge.Config{HTTPListen: "127.0.0.1:0", Prefix: r.cfg.Prefix, ClientQueue: r.cfg.ClientQueue,
		MaxConnections: -1, MaxConnsPerAddress: -1}, nc, r.log.Named("bridge"))
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	if err := b.Start(ctx); err != nil {
		return nil, fmt.Errorf("bench: bridge: %w", err)
	}
	r.onClose(func() {
		// Long enough for tens of thousands of clients to be closed.
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = b.Shutdown(sctx)
	})
	return b, nil
}

// dialErr is a WebSocket dial refused with an HTTP status.
type dialErr struct {
	status int
	body   string
	err    error
}

func (e *dialErr) Error() string {
	return fmt.Sprintf("HTTP %d %s: %v", e.status, strings.TrimSpace(e.body), e.err)
}
func (e *dialErr) Unwrap() error { return e.err }

// dialBridge opens one WebSocket to url, waits for its connected frame and
// reads event frames into rc until the server closes it or cs.close.
func (cs *clientSet) dialBridge(ctx context.Context, url string, rc *receiver) error {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(dctx, url, nil)
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			var body []byte
			if resp.Body != nil {
				body, _ = io.ReadAll(io.LimitReader(resp.Body, 1024))
			}
			return &dialErr{status: resp.StatusCode, body: string(body), err: err}
		}
		return err
	}
	c.SetReadLimit(1 << 21)
	_, hello, err := c.Read(dctx)
	if err != nil {
		c.CloseNow()
		return fmt.Errorf("first frame: %w", err)
	}
	if !bytes.Contains(hello, []byte(`"type":"connected"`)) {
		c.CloseNow()
		return fmt.Errorf("first frame is not connected: %.200s", hello)
	}
	cs.read(c, rc, func(now time.Time, b []byte) {
		if bytes.HasPrefix(b, []byte(`{"type":"event"`)) {
			rc.event(now, b, frameSeq(b))
		}
	})
	return nil
}

// read starts the reading goroutine of one client: it hands each whole
// message to handle with its arrival time, and tells rc why the server
// closed the connection unless the bench itself is stopping.
func (cs *clientSet) read(c *websocket.Conn, rc *receiver, handle func(now time.Time, msg []byte)) {
	cs.track(c, nil)
	cs.wg.Go(func() {
		defer c.CloseNow()
		var buf bytes.Buffer
		for {
			_, rd, err := c.Reader(context.Background())
			if err != nil {
				if !cs.stopping.Load() {
					why := err.Error()
					if ce, ok := errors.AsType[websocket.CloseError](err); ok {
						why = fmt.Sprintf("close %d %s", ce.Code, ce.Reason)
					}
					rc.serverClosed(why)
				}
				return
			}
			buf.Reset()
			if _, err := buf.ReadFrom(rd); err != nil {
				continue
			}
			handle(time.Now(), buf.Bytes())
		}
	})
}

// dialAll dials every receiver, at most maxClientsDialed at once.
func dialAll(ctx context.Context, cs *clientSet, dial func(rc *receiver) error) error {
	sem := make(chan struct{}, maxClientsDialed)
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for _, rc := range cs.recv {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := dial(rc); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// runWS: Publisher → JetStream → bridge → Clients WebSockets, each client
// watching one library (client i watches library i mod Libraries).
func (r *runner) runWS(ctx context.Context, res *Result) error {
	b, err := r.startBridge(ctx)
	if err != nil {
		return err
	}
	libs := r.libraries()
	base := "ws" + strings.TrimPrefix(b.URL(), "http") + "/v1/libraries/"
	return r.fanOut(ctx, res, libs, func(ctx context.Context, cs *clientSet, rc *receiver) error {
		return cs.dialBridge(ctx, base+libs[rc.lib]+"/ws", rc)
	}, "frame read − event timestamp")
}

// fanOut connects the clients with dial, publishes, waits for the frames
// and fills res.
func (r *runner) fanOut(ctx context.Context, res *Result, libs []string,
	dial func(ctx context.Context, cs *clientSet, rc *receiver) error, latencyOf string) error {
	cs := &clientSet{}
	defer cs.close()
	for i := range r.cfg.Clients {
		cs.add(i % len(libs))
	}
	r.progress.start("connecting clients", int64(r.cfg.Clients))
	var connected atomic.Int64
	if err := dialAll(ctx, cs, func(rc *receiver) error {
		err := dial(ctx, cs, rc)
		if err == nil {
			r.progress.done.Store(connected.Add(1))
		}
		return err
	}); err != nil {
		return fmt.Errorf("bench: connect clients: %w", err)
	}

	p, err := r.publishMeasured(ctx, res, libs, r.cfg.Mode, r.cfg.Events)
	if err != nil {
		return err
	}
	var want int64
	for _, rc := range cs.recv {
		want += p.perLib[rc.lib]
	}
	r.progress.start("delivering", want)
	r.waitFor(ctx, func() int64 {
		n := cs.total.Load()
		r.progress.done.Store(n)
		return n
	}, func() bool { return cs.done(want) })
	if err := r.end(res); err != nil {
		return err
	}
	last := cs.lastEvent()
	if last.Before(p.lastAck) {
		last = p.lastAck
	}
	cs.close()
	res.elapsed = last.Sub(r.t0)
	res.Events, res.PublishErrors = p.acked, p.errors
	res.addNote(p.note())
	cs.collect(res, p.perLib)
	if extra := res.Delivered - res.Expected; extra > 0 && p.errors > 0 {
		// Expected counts acknowledged events only; a publish that timed
		// out waiting for its ack may still have been stored, and then
		// its frames arrive too.
		res.addNote(fmt.Sprintf("%d frames more than expected: events whose publish failed (an ack timeout) but which the stream stored", extra))
	}
	res.LatencyOf = latencyOf
	return nil
}

// runWSPeer runs the load of runWS against nats-server's own websocket
// listener: the same embedded broker (so the same EVENTS stream and live
// republish) with its NATS WebSocket listener on; each client is a nats.go
// connection over ws:// subscribed to its library's live subject, which is
// what the bridge subscribes to.
func (r *runner) runWSPeer(ctx context.Context, res *Result) error {
	wsURL := r.broker.WebSocketURL()
	if wsURL == "" {
		return errors.New("bench: the embedded broker has no websocket listener")
	}
	res.Server += ", websocket " + wsURL
	libs := r.libraries()
	return r.fanOut(ctx, res, libs, func(_ context.Context, cs *clientSet, rc *receiver) error {
		return cs.dialPeer(wsURL, r.cfg.Prefix, libs[rc.lib], rc)
	}, "message received − event timestamp")
}

// dialPeer connects one nats.go client over WebSocket and subscribes it to
// the live subject of lib. cs.close closes it.
func (cs *clientSet) dialPeer(wsURL, prefix, lib string, rc *receiver) error {
	closing := &cs.stopping
	nc, err := nats.Connect(wsURL, nats.Name("arrwcdc-bench-peer-client"), nats.MaxReconnects(0),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if !closing.Load() {
				rc.serverClosed(fmt.Sprint("disconnected: ", err))
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if !closing.Load() {
				rc.serverClosed(err.Error())
			}
		}))
	if err != nil {
		return err
	}
	cs.track(nil, nc.Close)
	subj, err := subjects.Library(prefix, lib)
	if err != nil {
		return err
	}
	sub, err := nc.Subscribe(subjects.Live(subj), func(m *nats.Msg) {
		var seq uint64
		if v := m.Header["Nats-Sequence"]; len(v) > 0 {
			seq, _ = strconv.ParseUint(v[0], 10, 64)
		}
		rc.event(time.Now(), m.Data, seq)
	})
	if err != nil {
		return err
	}
	_ = sub.SetPendingLimits(-1, -1)
	return nc.Flush()
}

// runReplay: Events stored in one library (not measured), then one
// WebSocket client asks the bridge for all of them with since_seq and
// reads them (measured: from the dial to the last frame).
func (r *runner) runReplay(ctx context.Context, res *Result) error {
	lib := r.libraries()[0]
	res.Libraries = 1
	pub, err := r.newPublisher("async")
	if err != nil {
		return err
	}
	evs, size, err := r.templates([]string{lib})
	if err != nil {
		return err
	}
	res.EventSize = size
	p := r.publishAll(ctx, pub, evs, "async", r.cfg.Events)
	if p.acked == 0 {
		return fmt.Errorf("bench: replay: no event stored: %s", p.note())
	}
	res.addNote(p.note())
	b, err := r.startBridge(ctx)
	if err != nil {
		return err
	}
	url := fmt.Sprintf("ws%s/v1/libraries/%s/ws?since_seq=%d", strings.TrimPrefix(b.URL(), "http"), lib, p.firstSeq-1)
	cs := &clientSet{}
	defer cs.close()
	rc := cs.add(0)
	rc.stored = true
	if err := r.begin(); err != nil {
		return err
	}
	r.progress.start("replaying", p.acked)
	if err := cs.dialBridge(ctx, url, rc); err != nil {
		if de, ok := errors.AsType[*dialErr](err); ok && de.status >= 400 && de.status < 500 {
			_ = r.end(res)
			res.Events = p.acked
			res.Unsupported = fmt.Sprintf("the bridge answered since_seq with HTTP %d: %s", de.status, strings.TrimSpace(de.body))
			return nil
		}
		return fmt.Errorf("bench: replay: %w", err)
	}
	r.waitFor(ctx, func() int64 {
		n := cs.total.Load()
		r.progress.done.Store(n)
		return n
	}, func() bool { return cs.done(p.acked) })
	if err := r.end(res); err != nil {
		return err
	}
	cs.close()
	res.elapsed = cs.lastEvent().Sub(r.t0)
	res.Events = p.acked
	cs.collect(res, p.perLib)
	return nil
}
