package bridge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/subjects"
)

// CloseSlowConsumer is the WebSocket close code of a client whose queue
// overflowed (a private-use code). The reason is
// "slow consumer: resume with since_seq=<last seq sent>".
const CloseSlowConsumer websocket.StatusCode = 4008

// reasonExpired is the close reason (with 1008) of a client whose token
// expired.
const reasonExpired = "token expired"

// clientReadLimit bounds a client's data message; none is expected, and
// readClient closes the client after the header of the first.
const clientReadLimit = 1024

// streamInfoTimeout bounds the read of the stream's state when a client
// opens (and the readiness probe, and creating a replay consumer).
const streamInfoTimeout = 5 * time.Second

// handleLibraryWS serves WS /v1/libraries/{library_id}/ws.
func (b *Bridge) handleLibraryWS(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("library_id")
	pattern, err := subjects.Library(b.cfg.Prefix, id)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	opts, err := parseSocketQuery(r.URL.Query(), false, b.cfg.MaxFilters)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	claims, ok := b.authorized(w, r, access{library: id})
	if !ok {
		return
	}
	b.serveSocket(w, r, subjects.Live(pattern), id, connectedFrameFunc("library_id", id), opts, claims.ExpiresAt())
}

// handlePatternWS serves WS /v1/events/ws?filter=<pattern>.
func (b *Bridge) handlePatternWS(w http.ResponseWriter, r *http.Request) {
	opts, err := parseSocketQuery(r.URL.Query(), true, b.cfg.MaxFilters)
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
	claims, ok := b.authorized(w, r, access{pattern: pattern})
	if !ok {
		return
	}
	b.serveSocket(w, r, subjects.Live(pattern), "", connectedFrameFunc("filter", pattern), opts, claims.ExpiresAt())
}

func connectedFrameFunc(key, value string) func(uint64) []byte {
	return func(seq uint64) []byte { return connectedFrame(key, value, seq) }
}

// serveSocket opens a client of the room of key (library is its library
// id, "" for a pattern), then upgrades and runs the client's writer until
// the client goes, or until expires (its token's expiry; zero: never),
// when it is closed with 1008 "token expired". Failures before the
// upgrade are answered with a JSON error.
func (b *Bridge) serveSocket(w http.ResponseWriter, r *http.Request, key, library string, hello func(uint64) []byte, opts socketOptions, expires time.Time) {
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
	release, ok := b.admit(w, r)
	if !ok {
		return
	}
	defer release()

	cl, rm, st, err := b.openClient(r.Context(), key, library, hello, opts, r.RemoteAddr, "websocket")
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	defer b.leave(rm, cl)
	st.expires = expires

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

	if !b.addClient(cl, func() { _ = c.CloseNow() }) {
		_ = c.Close(websocket.StatusGoingAway, "bridge shutting down")
		return
	}
	defer b.removeClient(cl)
	t := newWSTransport(c, bw.conn, readCtx, b.doneCtx, b.cfg.WriteTimeout)
	defer t.stuck.Stop()
	cl.run(t, st)
}

// openClient joins cl to the room of key and works out where its stream
// starts: live from the stream's last sequence, or a replay from since.
// library is the library id of a library client ("" for a pattern). The
// caller leaves the room when the client goes.
func (b *Bridge) openClient(ctx context.Context, key, library string, hello func(uint64) []byte, opts socketOptions, addr, kind string) (*client, *room, start, error) {
	cl := newClient(b, opts, addr, kind)
	rm, err := b.join(ctx, key, cl)
	if err != nil {
		if !errors.Is(err, errClosing) {
			b.log.Warn("live subscription failed", zap.String("subject", key), zap.Error(err))
		}
		return nil, nil, start{}, err
	}
	// The head, read after the room's subscription exists: everything
	// stored after it reaches cl live.
	info, err := b.streamInfo(ctx)
	if err != nil {
		b.leave(rm, cl)
		return nil, nil, start{}, fmt.Errorf("stream unavailable: %w", err)
	}
	head, first := info.State.LastSeq, info.State.FirstSeq
	st := start{hello: hello(head), lastSent: head}
	if s := opts.since; s != nil {
		spec := &readSpec{filters: replayFilters(b.cfg.Prefix, rm.filter, library, opts)}
		switch {
		case s.byTime:
			st.lastSent, spec.startTime = 0, s.time
			st.replay = spec
		case s.seq >= head && cl.stopCatchingIfWhole():
			st.lastSent = s.seq // nothing stored after it yet: live only
		default:
			st.lastSent, spec.startSeq = s.seq, s.seq+1
			st.replay = spec
			if first > s.seq+1 && s.seq < head {
				st.expiredFrom, st.expiredTo = s.seq+1, min(first-1, head)
			}
		}
	}
	return cl, rm, st, nil
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

func (b *Bridge) acceptOptions() *websocket.AcceptOptions {
	if len(b.cfg.AllowedOrigins) == 0 {
		// Any origin (DESIGN §8): tokens are never ambient credentials.
		return &websocket.AcceptOptions{InsecureSkipVerify: true}
	}
	return &websocket.AcceptOptions{OriginPatterns: b.cfg.AllowedOrigins}
}

// errStuck: a write to a WebSocket client took longer than WriteTimeout.
var errStuck = errors.New("write timed out")

// wsTransport writes a client's frames to its WebSocket. Writes use a
// context without a deadline (a deadline costs an allocation per write);
// the stuck timer drops a client stuck in a batch of writes.
type wsTransport struct {
	c       *websocket.Conn
	bc      *batchConn
	read    context.Context // ends when the peer closes or the connection fails
	bridge  context.Context // ends when the bridge shuts down
	timeout time.Duration
	stuck   *time.Timer
}

func newWSTransport(c *websocket.Conn, bc *batchConn, read, bridge context.Context, timeout time.Duration) *wsTransport {
	stuck := time.AfterFunc(time.Hour, func() { _ = c.CloseNow() })
	stuck.Stop()
	return &wsTransport{c: c, bc: bc, read: read, bridge: bridge, timeout: timeout, stuck: stuck}
}

// begin collects the batch's writes into one (batchConn).
func (t *wsTransport) begin() {
	t.stuck.Reset(t.timeout)
	t.bc.begin()
}

func (t *wsTransport) send(_ frameKind, _ uint64, buf []byte) error {
	return t.c.Write(context.Background(), websocket.MessageText, buf)
}

func (t *wsTransport) end() error {
	err := t.bc.end()
	if !t.stuck.Stop() {
		return errStuck // the timer closed the connection
	}
	return err
}

// keepAlive pings and waits for the pong, for WriteTimeout at most, or
// until the bridge shuts down.
func (t *wsTransport) keepAlive() error {
	ctx, cancel := context.WithTimeout(t.bridge, t.timeout)
	defer cancel()
	return t.c.Ping(ctx)
}

func (t *wsTransport) closeSlow(reason string) { _ = t.c.Close(CloseSlowConsumer, reason) }
func (t *wsTransport) goingAway()              { _ = t.c.Close(websocket.StatusGoingAway, "bridge shutting down") }
func (t *wsTransport) expired()                { _ = t.c.Close(websocket.StatusPolicyViolation, reasonExpired) }
func (t *wsTransport) gone() <-chan struct{}   { return t.read.Done() }
