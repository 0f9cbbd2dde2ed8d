package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/testnats"
	"github.com/arrwdb/arrwcdc/publisher"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestTwoCollectorsSplitTheStream(t *testing.T) {
	b := testnats.Broker(t)
	nc := testnats.Conn(t, b.ClientURL())
	var cols [2]*Collector
	var regs [2]*prometheus.Registry
	for i := range cols {
		regs[i] = prometheus.NewRegistry()
		cols[i] = NewCollector(regs[i])
		sub, err := cols[i].Start(t.Context(), nc, zaptest.NewLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Drain(context.Background()) })
	}
	pub, err := publisher.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close(context.Background()) })
	const docs, searches = 300, 100
	for i := range docs {
		if _, err := pub.DocumentAdded(t.Context(), "lib-1", event.DocumentAdded{DocumentID: fmt.Sprint(i), Title: "t", NumChunks: 1}); err != nil {
			t.Fatal(err)
		}
	}
	for range searches {
		if _, err := pub.SearchPerformed(t.Context(), "lib-1", event.SearchPerformed{Query: "q", K: 3, DurationMS: 12}); err != nil {
			t.Fatal(err)
		}
	}
	// count reads a collector's metrics as Prometheus would scrape them:
	// the counter of one type, or the histogram's sample count.
	count := func(reg *prometheus.Registry, typ string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var n float64
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				switch {
				case typ == "histogram" && m.GetHistogram() != nil:
					n += float64(m.GetHistogram().GetSampleCount())
				case m.GetCounter() != nil:
					for _, l := range m.GetLabel() {
						if l.GetName() == "type" && l.GetValue() == typ {
							n += m.GetCounter().GetValue()
						}
					}
				}
			}
		}
		return n
	}
	total := func(typ string) float64 { return count(regs[0], typ) + count(regs[1], typ) }
	testnats.Eventually(t, 10*time.Second, func() error {
		for _, c := range []struct {
			typ  string
			want float64
		}{{event.TypeDocumentAdded, docs}, {event.TypeSearchPerformed, searches}, {"histogram", searches}} {
			if got := total(c.typ); got != c.want {
				return fmt.Errorf("%s counted %v times in total, want %v", c.typ, got, c.want)
			}
		}
		return nil
	})
	if a, b := count(regs[0], event.TypeDocumentAdded), count(regs[1], event.TypeDocumentAdded); a == 0 || b == 0 {
		t.Errorf("the queue group did not split the work: %v and %v", a, b)
	}
}
