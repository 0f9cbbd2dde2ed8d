package main

import (
	"context"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/subscriber"
)

// QueueGroup is the group every collector joins: each event is counted by
// one of them.
const QueueGroup = "metrics"

// Collector counts events into Prometheus metrics.
type Collector struct {
	events   *prometheus.CounterVec
	searches prometheus.Histogram
}

// NewCollector registers its metrics on reg.
func NewCollector(reg prometheus.Registerer) *Collector {
	c := &Collector{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arrwcdc_example_events_total", Help: "Change events counted, by type and library.",
		}, []string{"type", "library_id"}),
		searches: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "arrwcdc_example_search_duration_seconds", Help: "Durations reported by search.performed.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
	}
	reg.MustRegister(c.events, c.searches)
	return c
}

// Start subscribes in the shared queue group.
func (c *Collector) Start(ctx context.Context, nc *nats.Conn, log *zap.Logger) (*subscriber.Subscription, error) {
	return subscriber.Subscribe(ctx, nc, subscriber.Filter{}, c.Handle,
		subscriber.Queue(QueueGroup), subscriber.WithLogger(log))
}

// Handle counts one event.
func (c *Collector) Handle(_ context.Context, d subscriber.Delivery) error {
	c.events.WithLabelValues(d.Type, d.LibraryID).Inc()
	if d.Type == event.TypeSearchPerformed {
		var s event.SearchPerformed
		if err := d.DataAs(&s); err != nil {
			return err
		}
		c.searches.Observe(s.DurationMS / 1000)
	}
	return nil
}
