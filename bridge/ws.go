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
// serveWS closes the client after the header of the first.
const clientReadLimit = 1024

// streamInfoTimeout bounds the read of the stream's state when a client
// opens (and the readiness probe, and creating a replay consumer).
const streamInfoTimeout = 5 * time.Second

// handleLibraryWS serves WS /v1/libraries/{library_id}/ws.
func (b *Bridge) handleLibraryWS(w http.ResponseWriter, r *http.Request) {
	id, pattern, opts, ok := b.libraryRequest(w, r)
	if !ok {
		return
	}
	claims, ok := b.authorized(w, r, access{library: id})
	if !ok {
		return
	}
	b.serveSocket(w, r, subjects.Live(pattern), id, connectedFrameFunc("library_id", id), opts, claims.ExpiresAt())
}

// libraryRequest reads what a library socket (WebSocket or SSE) asks
// for: the library id of its path, the library's subject pattern and the
// query's options. It answers 400 and reports false when any is invalid.
func (b *Bridge) libraryRequest(w http.ResponseWriter, r *http.Request) (id, pattern string, opts socketOptions, ok bool) {
	id = r.PathValue("library_id")
	pattern, err := subjects.Library(b.cfg.Prefix, id)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return "", "", socketOptions{}, false
	}
	if opts, err = parseSocketQuery(r.URL.Query(), false, b.cfg.MaxFilters); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return "", "", socketOptions{}, false
	}
	return id, pattern, opts, true
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
// id, "" for a pattern) and upgrades; the connection then lives on its
// own goroutine (serveWS) and the HTTP handler returns, so that the
// server's buffers and the handler's stack go with it. The client is
// closed with 1008 "token expired" at expires (its token's expiry; zero:
// never). Failures before the upgrade are answered with a JSON error.
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
	handedOver := false
	defer func() {
		if !handedOver {
			b.wg.Done()
		}
	}()
	release, ok := b.admit(w, r)
	if !ok {
		return
	}
	defer func() {
		if !handedOver {
			release()
		}
	}()

	cl, rm, st, err := b.openClient(r.Context(), key, library, hello, opts, r.RemoteAddr, "websocket")
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	defer func() {
		if !handedOver {
			b.leave(rm, cl)
		}
	}()
	st.expires = expires

	bw := &batchWriter{ResponseWriter: w}
	c, err := websocket.Accept(bw, r, b.acceptOptions())
	if err != nil {
		b.log.Debug("websocket upgrade", zap.String("remote_addr", r.RemoteAddr), zap.Error(err))
		return // Accept answered
	}
	if !b.addClient(cl, func() { _ = c.CloseNow() }) {
		_ = c.Close(websocket.StatusGoingAway, "bridge shutting down")
		return
	}
	handedOver = true
	bw.conn.timeout = b.cfg.WriteTimeout
	go b.serveWS(c, bw.conn, cl, rm, st, release)
}

// serveWS is a WebSocket client's own goroutine, from the upgrade to the
// end: it starts the client's writer, then reads the connection, only to
// answer pings, take pongs and see the close (or the connection failing).
// Clients are not expected to send data: a data message closes c with
// 1008 after its header. (This is websocket.Conn.CloseRead on this
// goroutine, without CloseRead's self-wait: when CloseRead's goroutine
// closes for a data message, its Close waits for that same goroutine, up
// to 15 s.) It reads with a context that is never done: a cancelled read
// drops the connection without a close frame, and a cancellable one costs
// a context.AfterFunc per frame. Then it stops the writer, and undoes
// what serveSocket did.
func (b *Bridge) serveWS(c *websocket.Conn, bc *batchConn, cl *client, rm *room, st start, release func()) {
	defer b.wg.Done()
	defer release()
	defer b.leave(rm, cl)
	defer b.removeClient(cl)
	c.SetReadLimit(clientReadLimit)
	cl.start(&wsTransport{c: c, bc: bc, bridge: b.doneCtx}, st)
	if _, _, err := c.Reader(context.Background()); err == nil {
		_ = c.Close(websocket.StatusPolicyViolation, "unexpected data message")
	}
	_ = c.CloseNow() // a running writer's writes fail at once
	cl.finish()
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

func (b *Bridge) acceptOptions() *websocket.AcceptOptions {
	if len(b.cfg.AllowedOrigins) == 0 {
		// Any origin (DESIGN §8): tokens are never ambient credentials.
		return &websocket.AcceptOptions{InsecureSkipVerify: true}
	}
	return &websocket.AcceptOptions{OriginPatterns: b.cfg.AllowedOrigins}
}

// wsTransport writes a client's frames to its WebSocket. It frames its
// data messages itself into the batchConn (websocket.Conn's Write takes
// two locks and a flush a message, and could block a room on a pong
// that another goroutine is stuck writing); websocket.Conn writes the
// control frames. The batchConn bounds each blocking write to the socket
// with a write deadline (Config.WriteTimeout), so a client stuck in a
// write fails it and is dropped.
type wsTransport struct {
	c      *websocket.Conn
	bc     *batchConn      // its timeout is Config.WriteTimeout
	bridge context.Context // ends when the bridge shuts down
}

// begin collects the batch's writes into one (batchConn).
func (t *wsTransport) begin() { t.bc.begin() }

// send adds one text message to the batch.
func (t *wsTransport) send(_ frameKind, _ uint64, buf []byte) error { return t.bc.frame(buf) }

func (t *wsTransport) end() error { return t.bc.end() }

func (t *wsTransport) tryBegin() bool                 { return t.bc.tryBegin() }
func (t *wsTransport) tryEnd() (done bool, err error) { return t.bc.tryEnd() }

// keepAlive pings and waits for the pong, for WriteTimeout at most, or
// until the bridge shuts down.
func (t *wsTransport) keepAlive() error {
	ctx, cancel := context.WithTimeout(t.bridge, t.bc.timeout)
	defer cancel()
	return t.c.Ping(ctx)
}

func (t *wsTransport) closeSlow(reason string) { _ = t.c.Close(CloseSlowConsumer, reason) }
func (t *wsTransport) goingAway()              { _ = t.c.Close(websocket.StatusGoingAway, "bridge shutting down") }
func (t *wsTransport) expired()                { _ = t.c.Close(websocket.StatusPolicyViolation, reasonExpired) }

// gone: never. The reading goroutine closes the connection when the peer
// goes, then finish wakes and waits for the writer.
func (t *wsTransport) gone() <-chan struct{} { return nil }
func (t *wsTransport) drop()                 { _ = t.c.CloseNow() }
