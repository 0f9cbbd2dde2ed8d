package bridge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/broker"
	"github.com/arrwdb/arrwcdc/subjects"
)

// CloseSlowConsumer is the WebSocket close code of a client whose queue
// overflowed (a private-use code). The reason is
// "slow consumer: resume with since_seq=<last seq sent>".
const CloseSlowConsumer websocket.StatusCode = 4008

// clientReadLimit bounds a client's data message; none is expected, and
// readClient closes the client after the header of the first.
const clientReadLimit = 1024

// streamInfoTimeout bounds the read of the stream's last sequence when a
// socket opens (and the readiness probe).
const streamInfoTimeout = 5 * time.Second

// socketParams are the query parameters a socket accepts; filter only on
// the pattern socket.
var socketParams = []string{"types", "exclude_source", "since_seq", "since_time", "on_slow", "token"}

// socketOptions are a socket's parsed query parameters.
type socketOptions struct {
	types   []typePattern
	exclude []string
	filter  string // pattern socket only; "" if absent
}

// parseSocketQuery checks q against the parameters a socket accepts.
func parseSocketQuery(q url.Values, pattern bool) (socketOptions, error) {
	var o socketOptions
	allowed := socketParams
	if pattern {
		allowed = append([]string{"filter"}, socketParams...)
	}
	// Report unknown parameters in a stable order.
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			return o, fmt.Errorf("unknown query parameter %q (allowed: %s)", truncate(k), strings.Join(allowed, ", "))
		}
	}
	for _, v := range q["types"] {
		for t := range strings.SplitSeq(v, ",") {
			t = strings.TrimSpace(t)
			if t == "" {
				return o, errors.New("types: empty entry; want a comma-separated list such as document.added,document.deleted")
			}
			if err := subjects.ValidateTypePattern(t); err != nil {
				return o, fmt.Errorf("types: %w", err)
			}
			entity, action, _ := strings.Cut(t, ".")
			o.types = append(o.types, typePattern{entity, action})
		}
	}
	for _, v := range q["exclude_source"] {
		if v == "" {
			return o, errors.New("exclude_source: empty")
		}
		o.exclude = append(o.exclude, v)
	}
	for _, k := range []string{"since_seq", "since_time"} {
		if _, ok := q[k]; ok {
			return o, fmt.Errorf("%s: not supported yet", k)
		}
	}
	for _, v := range q["on_slow"] {
		switch v {
		case "disconnect":
		case "drop_oldest":
			return o, errors.New("on_slow=drop_oldest: not supported yet")
		default:
			return o, fmt.Errorf("on_slow: %q: want disconnect or drop_oldest", truncate(v))
		}
	}
	if pattern {
		if fs := q["filter"]; len(fs) > 1 {
			return o, errors.New("filter: give one pattern")
		} else if len(fs) == 1 {
			if fs[0] == "" {
				return o, errors.New("filter: empty")
			}
			o.filter = fs[0]
		}
	}
	return o, nil
}

// handleLibraryWS serves WS /v1/libraries/{library_id}/ws.
func (b *Bridge) handleLibraryWS(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("library_id")
	pattern, err := subjects.Library(b.cfg.Prefix, id)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	opts, err := parseSocketQuery(r.URL.Query(), false)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	b.serveSocket(w, r, subjects.Live(pattern), connectedFrameFunc("library_id", id), opts)
}

// handlePatternWS serves WS /v1/events/ws?filter=<pattern>.
func (b *Bridge) handlePatternWS(w http.ResponseWriter, r *http.Request) {
	opts, err := parseSocketQuery(r.URL.Query(), true)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	pattern := opts.filter
	if pattern == "" {
		pattern = subjects.All(b.cfg.Prefix)
	}
	if err := subjects.ValidatePattern(b.cfg.Prefix, pattern); err != nil {
		writeError(w, http.StatusBadRequest, "filter: "+err.Error())
		return
	}
	b.serveSocket(w, r, subjects.Live(pattern), connectedFrameFunc("filter", pattern), opts)
}

func connectedFrameFunc(key, value string) func(uint64) []byte {
	return func(seq uint64) []byte { return connectedFrame(key, value, seq) }
}

// serveSocket joins the room of key, reads the stream's last sequence, then
// upgrades and runs the client's writer until the client goes. Failures
// before the upgrade are answered with a JSON error.
func (b *Bridge) serveSocket(w http.ResponseWriter, r *http.Request, key string, hello func(uint64) []byte, opts socketOptions) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		// Checked before subscribing anything; websocket.Accept checks the rest.
		w.Header().Set("Upgrade", "websocket")
		writeError(w, http.StatusUpgradeRequired, "this is a WebSocket endpoint: send Upgrade: websocket")
		return
	}
	if !b.track() {
		writeError(w, http.StatusServiceUnavailable, errClosing.Error())
		return
	}
	defer b.wg.Done()

	cl := newClient(b, opts, r.RemoteAddr)
	rm, err := b.join(key, cl)
	if err != nil {
		if !errors.Is(err, errClosing) {
			b.log.Warn("live subscription failed", zap.String("subject", key), zap.Error(err))
		}
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	defer b.leave(rm, cl)
	streamSeq, err := b.lastSeq(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "stream unavailable: "+err.Error())
		return
	}

	bw := &batchWriter{ResponseWriter: w}
	c, err := websocket.Accept(bw, r, b.acceptOptions())
	if err != nil {
		b.log.Debug("websocket upgrade", zap.String("remote_addr", r.RemoteAddr), zap.Error(err))
		return // Accept answered
	}
	readCtx, readDone := readClient(c)
	defer func() {
		_ = c.CloseNow()
		<-readDone
	}()

	if !b.addClient(cl, c) {
		_ = c.Close(websocket.StatusGoingAway, "bridge shutting down")
		return
	}
	defer b.removeClient(cl)
	cl.run(c, bw.conn, readCtx, hello(streamSeq), streamSeq)
}

// readClient reads c in the background, only to answer pings and see the
// close (or the connection failing), which cancels the returned context.
// Clients are not expected to send data: a data message closes c with
// 1008 after its header. This is websocket.Conn.CloseRead without its
// self-wait: when CloseRead's goroutine closes for a data message, its Close
// waits for that same goroutine, up to 15 s, before the context ends. The
// context is the connection's own, never the bridge's: a cancelled read
// drops the connection without a close frame. done is closed when the
// goroutine returns, after c is closed.
func readClient(c *websocket.Conn) (ctx context.Context, done <-chan struct{}) {
	c.SetReadLimit(clientReadLimit)
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		defer cancel()
		if _, _, err := c.Reader(context.Background()); err == nil {
			_ = c.Close(websocket.StatusPolicyViolation, "unexpected data message")
		}
	}()
	return ctx, ch
}

// lastSeq returns the EVENTS stream's last sequence.
func (b *Bridge) lastSeq(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, streamInfoTimeout)
	defer cancel()
	s, err := b.js.Stream(ctx, broker.StreamName)
	if err != nil {
		return 0, err
	}
	return s.CachedInfo().State.LastSeq, nil
}

func (b *Bridge) acceptOptions() *websocket.AcceptOptions {
	if len(b.cfg.AllowedOrigins) == 0 {
		// Any origin (DESIGN §8): tokens are never ambient credentials.
		return &websocket.AcceptOptions{InsecureSkipVerify: true}
	}
	return &websocket.AcceptOptions{OriginPatterns: b.cfg.AllowedOrigins}
}

// maxBatchFrames bounds the frames written in one round of a writer.
const maxBatchFrames = 64

// run writes the connected frame, then the queued frames, until the client
// leaves, overflows, stalls or the bridge shuts down. Frames with seq <=
// startSeq (already in the stream when the socket opened) are dropped.
// Each round drains the queue (up to maxBatchFrames) into one write of bc.
func (cl *client) run(c *websocket.Conn, bc *batchConn, readCtx context.Context, hello []byte, startSeq uint64) {
	b := cl.b
	// Writes use a context without a deadline (a deadline costs an
	// allocation per write); this timer drops a client stuck in a write.
	stuck := time.AfterFunc(b.cfg.WriteTimeout, func() { _ = c.CloseNow() })
	defer stuck.Stop()
	if err := c.Write(context.Background(), websocket.MessageText, hello); err != nil || !stuck.Stop() {
		return
	}
	ping := time.NewTicker(b.cfg.PingInterval)
	defer ping.Stop()
	lastSent := startSeq
	batch := make([]*frame, 0, min(maxBatchFrames, cap(cl.queue)))
	for {
		select {
		case f := <-cl.queue:
			stuck.Reset(b.cfg.WriteTimeout)
			bc.begin()
			for f != nil && !cl.kicked.Load() {
				if f.seq > lastSent {
					if err := c.Write(context.Background(), websocket.MessageText, f.buf); err != nil {
						_ = bc.end()
						return
					}
					lastSent = f.seq
					batch = append(batch, f)
				}
				f = nil
				if len(batch) < cap(batch) {
					select {
					case f = <-cl.queue:
					default:
					}
				}
			}
			err := bc.end()
			now := time.Now()
			for i, f := range batch {
				b.counters.countDelivered(f, now)
				batch[i] = nil
			}
			batch = batch[:0]
			if err != nil || !stuck.Stop() {
				return // the write failed, or the timer closed the connection
			}
			if cl.kicked.Load() {
				cl.closeSlow(c, lastSent)
				return
			}
		case <-cl.kick:
			cl.closeSlow(c, lastSent)
			return
		case <-ping.C:
			ctx, cancel := context.WithTimeout(context.Background(), b.cfg.WriteTimeout)
			err := c.Ping(ctx)
			cancel()
			if err != nil {
				return
			}
		case <-readCtx.Done():
			return
		case <-b.done:
			_ = c.Close(websocket.StatusGoingAway, "bridge shutting down")
			return
		}
	}
}

// closeSlow closes an overflowed client with CloseSlowConsumer.
func (cl *client) closeSlow(c *websocket.Conn, lastSent uint64) {
	reason := fmt.Sprintf("slow consumer: resume with since_seq=%d", lastSent)
	cl.b.log.Info("closed slow consumer", zap.String("remote_addr", cl.addr), zap.Int("queue", cap(cl.queue)), zap.Uint64("last_seq", lastSent))
	_ = c.Close(CloseSlowConsumer, reason)
}

func truncate(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "…"
}
