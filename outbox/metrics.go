package outbox

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names, all under arrwcdc_outbox_ and labelled with the table, so
// several outboxes can share a registry.
const (
	metricDepth     = "arrwcdc_outbox_depth"
	metricOldestAge = "arrwcdc_outbox_oldest_age_seconds"
	metricDead      = "arrwcdc_outbox_dead_letters"
	metricRelayed   = "arrwcdc_outbox_relayed_total"
	metricPubErrors = "arrwcdc_outbox_publish_errors_total"

	// collectTimeout bounds the queries of one scrape.
	collectTimeout = 5 * time.Second
)

// Collector returns a Prometheus collector of the outbox's [Stats], for
// the caller to register on its own registry:
//
//	arrwcdc_outbox_depth{table}               rows waiting to be published
//	arrwcdc_outbox_oldest_age_seconds{table}  age of the oldest waiting row
//	arrwcdc_outbox_dead_letters{table}        rows in the dead-letter table
//	arrwcdc_outbox_relayed_total{table}       events relayed by this process
//	arrwcdc_outbox_publish_errors_total{table} failed publishes, retried
//
// The gauges are read from the database at scrape time (a COUNT of the
// table); when that fails the scrape reports the error.
func (o *Outbox) Collector() prometheus.Collector {
	labels := prometheus.Labels{"table": o.table}
	return &collector{
		o:         o,
		depth:     prometheus.NewDesc(metricDepth, "Rows waiting in the outbox to be published.", nil, labels),
		oldestAge: prometheus.NewDesc(metricOldestAge, "Age of the oldest row waiting in the outbox; 0 when empty.", nil, labels),
		dead:      prometheus.NewDesc(metricDead, "Rows in the outbox's dead-letter table: events that can never be published.", nil, labels),
		relayed:   prometheus.NewDesc(metricRelayed, "Events published, acknowledged and deleted by this process's relays.", nil, labels),
		pubErrors: prometheus.NewDesc(metricPubErrors, "Publishes of this process's relays that failed and are retried.", nil, labels),
	}
}

type collector struct {
	o                                          *Outbox
	depth, oldestAge, dead, relayed, pubErrors *prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.depth
	ch <- c.oldestAge
	ch <- c.dead
	ch <- c.relayed
	ch <- c.pubErrors
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.relayed, prometheus.CounterValue, float64(c.o.relayed.Load()))
	ch <- prometheus.MustNewConstMetric(c.pubErrors, prometheus.CounterValue, float64(c.o.errs.Load()))
	ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()
	s, err := c.o.Stats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.depth, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(s.Depth))
	ch <- prometheus.MustNewConstMetric(c.oldestAge, prometheus.GaugeValue, s.OldestAge.Seconds())
	ch <- prometheus.MustNewConstMetric(c.dead, prometheus.GaugeValue, float64(s.Dead))
}
