package bridge

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/subjects"
)

// Headers the EVENTS stream's RePublish adds to each live message.
const (
	hdrSequence = "Nats-Sequence"
	hdrMsgID    = jetstream.MsgIDHeader
)

var errNoSequence = errors.New("live message without a valid Nats-Sequence header")

// frame is one event, parsed once and encoded once, shared read-only by
// every client it is queued for.
type frame struct {
	buf    []byte // the WebSocket message
	seq    uint64
	tsUS   int64 // event timestamp, µs since the Unix epoch
	typ    *typeStats
	etype  string // event type: "document.added"
	source string
}

// parseLive turns a live message into an event: the subject without
// "live.", the decoded event (valid, agreeing with the subject) and its
// stream sequence. Errors wrap event.ErrInvalid or errNoSequence.
func parseLive(m *nats.Msg, maxSize int) (ev event.Event, seq uint64, err error) {
	subject, ok := subjects.FromLive(m.Subject)
	if !ok {
		return ev, 0, fmt.Errorf("%w: subject %q is not a live subject", event.ErrInvalid, m.Subject)
	}
	ev, err = event.Decode(m.Data, maxSize)
	if err != nil {
		return ev, 0, err
	}
	if err := ev.CheckSubject(subject); err != nil {
		return ev, 0, err
	}
	if ev.ID == "" {
		ev.ID = header(m, hdrMsgID)
	}
	seq, err = strconv.ParseUint(header(m, hdrSequence), 10, 64)
	if err != nil || seq == 0 {
		return ev, 0, errNoSequence
	}
	return ev, seq, nil
}

// header reads the first value of key, which must be in canonical form,
// without canonicalizing it again.
func header(m *nats.Msg, key string) string {
	if v := m.Header[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// frameSize is an upper bound of the frame of ev, so appendEventFrame into
// a buffer of that capacity does not grow it (strings escape to at most six
// bytes a byte, but ids, sources, types and library ids are plain in
// practice; a rare escape just grows the buffer once).
func frameSize(ev *event.Event) int {
	return 192 + len(ev.Type) + len(ev.ID) + len(ev.LibraryID) + len(ev.Source) + len(ev.Data)
}

// appendEventFrame appends the event frame of ev with sequence seq:
//
//	{"type":"event","event_type":…,"id":…,"seq":…,"library_id":…,"timestamp":…,"source":…,"data":{…}}
func appendEventFrame(dst []byte, ev *event.Event, seq uint64) []byte {
	dst = append(dst, `{"type":"event","event_type":`...)
	dst = event.AppendString(dst, ev.Type)
	dst = append(dst, `,"id":`...)
	dst = event.AppendString(dst, ev.ID)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"library_id":`...)
	dst = event.AppendString(dst, ev.LibraryID)
	dst = append(dst, `,"timestamp":"`...)
	dst = ev.Timestamp.UTC().AppendFormat(dst, event.TimeLayout)
	dst = append(dst, `","source":`...)
	dst = event.AppendString(dst, ev.Source)
	dst = append(dst, `,"data":`...)
	if len(ev.Data) == 0 {
		dst = append(dst, "{}"...)
	} else {
		dst = append(dst, ev.Data...)
	}
	return append(dst, '}')
}

// connectedFrame is the first frame of a socket: key is "library_id" or
// "filter".
func connectedFrame(key, value string, streamSeq uint64) []byte {
	b := make([]byte, 0, 64+len(value))
	b = append(b, `{"type":"connected","`...)
	b = append(b, key...)
	b = append(b, `":`...)
	b = event.AppendString(b, value)
	b = append(b, `,"stream_seq":`...)
	b = strconv.AppendUint(b, streamSeq, 10)
	return append(b, '}')
}
