package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/hist"
	"github.com/arrwdb/arrwcdc/publisher"
)

// newPublisher returns a publisher on the run's connection, in the run's
// mode, closed with the run.
func (r *runner) newPublisher(mode string) (*publisher.Publisher, error) {
	opts := []publisher.Option{publisher.WithPrefix(r.cfg.Prefix), publisher.WithSource(benchSource), publisher.WithLogger(r.log.Named("publisher"))}
	if mode == "core" {
		opts = append(opts, publisher.WithCoreNATS())
	}
	pub, err := publisher.New(r.nc, opts...)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	r.onClose(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = pub.Close(ctx)
	})
	return pub, nil
}

// templates returns one event template per library and the encoded size.
func (r *runner) templates(libs []string) ([]event.Event, int, error) {
	evs := make([]event.Event, len(libs))
	var size int
	for i, lib := range libs {
		ev, n, err := eventTemplate(lib, r.cfg.Size)
		if err != nil {
			return nil, 0, err
		}
		evs[i], size = ev, n
	}
	return evs, size, nil
}

// publishMeasured starts the measured phase and publishes n events round
// robin over libs in mode (publishAll), with a publisher of its own; it
// records the event size in res.
func (r *runner) publishMeasured(ctx context.Context, res *Result, libs []string, mode string, n int) (*published, error) {
	pub, err := r.newPublisher(mode)
	if err != nil {
		return nil, err
	}
	evs, size, err := r.templates(libs)
	if err != nil {
		return nil, err
	}
	res.EventSize = size
	if err := r.begin(); err != nil {
		return nil, err
	}
	return r.publishAll(ctx, pub, evs, mode, n), nil
}

// published is the outcome of a publish phase.
type published struct {
	acked    int64   // events acknowledged (sent, for core)
	errors   int64   // failed publishes
	firstErr string  // the first failure
	perLib   []int64 // acknowledged events per library index
	firstSeq uint64  // lowest stream sequence acknowledged; 0 for core
	lastAck  time.Time
	lat      hist.Hist // publish latency: the call (sync, core) or send to ack (async)
}

// publishAll publishes up to cfg.Events events round robin over evs (one
// template per library) in mode, at cfg.Rate, for at most cfg.Duration,
// counting progress. onSent, if set, is called with each event's library
// index before it is sent.
func (r *runner) publishAll(ctx context.Context, pub *publisher.Publisher, evs []event.Event, mode string, n int) *published {
	p := &published{perLib: make([]int64, len(evs))}
	r.progress.start("publishing", int64(n))
	pace := newPacer(r.cfg.Rate)
	var deadline time.Time
	if r.cfg.Duration > 0 {
		deadline = time.Now().Add(r.cfg.Duration)
	}
	stop := func(i int) bool {
		if ctx.Err() != nil {
			return true
		}
		return !deadline.IsZero() && i%64 == 0 && time.Now().After(deadline)
	}
	record := func(lib int, seq uint64) {
		p.acked++
		p.perLib[lib]++
		if seq > 0 && (p.firstSeq == 0 || seq < p.firstSeq) {
			p.firstSeq = seq
		}
	}

	switch mode {
	case "sync", "core":
		for i := range n {
			if stop(i) {
				break
			}
			pace.wait(i)
			lib := i % len(evs)
			t := time.Now()
			ack, err := pub.Publish(ctx, evs[lib])
			if err != nil {
				p.fail(err)
				continue
			}
			p.lat.Record(time.Since(t))
			record(lib, ack.Seq)
			r.progress.done.Add(1)
		}
		if mode == "core" {
			_ = r.nc.FlushTimeout(30 * time.Second)
		}
		p.lastAck = time.Now()
	case "async":
		type pending struct {
			f   *publisher.Future
			lib int
			t   time.Time
		}
		ch := make(chan pending, 8192)
		var wg sync.WaitGroup
		var mu sync.Mutex // p.errors, p.firstErr
		fail := func(err error) {
			mu.Lock()
			defer mu.Unlock()
			p.fail(err)
		}
		wg.Go(func() {
			wctx := context.WithoutCancel(ctx)
			for pd := range ch {
				ack, err := pd.f.Wait(wctx)
				if err != nil {
					fail(err)
					continue
				}
				p.lat.Record(time.Since(pd.t))
				record(pd.lib, ack.Seq)
				r.progress.done.Add(1)
			}
			p.lastAck = time.Now()
		})
		for i := range n {
			if stop(i) {
				break
			}
			pace.wait(i)
			lib := i % len(evs)
			t := time.Now()
			f, err := pub.PublishAsync(evs[lib])
			if err != nil {
				fail(err)
				continue
			}
			ch <- pending{f, lib, t}
		}
		close(ch)
		wg.Wait()
	}
	return p
}

func (p *published) fail(err error) {
	if p.errors == 0 {
		p.firstErr = err.Error()
	}
	p.errors++
}

// note returns a note on the failed publishes, or "".
func (p *published) note() string {
	if p.errors == 0 {
		return ""
	}
	return fmt.Sprintf("%d publishes failed, the first with: %s", p.errors, p.firstErr)
}

// pacer spaces publishes to a rate; the zero rate does not wait.
type pacer struct {
	start    time.Time
	interval float64 // ns per event
}

func newPacer(rate float64) *pacer {
	p := &pacer{start: time.Now()}
	if rate > 0 {
		p.interval = 1e9 / rate
	}
	return p
}

// wait sleeps until event i is due. Being late is caught up in a burst;
// sleeps shorter than 100 µs are skipped (the timer cannot do them).
func (p *pacer) wait(i int) {
	if p.interval == 0 {
		return
	}
	due := p.start.Add(time.Duration(float64(i) * p.interval))
	if d := time.Until(due); d > 100*time.Microsecond {
		time.Sleep(d)
	}
}
