package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/publisher"
)

const (
	// maxPublishEvents bounds the events of one POST /v1/events.
	maxPublishEvents = 10000
	// publishTimeout bounds the wait for the acks of one POST.
	publishTimeout = 30 * time.Second
)

// PublishResult is one entry of the answer of POST /v1/events: the
// event's id and its stream sequence. Duplicate is set when the stream
// already held an event with this id (within its duplicate window) and
// kept that one: Seq is then the stored event's.
type PublishResult struct {
	ID        string `json:"id"`
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

// publishFailure is the body of a 503: the first failure, and the events
// that were acknowledged anyway, in request order.
type publishFailure struct {
	Error     string           `json:"error"`
	Published []publishedIndex `json:"published"`
}

type publishedIndex struct {
	Index int `json:"index"`
	PublishResult
}

// errTooMany is answered 413.
var errTooMany = fmt.Errorf("more than %d events in one request", maxPublishEvents)

// handlePublish serves POST /v1/events (see the package doc).
func (b *Bridge) handlePublish(w http.ResponseWriter, r *http.Request) {
	for k := range r.URL.Query() {
		if k != "token" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown query parameter %q (allowed: token)", truncate(k)))
			return
		}
	}
	if _, ok := b.authorized(w, r, access{publish: true}); !ok {
		return
	}
	// JSON only, and said so: a page of another site cannot send that
	// without a CORS preflight (which the bridge never grants), so a
	// browser cannot be made to publish here even while auth is off.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q: send application/json (curl: -H 'Content-Type: application/json')",
			truncate(r.Header.Get("Content-Type"))))
		return
	}
	// The server has no ReadTimeout (it would end SSE streams): this
	// request's body gets its own deadline.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(b.cfg.BodyReadTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, b.cfg.MaxPublishBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", b.cfg.MaxPublishBytes))
			return
		}
		writeError(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	if !utf8.Valid(body) {
		writeError(w, http.StatusBadRequest, "body: not valid UTF-8")
		return
	}
	evs, err := decodePosted(body, b.cfg.MaxEventSize)
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, errTooMany) {
			code = http.StatusRequestEntityTooLarge
		}
		writeError(w, code, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), publishTimeout)
	defer cancel()
	results, err := b.publishAll(ctx, evs)
	if err != nil {
		fail := publishFailure{Error: err.Error(), Published: []publishedIndex{}}
		for i, r := range results {
			if r.ID != "" {
				fail.Published = append(fail.Published, publishedIndex{i, r})
			}
		}
		writeJSON(w, http.StatusServiceUnavailable, fail)
		return
	}
	writeJSON(w, http.StatusAccepted, results)
}

// publishAll publishes evs in order and waits for their acks. It returns
// one result per event, the zero PublishResult for those that failed (or
// were not sent after a failure), and the first error.
func (b *Bridge) publishAll(ctx context.Context, evs []event.Event) ([]PublishResult, error) {
	futures := make([]*publisher.Future, 0, len(evs))
	var sendErr error
	for i := range evs {
		f, err := b.pub.PublishAsync(evs[i])
		if err != nil {
			sendErr = fmt.Errorf("%s: %w", index(i, len(evs)), err)
			break
		}
		futures = append(futures, f)
	}
	results := make([]PublishResult, len(evs))
	var firstErr error // the failure of the earliest event
	for i, f := range futures {
		ack, err := f.Wait(ctx)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("%s: %w", index(i, len(evs)), err)
			}
			continue
		}
		results[i] = PublishResult{ID: ack.ID, Seq: ack.Seq, Duplicate: ack.Duplicate}
	}
	if firstErr == nil {
		firstErr = sendErr
	}
	return results, firstErr
}

// index names event i of n in error messages.
func index(i, n int) string {
	if n == 1 {
		return "event"
	}
	return fmt.Sprintf("events[%d]", i)
}

// decodePosted reads the body of POST /v1/events: one event object or a
// JSON array of them. Each is decoded strictly (unknown fields are an
// error), gets a new id and the current time when it has none, and must be
// valid and at most maxSize bytes encoded; the first problem is returned,
// naming the event.
func decodePosted(body []byte, maxSize int) ([]event.Event, error) {
	body = bytes.TrimSpace(body)
	var raws []json.RawMessage
	switch {
	case len(body) == 0:
		return nil, errors.New("empty body: want an event object or a JSON array of them")
	case body[0] == '[':
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
		if len(raws) == 0 {
			return nil, errors.New("empty array: nothing to publish")
		}
		if len(raws) > maxPublishEvents {
			return nil, errTooMany
		}
	case body[0] == '{':
		raws = []json.RawMessage{body}
	default:
		return nil, errors.New("body: want an event object or a JSON array of them")
	}
	n := len(raws)
	if body[0] == '[' && n == 1 {
		n = 2 // an array of one names its event events[0]
	}
	evs := make([]event.Event, len(raws))
	for i, raw := range raws {
		ev, err := decodePostedEvent(raw, maxSize)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", index(i, n), err)
		}
		evs[i] = ev
	}
	return evs, nil
}

// postedEvent is the shape of a posted event: pointers tell missing from
// empty.
type postedEvent struct {
	ID        *string         `json:"id"`
	Type      *string         `json:"type"`
	LibraryID *string         `json:"library_id"`
	Timestamp *string         `json:"timestamp"`
	Source    *string         `json:"source"`
	Data      json.RawMessage `json:"data"`
}

func decodePostedEvent(raw json.RawMessage, maxSize int) (event.Event, error) {
	if !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		return event.Event{}, fmt.Errorf("%w: not a JSON object", event.ErrInvalid)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var p postedEvent
	if err := dec.Decode(&p); err != nil {
		return event.Event{}, fmt.Errorf("%w: %w", event.ErrInvalid, err)
	}
	if dec.More() {
		return event.Event{}, fmt.Errorf("%w: more than one JSON value", event.ErrInvalid)
	}
	switch {
	case p.Type == nil:
		return event.Event{}, fmt.Errorf("%w: type: missing", event.ErrInvalid)
	case p.LibraryID == nil:
		return event.Event{}, fmt.Errorf("%w: library_id: missing", event.ErrInvalid)
	}
	ev := event.Event{Type: *p.Type, LibraryID: *p.LibraryID}
	if p.ID != nil {
		ev.ID = *p.ID
	}
	if p.Timestamp != nil && *p.Timestamp != "" {
		ts, err := event.ParseTime(*p.Timestamp)
		if err != nil {
			return event.Event{}, err
		}
		ev.Timestamp = ts
	}
	if p.Source != nil {
		ev.Source = *p.Source
	}
	if len(p.Data) > 0 && string(p.Data) != "null" {
		ev.Data = p.Data
	}
	// A new id and the time now where missing; the source stays for the
	// publisher to fill.
	ev.Fill("")
	if _, err := event.Encode(&ev, maxSize); err != nil { // validates
		return event.Event{}, err
	}
	return ev, nil
}
