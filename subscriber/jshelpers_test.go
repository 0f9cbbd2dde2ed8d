package subscriber_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/arrwdb/arrwcdc/broker"
	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/checker"
	"github.com/arrwdb/arrwcdc/internal/testnats"
	"github.com/arrwdb/arrwcdc/publisher"
	"github.com/arrwdb/arrwcdc/subscriber"
)

// jsEnv is one embedded broker with the EVENTS stream, a publisher and a
// JetStream context for the consumers (on another connection).
type jsEnv struct {
	env
	js  jetstream.JetStream
	pub *publisher.Publisher
	b   *broker.Broker
}

func newJSEnv(t testing.TB) jsEnv {
	t.Helper()
	b := testnats.Broker(t)
	url := b.ClientURL()
	e := jsEnv{env: env{pub: testnats.Conn(t, url), sub: testnats.Conn(t, url), url: url}, b: b}
	e.js = testnats.JetStream(t, e.sub)
	pub, err := publisher.New(e.env.pub)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close(context.Background()) })
	e.pub = pub
	return e
}

// published is one acknowledged event.
type published struct {
	ev  event.Event
	ack publisher.Ack
}

// publishMany publishes n events spread over libs (round robin), type
// document.added, data {"n": i}, with PublishAsync in batches, and
// returns them in publish order with their acks. Each is acked in c (if
// not nil) when keep(i) is true (nil keep keeps all).
func publishMany(t testing.TB, pub *publisher.Publisher, n int, libs []string, c *checker.Checker, keep func(int) bool) []published {
	t.Helper()
	batch := publishBatch
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out := make([]published, 0, n)
	futures := make([]*publisher.Future, 0, batch)
	evs := make([]event.Event, 0, batch)
	for start := 0; start < n; start += batch {
		futures, evs = futures[:0], evs[:0]
		for i := start; i < min(n, start+batch); i++ {
			ev := newEvent(t, libs[i%len(libs)], event.TypeDocumentAdded, i)
			f, err := pub.PublishAsync(ev)
			if err != nil {
				t.Fatal(err)
			}
			futures = append(futures, f)
			evs = append(evs, ev)
		}
		for j, f := range futures {
			ack, err := f.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, published{evs[j], ack})
			if c != nil && (keep == nil || keep(start+j)) {
				c.Ack(ack.Seq, ack.ID)
			}
		}
	}
	return out
}

// publishBatch is how many async publishes publishMany has in flight: more
// risks ack timeouts on a loaded machine under -race.
const publishBatch = 1000

// publishJS publishes evs one by one, waiting for each ack.
func publishJS(t testing.TB, pub *publisher.Publisher, c *checker.Checker, evs ...event.Event) []publisher.Ack {
	t.Helper()
	var acks []publisher.Ack
	for _, ev := range evs {
		ack, err := pub.Publish(t.Context(), ev)
		if err != nil {
			t.Fatal(err)
		}
		if c != nil {
			c.Ack(ack.Seq, ack.ID)
		}
		acks = append(acks, ack)
	}
	return acks
}

func libraries(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("lib-%d", i)
	}
	return out
}

// consume starts a durable subscription with a test logger and
// unsubscribes at cleanup.
func consume(t testing.TB, js jetstream.JetStream, durable string, f subscriber.Filter, h subscriber.Handler, opts ...subscriber.Option) *subscriber.Subscription {
	t.Helper()
	s, err := subscriber.Consume(context.Background(), js, durable, f, h, append([]subscriber.Option{logger(t)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Unsubscribe() })
	return s
}

// replay starts an ordered replay with a test logger and unsubscribes at
// cleanup.
func replay(t testing.TB, js jetstream.JetStream, f subscriber.Filter, h subscriber.Handler, opts ...subscriber.Option) *subscriber.Subscription {
	t.Helper()
	s, err := subscriber.Replay(context.Background(), js, f, h, append([]subscriber.Option{logger(t)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Unsubscribe() })
	return s
}

// consumerSettled waits until the durable consumer has nothing pending,
// nothing awaiting an ack, and returns its info.
func consumerSettled(t testing.TB, js jetstream.JetStream, durable string) *jetstream.ConsumerInfo {
	t.Helper()
	var info *jetstream.ConsumerInfo
	testnats.Eventually(t, waitTimeout, func() error {
		cons, err := js.Consumer(t.Context(), subscriber.DefaultStream, durable)
		if err != nil {
			return err
		}
		info = cons.CachedInfo()
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return fmt.Errorf("consumer %s: %d pending, %d awaiting ack", durable, info.NumPending, info.NumAckPending)
		}
		return nil
	})
	return info
}

// streamMsgs waits until stream holds n messages and returns them.
func streamMsgs(t testing.TB, js jetstream.JetStream, stream string, n int) []*jetstream.RawStreamMsg {
	t.Helper()
	var st jetstream.Stream
	testnats.Eventually(t, waitTimeout, func() error {
		var err error
		if st, err = js.Stream(t.Context(), stream); err != nil {
			return err
		}
		if got := st.CachedInfo().State.Msgs; got != uint64(n) {
			return fmt.Errorf("stream %s holds %d messages, want %d", stream, got, n)
		}
		return nil
	})
	var out []*jetstream.RawStreamMsg
	first := st.CachedInfo().State.FirstSeq
	for seq := first; len(out) < n; seq++ {
		m, err := st.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// recordTo returns a handler that records every delivery in c and checks
// that it carries a stream sequence.
func recordTo(t testing.TB, c *checker.Checker) subscriber.Handler {
	return func(_ context.Context, d subscriber.Delivery) error {
		if d.Seq == 0 || d.Attempt < 1 {
			t.Errorf("delivery %s: seq %d, attempt %d", d.ID, d.Seq, d.Attempt)
		}
		c.Record(d.Seq, d.ID)
		return nil
	}
}
