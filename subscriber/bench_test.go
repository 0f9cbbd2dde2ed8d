package subscriber_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/subjects"
	"github.com/arrwdb/arrwcdc/subscriber"
)

// BenchmarkDeliver measures the whole path of one event through an
// embedded broker: publish, read, validate, dispatch, handler. The prefix
// is one the EVENTS stream does not store, so the figure is core NATS plus
// this package. At most window events are in flight, so nothing is
// dropped.
func BenchmarkDeliver(b *testing.B) {
	for _, n := range []int{1, 4} {
		b.Run(fmt.Sprintf("concurrency=%d", n), func(b *testing.B) {
			e := newEnv(b)
			const window = 1024
			tokens := make(chan struct{}, window)
			s := subscribe(b, e.sub, subscriber.Filter{}, func(context.Context, subscriber.Delivery) error {
				<-tokens
				return nil
			}, subscriber.Concurrency(n), subscriber.PendingLimit(2*window), subscriber.WithPrefix("bench"))
			msgs := make([]*nats.Msg, 16)
			for i := range msgs {
				msgs[i] = message(b, newEvent(b, fmt.Sprintf("lib-%d", i), event.TypeDocumentAdded, i))
				msgs[i].Subject = "bench" + strings.TrimPrefix(msgs[i].Subject, subjects.DefaultPrefix)
			}
			b.SetBytes(int64(len(msgs[0].Data)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				tokens <- struct{}{}
				if err := e.pub.PublishMsg(msgs[i%len(msgs)]); err != nil {
					b.Fatal(err)
				}
			}
			waitStats(b, s, func(st subscriber.Stats) bool { return st.Handled == uint64(b.N) })
			b.StopTimer()
			if st := s.Stats(); st.Dropped+st.Invalid+st.Failed != 0 {
				b.Fatalf("stats %+v", st)
			}
		})
	}
}

// BenchmarkConsumeBacklog measures a durable consumer working through a
// stored backlog: pull, validate, dispatch, handler, ack. Publishing the
// backlog is not timed.
func BenchmarkConsumeBacklog(b *testing.B) {
	for _, n := range []int{1, 4} {
		b.Run(fmt.Sprintf("concurrency=%d", n), func(b *testing.B) {
			e := newJSEnv(b)
			publishMany(b, e.pub, b.N, libraries(16), nil, nil)
			b.ReportAllocs()
			b.ResetTimer()
			s := consume(b, e.js, "bench", subscriber.Filter{}, func(context.Context, subscriber.Delivery) error { return nil },
				subscriber.Concurrency(n))
			waitStats(b, s, func(st subscriber.Stats) bool { return st.Handled == uint64(b.N) })
			b.StopTimer()
			drain(b, s)
		})
	}
}

// BenchmarkReplayBacklog is BenchmarkConsumeBacklog through Replay (no
// acks).
func BenchmarkReplayBacklog(b *testing.B) {
	e := newJSEnv(b)
	publishMany(b, e.pub, b.N, libraries(16), nil, nil)
	b.ReportAllocs()
	b.ResetTimer()
	s := replay(b, e.js, subscriber.Filter{}, func(context.Context, subscriber.Delivery) error { return nil })
	waitStats(b, s, func(st subscriber.Stats) bool { return st.Handled == uint64(b.N) })
	b.StopTimer()
	drain(b, s)
}
