package bridge

import (
	"errors"
	"fmt"
	"strconv"
	"unsafe"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/subjects"
)

// Headers the EVENTS stream's RePublish adds to each live message.
const (
	hdrSequence     = "Nats-Sequence"
	hdrLastSequence = "Nats-Last-Sequence" // the previous seq of the same exact subject
	hdrMsgID        = jetstream.MsgIDHeader
)

var errNoSequence = errors.New("live message without a valid Nats-Sequence header")

// frame is one event, parsed once and encoded once, shared read-only by
// every client it is queued for.
type frame struct {
	buf    []byte // the WebSocket message (and the SSE data)
	seq    uint64
	tsUS   int64 // event timestamp, µs since the Unix epoch
	typ    *typeStats
	etype  string // event type: "document.added"
	source string
	// replayed frames were read from the stream for one resuming client:
	// counted as delivered, but not in the delivery latency.
	replayed bool
}

// parseLive turns a live message into an event: the subject without
// "live.", the decoded event (valid, agreeing with the subject) and its
// stream sequence. Errors wrap event.ErrInvalid or errNoSequence.
func parseLive(m *nats.Msg, maxSize int) (ev event.Event, seq uint64, err error) {
	seq, ok := liveSeq(m)
	if !ok {
		return ev, 0, errNoSequence
	}
	ev, err = parseEvent(m.Subject, true, m.Data, m.Header, maxSize)
	return ev, seq, err
}

// liveSeq reads a live message's stream sequence (Nats-Sequence).
func liveSeq(m *nats.Msg) (uint64, bool) {
	seq, err := strconv.ParseUint(header(m.Header, hdrSequence), 10, 64)
	return seq, err == nil && seq > 0
}

// liveLastSeq reads Nats-Last-Sequence: the sequence of the previous event
// stored on the same exact subject, 0 if none (or no header).
func liveLastSeq(m *nats.Msg) uint64 {
	seq, _ := strconv.ParseUint(header(m.Header, hdrLastSequence), 10, 64)
	return seq
}

// parseEvent decodes and checks the event stored on subject (or on its
// live twin when live is set); an event without id gets its Nats-Msg-Id.
// data is a received message's payload, which nats.go copies for each
// message and nothing modifies: the event's strings and Data refer to it
// ([event.DecodeShared]), so whatever keeps one of them for longer than
// the message (a map key of the statistics, a frame) keeps a copy.
func parseEvent(subject string, live bool, data []byte, h nats.Header, maxSize int) (event.Event, error) {
	if live {
		s, ok := subjects.FromLive(subject)
		if !ok {
			return event.Event{}, fmt.Errorf("%w: subject %q is not a live subject", event.ErrInvalid, subject)
		}
		subject = s
	}
	ev, err := event.DecodeShared(data, maxSize)
	if err != nil {
		return ev, err
	}
	if err := ev.CheckSubject(subject); err != nil {
		return ev, err
	}
	if ev.ID == "" {
		ev.ID = header(h, hdrMsgID)
	}
	return ev, nil
}

// header reads the first value of key, which must be in canonical form,
// without canonicalizing it again.
func header(h nats.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// newFrame builds the shared frame of ev at seq. The frame's type and
// source are copied into its buffer, past the frame's bytes: ev's may
// point into a received message's payload (parseEvent), which a queued
// frame would otherwise keep alive beside its own bytes (the queues'
// bounds count only those), and the one buffer costs no allocation more.
func (b *Bridge) newFrame(ev *event.Event, seq uint64) *frame {
	buf := appendEventFrame(make([]byte, 0, frameSize(ev)+len(ev.Type)+len(ev.Source)), ev, seq)
	n := len(buf)
	buf = append(append(buf, ev.Type...), ev.Source...)
	strs := unsafe.String(unsafe.SliceData(buf[n:]), len(buf)-n) // buf is never written again
	return &frame{
		buf:    buf[:n:n],
		seq:    seq,
		tsUS:   ev.Timestamp.UnixMicro(),
		typ:    b.counters.typ(ev.Type),
		etype:  strs[:len(ev.Type)],
		source: strs[len(ev.Type):],
	}
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
	dst = event.AppendTime(dst, ev.Timestamp)
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

// gapFrame tells a client that it will not get the events of sequences
// from..to (those it selects): reason "slow" (dropped under
// on_slow=drop_oldest) or "expired" (no longer in the stream).
func gapFrame(from, to uint64, reason string) []byte {
	b := make([]byte, 0, 80)
	b = append(b, `{"type":"gap","from_seq":`...)
	b = strconv.AppendUint(b, from, 10)
	b = append(b, `,"to_seq":`...)
	b = strconv.AppendUint(b, to, 10)
	b = append(b, `,"reason":`...)
	b = event.AppendString(b, reason)
	return append(b, '}')
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
