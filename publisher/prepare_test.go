package publisher

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/subjects"
)

// BenchmarkPrepare is the publisher's own work per event, without the
// connection: fill, validate, encode, subject and headers (the message
// from the pool, as a publish takes it).
func BenchmarkPrepare(b *testing.B) {
	p := &Publisher{prefix: "events", source: "bench-app-1", maxSize: event.DefaultMaxSize}
	data := json.RawMessage(`{"document_id":"a1b2c3d4-e5f6-7890-abcd-ef1234567890",` +
		`"title":"Attention Is All You Need (annotated copy)","num_chunks":42}`)
	b.ReportAllocs()
	for b.Loop() {
		ev := event.Event{Type: event.TypeDocumentAdded, LibraryID: "lib-1", Data: data}
		var pr prepared
		if err := p.prepare(&ev, &pr); err != nil {
			b.Fatal(err)
		}
		m := getMsg(&pr, "")
		if m.m.Header.Get(hdrID) != ev.ID {
			b.Fatalf("ce-id %q, want %q", m.m.Header.Get(hdrID), ev.ID)
		}
		putMsg(m)
	}
}

// TestPrepareTimeAfterEncoding: the ce-time value that prepare writes into
// the room after the encoded event is the event's time, and stays so when
// the encoding is appended to (data is capped); also for an event whose
// escapes outgrow the buffer Encode sized.
func TestPrepareTimeAfterEncoding(t *testing.T) {
	p := &Publisher{prefix: "events", source: "app-1", maxSize: event.DefaultMaxSize}
	for _, source := range []string{"", strings.Repeat(`"`, maxTextLen)} {
		ev := event.Event{Type: event.TypeDocumentAdded, LibraryID: "lib-1", Source: source,
			Data: json.RawMessage(`{"k":"v"}`)}
		var pr prepared
		if err := p.prepare(&ev, &pr); err != nil {
			t.Fatal(err)
		}
		want, err := event.Encode(&ev, 0)
		if err != nil {
			t.Fatal(err)
		}
		wantTime := string(event.AppendTime(nil, ev.Timestamp))
		if !bytes.Equal(pr.data, want) || pr.time != wantTime || cap(pr.data) != len(pr.data) {
			t.Fatalf("prepared data %q (cap %d), time %q; want %q, %q", pr.data, cap(pr.data), pr.time, want, wantTime)
		}
		_ = append(pr.data, strings.Repeat("x", 64)...)
		if pr.time != wantTime {
			t.Fatalf("time %q after an append to data, want %q", pr.time, wantTime)
		}
	}
}

// maxTextLen is event's bound on id and source.
const maxTextLen = 256

// TestPrepareSubject: the subject prepare builds without validating again
// is the one subjects.Build gives, for built-in and custom types and a
// prefix of several tokens; an event Build would refuse is refused before.
func TestPrepareSubject(t *testing.T) {
	for _, prefix := range []string{"events", "prod.events"} {
		p := &Publisher{prefix: prefix, source: "app-1", maxSize: event.DefaultMaxSize}
		for _, typ := range []string{event.TypeDocumentAdded, "workflow.completed", "a-b_1.c-d_2"} {
			ev := event.Event{Type: typ, LibraryID: "550e8400-e29b-41d4_A"}
			var pr prepared
			if err := p.prepare(&ev, &pr); err != nil {
				t.Fatal(err)
			}
			want, err := subjects.Build(prefix, ev.LibraryID, typ)
			if err != nil || pr.subject != want {
				t.Fatalf("subject %q, want %q (%v)", pr.subject, want, err)
			}
		}
		for _, ev := range []event.Event{
			{Type: "document.added", LibraryID: "a.b"},
			{Type: "document.added.x", LibraryID: "lib"},
			{Type: "Document.added", LibraryID: "lib"},
		} {
			var pr prepared
			if err := p.prepare(&ev, &pr); !errors.Is(err, event.ErrInvalid) {
				t.Fatalf("prepare(%+v) = %v, want ErrInvalid", ev, err)
			}
		}
	}
}
