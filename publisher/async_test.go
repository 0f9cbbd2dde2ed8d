package publisher_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/testnats"
	"github.com/arrwdb/arrwcdc/publisher"
)

// fakeStream answers the publishes under prefix on a second connection,
// as JetStream would, with whatever answer returns; nil answers nothing.
func (f *fixture) fakeStream(t *testing.T, prefix string, answer func(m *nats.Msg) []byte) {
	t.Helper()
	nc := testnats.Conn(t, f.b.ClientURL())
	sub, err := nc.Subscribe(prefix+".>", func(m *nats.Msg) {
		if reply := answer(m); reply != nil {
			_ = m.Respond(reply)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil { // the subscription is known to the server
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
}

func waitErr(t *testing.T, fut *publisher.Future) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err := fut.Wait(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("future not resolved within 30 s")
	}
	return err
}

// wantPublishFails publishes the design event with p and checks that its
// future fails with target.
func wantPublishFails(t *testing.T, p *publisher.Publisher, target error) {
	t.Helper()
	fut, err := p.PublishAsync(designEvent())
	if err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, fut); !errors.Is(err, target) {
		t.Errorf("future = %v, want %v", err, target)
	}
}

// An ack that never comes fails the future with ErrAsyncPublishTimeout
// (nats.go's timer did that before; the publisher's watcher does now).
func TestPublishAsyncAckTimeout(t *testing.T) {
	f := setup(t)
	f.fakeStream(t, "silent", func(*nats.Msg) []byte { return nil })
	p := f.newPublisher(t, publisher.WithPrefix("silent"), publisher.WithDefaultTimeout(50*time.Millisecond))
	wantPublishFails(t, p, jetstream.ErrAsyncPublishTimeout)
	if s := p.Stats(); s.Failed != 1 || s.Pending != 0 || s.Published != 0 {
		t.Errorf("stats = %+v", s)
	}
	// The watcher goes on after an idle spell.
	wantPublishFails(t, p, jetstream.ErrAsyncPublishTimeout)
}

// A publish blocked by WithMaxPending goes through once a slot frees up.
func TestPublishAsyncStallReleased(t *testing.T) {
	f := setup(t)
	release := make(chan struct{})
	var once sync.Once
	var seq atomic.Uint64
	f.fakeStream(t, "slow", func(*nats.Msg) []byte {
		<-release
		return []byte(`{"stream":"EVENTS","seq":` + strconv.FormatUint(seq.Add(1), 10) + `}`)
	})
	p := f.newPublisher(t, publisher.WithPrefix("slow"), publisher.WithMaxPending(1))
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // if the test fails early; before Close
	first, err := p.PublishAsync(designEvent())
	if err != nil {
		t.Fatal(err)
	}
	second := make(chan error, 1)
	var fut2 *publisher.Future
	go func() {
		var err error
		fut2, err = p.PublishAsync(bareEvent(libID)) // waits for first's slot
		second <- err
	}()
	// Release the first ack only once the second publish waits: a slot
	// freed before then would not test the wake-up.
	testnats.Eventually(t, 10*time.Second, func() error {
		if !publisher.Stalled(p) {
			return errors.New("second PublishAsync not waiting for a slot yet")
		}
		return nil
	})
	once.Do(func() { close(release) })
	if err := <-second; err != nil {
		t.Fatalf("second PublishAsync = %v", err)
	}
	for i, fut := range []*publisher.Future{first, fut2} {
		ack, err := fut.Wait(t.Context())
		if err != nil || ack.Seq != uint64(i+1) {
			t.Errorf("future %d = %+v, %v", i, ack, err)
		}
	}
}

// What JetStream answers decides the future: an error ack is the server's
// *jetstream.APIError, a duplicate is flagged, an ack of an unusual shape
// still reads, and an answer that is no ack fails with ErrInvalidJSAck.
func TestPublishAsyncAnswers(t *testing.T) {
	f := setup(t)
	answers := map[string]string{
		"error":   `{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 1"},"stream":"EVENTS","seq":0}`,
		"dup":     `{"stream":"EVENTS","seq":12,"duplicate": true}`, // nats-server's bytes
		"spaced":  "{ \"seq\" : 13 , \"stream\" : \"EVENTS\", \"val\": \"x\\\"y\", \"count\": 1 }",
		"domain":  `{"stream":"EVENTS","domain":"hub","seq":14}`,
		"garbage": `not json`,
		"nostrm":  `{"seq":15}`,
	}
	f.fakeStream(t, "fake", func(m *nats.Msg) []byte {
		ev, err := event.Decode(m.Data, 0)
		if err != nil {
			return []byte("bad event")
		}
		return []byte(answers[ev.Source])
	})
	p := f.newPublisher(t, publisher.WithPrefix("fake"))
	publish := func(kind string) (publisher.Ack, error) {
		ev := bareEvent(libID)
		ev.Source = kind
		fut, err := p.PublishAsync(ev)
		if err != nil {
			t.Fatal(err)
		}
		return fut.Wait(t.Context())
	}

	_, err := publish("error")
	apiErr, ok := errors.AsType[*jetstream.APIError](err)
	if !ok || apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence || apiErr.Code != 400 ||
		!errors.Is(err, &jetstream.APIError{ErrorCode: jetstream.JSErrCodeStreamWrongLastSequence}) {
		t.Errorf("error ack: %v (%#v)", err, apiErr)
	}
	if ack, err := publish("dup"); err != nil || !ack.Duplicate || ack.Seq != 12 {
		t.Errorf("duplicate ack: %+v, %v", ack, err)
	}
	if ack, err := publish("spaced"); err != nil || ack.Duplicate || ack.Seq != 13 {
		t.Errorf("spaced ack: %+v, %v", ack, err)
	}
	if ack, err := publish("domain"); err != nil || ack.Seq != 14 {
		t.Errorf("ack with a domain: %+v, %v", ack, err)
	}
	for _, kind := range []string{"garbage", "nostrm"} {
		if _, err := publish(kind); !errors.Is(err, jetstream.ErrInvalidJSAck) {
			t.Errorf("%s answer: %v, want ErrInvalidJSAck", kind, err)
		}
	}
	if s := p.Stats(); s.Published != 3 || s.Duplicates != 1 || s.Failed != 3 || s.Pending != 0 {
		t.Errorf("stats = %+v", s)
	}
}

// Close fails the publishes still awaiting their ack, once its context
// ends, with ErrJetStreamPublisherClosed, and removes the subscription
// for the acks from the connection, which stays open.
func TestCloseFailsPendingAsync(t *testing.T) {
	f := setup(t)
	f.fakeStream(t, "silent", func(*nats.Msg) []byte { return nil })
	p, err := publisher.New(f.nc, publisher.WithPrefix("silent"), publisher.WithDefaultTimeout(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	subs := f.nc.NumSubscriptions()
	fut, err := p.PublishAsync(designEvent())
	if err != nil {
		t.Fatal(err)
	}
	if n := f.nc.NumSubscriptions(); n != subs+1 {
		t.Fatalf("%d subscriptions after PublishAsync, want %d", n, subs+1)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := p.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Close = %v, want context.Canceled", err)
	}
	if err := waitErr(t, fut); !errors.Is(err, jetstream.ErrJetStreamPublisherClosed) {
		t.Errorf("future = %v, want ErrJetStreamPublisherClosed", err)
	}
	if s := p.Stats(); s.Pending != 0 || s.Failed != 1 {
		t.Errorf("stats = %+v", s)
	}
	if n := f.nc.NumSubscriptions(); n != subs {
		t.Errorf("%d subscriptions after Close, want %d", n, subs)
	}
}

// A reconnect fails the publishes then pending at once (their acks may be
// lost with the connection), and later ones go through.
func TestPublishAsyncReconnect(t *testing.T) {
	f := setup(t)
	f.fakeStream(t, "silent", func(*nats.Msg) []byte { return nil })
	nc := testnats.Conn(t, f.b.ClientURL(), nats.ReconnectWait(10*time.Millisecond))
	p, err := publisher.New(nc, publisher.WithPrefix("silent"), publisher.WithDefaultTimeout(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	fut, err := p.PublishAsync(designEvent())
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.ForceReconnect(); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, fut); !errors.Is(err, nats.ErrDisconnected) {
		t.Errorf("future = %v, want ErrDisconnected", err)
	}

	q, err := publisher.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close(context.Background()) })
	testnats.Eventually(t, 10*time.Second, func() error {
		if !nc.IsConnected() {
			return errors.New("not reconnected")
		}
		return nil
	})
	fut, err = q.PublishAsync(bareEvent(libID))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fut.Wait(t.Context()); err != nil {
		t.Errorf("publish after the reconnect: %v", err)
	}
}

// When the connection closes, what is pending fails at once and the
// publisher's goroutine ends (goleak checks) even without Close.
func TestPublishAsyncConnClosed(t *testing.T) {
	f := setup(t)
	f.fakeStream(t, "silent", func(*nats.Msg) []byte { return nil })
	nc := testnats.Conn(t, f.b.ClientURL())
	p, err := publisher.New(nc, publisher.WithPrefix("silent"), publisher.WithDefaultTimeout(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	fut, err := p.PublishAsync(designEvent())
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if err := waitErr(t, fut); !errors.Is(err, nats.ErrConnectionClosed) {
		t.Errorf("future = %v, want ErrConnectionClosed", err)
	}
	if _, err := p.PublishAsync(designEvent()); !errors.Is(err, nats.ErrConnectionClosed) {
		t.Errorf("PublishAsync on a closed connection = %v", err)
	}
}

// PublishEncodedAsync sends the bytes it is given, with the headers of
// the event; an event without a source takes the publisher's, as
// PublishAsync would write it.
func TestPublishEncodedAsync(t *testing.T) {
	f := setup(t)
	p := f.newPublisher(t, publisher.WithSource("relay-1"))
	ev := designEvent()
	wire, err := event.Encode(&ev, 0)
	if err != nil {
		t.Fatal(err)
	}
	fut, err := p.PublishEncodedAsync(&ev, wire)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := fut.Wait(t.Context())
	if err != nil || ack.ID != evID {
		t.Fatalf("ack %+v, %v", ack, err)
	}
	m := f.get(t, ack.Seq)
	if string(m.Data) != string(wire) {
		t.Errorf("stored %s, want the bytes given %s", m.Data, wire)
	}
	checkHeaders(t, m.Header, ev, ev.Source)

	bare := designEvent()
	bare.ID, bare.Source = "0193f1d2-8c4e-7b3a-9d2f-2c6e5a7b8c9e", ""
	wire, err = event.Encode(&bare, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fut, err = p.PublishEncodedAsync(&bare, wire); err != nil {
		t.Fatal(err)
	}
	if ack, err = fut.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	got, err := event.Decode(f.get(t, ack.Seq).Data, 0)
	if err != nil || got.Source != "relay-1" {
		t.Errorf("event without a source stored as %+v, %v; want source relay-1", got, err)
	}

	small := f.newPublisher(t, publisher.WithMaxEventSize(len(wire)-1))
	if _, err := small.PublishEncodedAsync(&ev, wire); !errors.Is(err, event.ErrTooLarge) {
		t.Errorf("too large: %v", err)
	}
	ev.LibraryID = "no.dots"
	if _, err := p.PublishEncodedAsync(&ev, wire); !errors.Is(err, event.ErrInvalid) {
		t.Errorf("bad library id: %v", err)
	}
	if s := small.Stats(); s.Invalid != 1 {
		t.Errorf("stats = %+v", s)
	}
	if s := p.Stats(); s.Invalid != 1 || s.Published != 2 || s.Failed != 0 {
		t.Errorf("stats after a bad library id = %+v, want 1 invalid, 2 published", s)
	}
}

// "No responders" (no stream, or none yet: a leader election) is sent
// again twice, 250 ms apart, as nats.go does, before the future fails
// with ErrNoStreamResponse.
func TestPublishAsyncNoRespondersRetries(t *testing.T) {
	const retries, wait = 2, 250 * time.Millisecond
	f := setup(t)

	t.Run("server", func(t *testing.T) {
		// The server answers itself: nothing listens on nostream.>. A
		// subscription would be a responder, so the publisher's own
		// connection counts the sends.
		nc := testnats.Conn(t, f.b.ClientURL())
		p, err := publisher.New(nc, publisher.WithPrefix("nostream"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close(context.Background()) })
		before, start := nc.Stats().OutMsgs, time.Now()
		fut, err := p.PublishAsync(designEvent())
		if err != nil {
			t.Fatal(err)
		}
		err = waitErr(t, fut)
		elapsed := time.Since(start)
		if !errors.Is(err, jetstream.ErrNoStreamResponse) {
			t.Errorf("future = %v, want ErrNoStreamResponse", err)
		}
		if sent := nc.Stats().OutMsgs - before; sent != retries+1 {
			t.Errorf("sent %d times, want %d", sent, retries+1)
		}
		if elapsed < retries*wait {
			t.Errorf("failed after %v, want at least %v", elapsed, retries*wait)
		}
	})

	t.Run("gaps", func(t *testing.T) {
		// A responder that answers as the server does when nobody listens:
		// an empty message with status 503. nats.go reads the server's
		// status line ("NATS/1.0 503") into the Status header, which is
		// what this one sends; it records when each send arrives.
		var (
			mu       sync.Mutex
			arrivals []time.Time
		)
		rc := testnats.Conn(t, f.b.ClientURL())
		sub, err := rc.Subscribe("norsp.>", func(m *nats.Msg) {
			mu.Lock()
			arrivals = append(arrivals, time.Now())
			mu.Unlock()
			_ = m.RespondMsg(&nats.Msg{Header: nats.Header{"Status": []string{"503"}}})
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
		if err := rc.Flush(); err != nil {
			t.Fatal(err)
		}
		p := f.newPublisher(t, publisher.WithPrefix("norsp"))
		wantPublishFails(t, p, jetstream.ErrNoStreamResponse)
		mu.Lock() // each arrival was recorded before its answer
		defer mu.Unlock()
		if len(arrivals) != retries+1 {
			t.Fatalf("%d sends arrived, want %d", len(arrivals), retries+1)
		}
		for i := 1; i < len(arrivals); i++ {
			if gap := arrivals[i].Sub(arrivals[i-1]); gap < wait {
				t.Errorf("send %d came %v after the one before, want at least %v", i, gap, wait)
			}
		}
		if s := p.Stats(); s.Failed != 1 || s.Pending != 0 {
			t.Errorf("stats = %+v", s)
		}
	})

	t.Run("timeout afresh", func(t *testing.T) {
		// Each send awaits its answer for the whole timeout: answers
		// that take half the timeout still end in ErrNoStreamResponse,
		// although the third comes long after the first send's deadline
		// (2*delay+wait > the timeout and an eighth).
		const timeout, delay = 400 * time.Millisecond, 200 * time.Millisecond
		rc := testnats.Conn(t, f.b.ClientURL())
		sub, err := rc.Subscribe("slownr.>", func(m *nats.Msg) {
			time.AfterFunc(delay, func() {
				_ = m.RespondMsg(&nats.Msg{Header: nats.Header{"Status": []string{"503"}}})
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
		if err := rc.Flush(); err != nil {
			t.Fatal(err)
		}
		p := f.newPublisher(t, publisher.WithPrefix("slownr"), publisher.WithDefaultTimeout(timeout))
		wantPublishFails(t, p, jetstream.ErrNoStreamResponse)
	})
}

// A real duplicate: the server's ack ("duplicate": true, with a space)
// takes the fast parser, and PublishAsync flags it.
func TestPublishAsyncDuplicateAck(t *testing.T) {
	f := setup(t)
	p := f.newPublisher(t)
	ev := designEvent()
	for i, dup := range []bool{false, true} {
		fut, err := p.PublishAsync(ev)
		if err != nil {
			t.Fatal(err)
		}
		if ack, err := fut.Wait(t.Context()); err != nil || ack.Seq != 1 || ack.Duplicate != dup {
			t.Fatalf("publish %d: %+v, %v; want seq 1, duplicate %v", i, ack, err, dup)
		}
	}
	// The same message once more, as a request: its answer is the ack's
	// bytes as the server writes them.
	stored := f.get(t, 1)
	m := nats.NewMsg(stored.Subject)
	m.Header, m.Data = stored.Header, stored.Data
	resp, err := f.nc.RequestMsgWithContext(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	if seq, dup, ok := publisher.ParsePubAck(resp.Data); !ok || seq != 1 || !dup {
		t.Errorf("fast parser on the server's duplicate ack %s: %d, %v, %v; want 1, true, true", resp.Data, seq, dup, ok)
	}
	if s := p.Stats(); s.Published != 2 || s.Duplicates != 1 {
		t.Errorf("stats = %+v", s)
	}
}
