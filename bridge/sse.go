package bridge

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/subjects"
)

// sseRetryMS is the reconnection delay an SSE stream suggests to
// EventSource (its "retry:" field).
const sseRetryMS = 1000

// handleLibrarySSE serves GET /v1/libraries/{library_id}/events: the
// library socket's frames as Server-Sent Events (see the package doc).
func (b *Bridge) handleLibrarySSE(w http.ResponseWriter, r *http.Request) {
	id, pattern, opts, ok := b.libraryRequest(w, r)
	if !ok {
		return
	}
	// EventSource sends the last id it got when it reconnects: that is
	// the newest resume point, whatever the URL says.
	if lei := strings.TrimSpace(r.Header.Get("Last-Event-ID")); lei != "" {
		n, err := parseSeq(lei)
		if err != nil {
			writeError(w, http.StatusBadRequest, "Last-Event-ID: "+err.Error())
			return
		}
		opts.since = &sincePoint{seq: n}
	}
	claims, ok := b.authorized(w, r, access{library: id})
	if !ok {
		return
	}
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
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

	cl, rm, st, err := b.openClient(r.Context(), subjects.Live(pattern), id, connectedFrameFunc("library_id", id), opts, r.RemoteAddr, "sse")
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	defer b.leave(rm, cl)
	st.expires = claims.ExpiresAt()

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // proxies: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	if !b.addClient(cl, func() { _ = rc.SetWriteDeadline(time.Unix(1, 0)) }) {
		return
	}
	defer b.removeClient(cl)
	// The handler's goroutine stays (the response is only valid until it
	// returns) and waits; the writer runs when there is work.
	cl.over = make(chan struct{})
	cl.start(&sseTransport{w: w, rc: rc, ctx: r.Context(), timeout: b.cfg.WriteTimeout}, st)
	select {
	case <-r.Context().Done():
	case <-cl.over:
	}
	cl.finish()
}

// sseTransport writes a client's frames as Server-Sent Events: each batch
// is one write and one flush, under a write deadline of WriteTimeout.
type sseTransport struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	ctx     context.Context // the request's: ends when the client goes
	timeout time.Duration
	bp      *[]byte // from the batch pool between begin and end
}

// begin takes a buffer from the pool; end gives it back, so that an idle
// client holds none.
func (t *sseTransport) begin() {
	if t.bp == nil {
		t.bp = getBatchBuf()
	}
}

// send appends one event:
//
//	id: <seq>          event frames (no event: line, so EventSource's onmessage gets them)
//	event: connected   the connected frame (with retry:)
//	event: gap         a gap frame
//	data: <the frame's JSON>
func (t *sseTransport) send(kind frameKind, seq uint64, buf []byte) error {
	switch kind {
	case kindEvent:
		*t.bp = append(*t.bp, "id: "...)
		*t.bp = strconv.AppendUint(*t.bp, seq, 10)
		*t.bp = append(*t.bp, '\n')
	case kindConnected:
		*t.bp = append(*t.bp, "retry: "...)
		*t.bp = strconv.AppendInt(*t.bp, sseRetryMS, 10)
		*t.bp = append(*t.bp, "\nevent: connected\n"...)
	case kindGap:
		*t.bp = append(*t.bp, "event: gap\n"...)
	}
	*t.bp = appendSSEData(*t.bp, buf)
	if len(*t.bp) >= maxBatchBytes {
		return t.flush()
	}
	return nil
}

func (t *sseTransport) end() error {
	err := t.flush()
	if t.bp != nil {
		putBatchBuf(t.bp)
		t.bp = nil
	}
	return err
}

func (t *sseTransport) flush() error {
	if t.bp == nil || len(*t.bp) == 0 {
		return nil
	}
	_ = t.rc.SetWriteDeadline(time.Now().Add(t.timeout))
	_, err := t.w.Write(*t.bp)
	if err == nil {
		err = t.rc.Flush()
	}
	*t.bp = (*t.bp)[:0]
	return err
}

// tryBegin: an SSE stream is written by its client's writer only
// (http.ResponseWriter has no write that cannot block).
func (t *sseTransport) tryBegin() bool { return false }

// tryEnd is never called (tryBegin fails).
func (t *sseTransport) tryEnd() (bool, error) { return false, errNoDirect }

// keepAlive writes a comment line, which EventSource ignores.
func (t *sseTransport) keepAlive() error {
	t.begin()
	*t.bp = append(*t.bp, ": keep-alive\n\n"...)
	return t.end()
}

// closeSlow ends the stream with a close event. EventSource reconnects by
// itself with Last-Event-ID = the last seq it got, so nothing is lost.
func (t *sseTransport) closeSlow(reason string) {
	data := append([]byte(`{"type":"close","reason":`), event.AppendString(nil, reason)...)
	t.begin()
	*t.bp = append(*t.bp, "event: close\n"...)
	*t.bp = appendSSEData(*t.bp, append(data, '}'))
	_ = t.end()
}

// expired ends the stream with a close event whose reason is "token
// expired". EventSource then reconnects with the same URL and gets 401,
// which stops it; a client renews its token and opens a new one.
func (t *sseTransport) expired() { t.closeSlow(reasonExpired) }

// goingAway just ends the stream: EventSource reconnects (to another
// bridge, or this one restarted) from the last id it got.
func (t *sseTransport) goingAway() {}

func (t *sseTransport) gone() <-chan struct{} { return t.ctx.Done() }

// drop: the handler returns when the writer ended the client (over).
func (t *sseTransport) drop() {}

// appendSSEData appends data as "data:" lines and the blank line that ends
// an event. A line break inside data (JSON whitespace in an event's data)
// starts a new "data:" line; the receiver joins them with "\n".
func appendSSEData(dst, data []byte) []byte {
	dst = append(dst, "data: "...)
	if !bytes.ContainsAny(data, "\r\n") {
		dst = append(dst, data...)
		return append(dst, "\n\n"...)
	}
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '\r', '\n':
			if c == '\r' && i+1 < len(data) && data[i+1] == '\n' {
				i++
			}
			dst = append(dst, "\ndata: "...)
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, "\n\n"...)
}
