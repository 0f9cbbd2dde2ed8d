package subscriber

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/subjects"
)

// BenchmarkPipeline measures the delivery path inside the process, without
// the network: inbox, dispatch by library, decode and check, handler call.
func BenchmarkPipeline(b *testing.B) {
	msgs := make([]*nats.Msg, 16) // 16 libraries
	for i := range msgs {
		msgs[i] = documentAddedMsg(b, fmt.Sprintf("lib-%d", i))
	}
	for _, n := range []int{1, 4} {
		b.Run(fmt.Sprintf("concurrency=%d", n), func(b *testing.B) {
			o := defaultOptions()
			o.concurrency = n
			s := start(context.Background(), nil, modeCore, o, []string{"events.library.*.>"}, nil,
				func(context.Context, Delivery) error { return nil })
			go s.supervise(context.Background())
			b.SetBytes(int64(len(msgs[0].Data)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				s.inbox <- msgs[i%len(msgs)]
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := s.Drain(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if st := s.Stats(); st.Handled != uint64(b.N) {
				b.Fatalf("stats %+v", st)
			}
		})
	}
}

// documentAddedMsg is the core NATS message a publisher sends for a
// document.added event of library lib.
func documentAddedMsg(tb testing.TB, lib string) *nats.Msg {
	tb.Helper()
	ev, err := event.NewDocumentAdded(lib, event.DocumentAdded{
		DocumentID: "a1b2c3d4-e5f6-7890-abcd-ef1234567890", Title: "Attention Is All You Need", NumChunks: 42,
	})
	if err != nil {
		tb.Fatal(err)
	}
	data, err := event.Encode(&ev, 0)
	if err != nil {
		tb.Fatal(err)
	}
	subj, err := ev.Subject(subjects.DefaultPrefix)
	if err != nil {
		tb.Fatal(err)
	}
	return &nats.Msg{Subject: subj, Data: data, Header: nats.Header{nats.MsgIdHdr: {ev.ID}}}
}
