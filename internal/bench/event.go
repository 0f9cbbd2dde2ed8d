package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/arrwdb/arrwcdc/event"
)

// benchSource is the source of every bench event.
const benchSource = "arrwcdc-bench"

// eventTemplate returns a document.added event of library lib whose
// encoded form (once the publisher has set a UUIDv7 id and the timestamp)
// is size bytes, or the smallest possible if size is smaller; and that
// encoded size. ID and Timestamp are left empty for the publisher.
func eventTemplate(lib string, size int) (event.Event, int, error) {
	build := func(pad int) (event.Event, int, error) {
		data, err := json.Marshal(event.DocumentAdded{
			DocumentID: "0193f1d2-8c4e-7b3a-9d2f-2c6e5a7b8c9d",
			Title:      strings.Repeat("x", pad),
			NumChunks:  3,
		})
		if err != nil {
			return event.Event{}, 0, err
		}
		ev := event.Event{Type: event.TypeDocumentAdded, LibraryID: lib, Source: benchSource, Data: data}
		full := ev
		full.ID, full.Timestamp = event.NewID(), event.Now()
		b, err := event.Encode(&full, event.DefaultMaxSize)
		if err != nil {
			return event.Event{}, 0, fmt.Errorf("bench: event of %d bytes: %w", size, err)
		}
		return ev, len(b), nil
	}
	ev, n, err := build(0)
	if err != nil || n >= size {
		return ev, n, err
	}
	return build(size - n)
}

// Fields of the frames and messages the clients read.
var (
	tsKey  = []byte(`"timestamp":"`)
	seqKey = []byte(`"seq":`)
)

// frameTimestamp returns the event timestamp in a frame or event JSON, in
// µs since the epoch: the first "timestamp":"…" field (event.ParseTimeBytes:
// the publisher's layout without allocating).
func frameTimestamp(b []byte) (int64, bool) {
	i := bytes.Index(b, tsKey)
	if i < 0 {
		return 0, false
	}
	b = b[i+len(tsKey):]
	end := bytes.IndexByte(b, '"')
	if end < 0 {
		return 0, false
	}
	t, err := event.ParseTimeBytes(b[:end])
	if err != nil {
		return 0, false
	}
	return t.UnixMicro(), true
}

// frameSeq returns the number of the first "seq": field; 0 if none.
func frameSeq(b []byte) uint64 {
	i := bytes.Index(b, seqKey)
	if i < 0 {
		return 0
	}
	var n uint64
	for _, c := range b[i+len(seqKey):] {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + uint64(c-'0')
	}
	return n
}

// sinceUS returns the time from ts (µs since the epoch) to now.
func sinceUS(now time.Time, ts int64) time.Duration {
	return time.Duration(now.UnixMicro()-ts) * time.Microsecond
}
