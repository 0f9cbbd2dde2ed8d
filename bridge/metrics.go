package bridge

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// Metric names, all under arrwcdc_bridge_. The collector reads the
// bridge's own counters at scrape time, so the hot path pays nothing extra.
const (
	metricEventsIn    = "arrwcdc_bridge_events_total"
	metricFramesOut   = "arrwcdc_bridge_frames_sent_total"
	metricInvalid     = "arrwcdc_bridge_invalid_events_total"
	metricSlow        = "arrwcdc_bridge_slow_consumer_disconnects_total"
	metricClients     = "arrwcdc_bridge_clients"
	metricQueued      = "arrwcdc_bridge_queued_frames"
	metricLiveSubs    = "arrwcdc_bridge_live_subscriptions"
	metricLatency     = "arrwcdc_bridge_delivery_latency_seconds"
	metricNATSUp      = "arrwcdc_bridge_nats_connected"
	metricReplayed    = "arrwcdc_bridge_replayed_frames_total"
	metricReplaying   = "arrwcdc_bridge_replaying_clients"
	metricDropped     = "arrwcdc_bridge_dropped_frames_total"
	metricResyncs     = "arrwcdc_bridge_resyncs_total"
	metricResynced    = "arrwcdc_bridge_resynced_events_total"
	metricRefused     = "arrwcdc_bridge_refused_requests_total"
	metricConns       = "arrwcdc_bridge_connections"
	metricStream      = "arrwcdc_bridge_stream_" // messages, bytes, first_seq, last_seq, consumers
	latencyMinPow2US  = 7                        // first bucket: 128 µs
	latencyMaxPow2US  = 25                       // last bucket: about 33.6 s
	latencyBucketHelp = "Delivery latency (frame written minus event timestamp); bucket bounds are powers of two microseconds."
)

type collector struct {
	b                                          *Bridge
	eventsIn, framesOut, invalid, slow         *prometheus.Desc
	clients, queued, liveSubs, latency, natsUp *prometheus.Desc
	replayed, replaying, dropped               *prometheus.Desc
	resyncs, resynced                          *prometheus.Desc
	refused, conns                             *prometheus.Desc
	streamMsgs, streamBytes, streamFirst       *prometheus.Desc
	streamLast, streamConsumers                *prometheus.Desc
}

func newRegistry(b *Bridge) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		&collector{
			b:               b,
			eventsIn:        prometheus.NewDesc(metricEventsIn, "Stored events counted by this bridge's share of the statistics queue group, by type.", []string{"type"}, nil),
			framesOut:       prometheus.NewDesc(metricFramesOut, "Event frames written to WebSocket clients, by type.", []string{"type"}, nil),
			invalid:         prometheus.NewDesc(metricInvalid, "Live messages that were not valid events (skipped).", nil, nil),
			slow:            prometheus.NewDesc(metricSlow, "WebSocket clients closed because their queue overflowed.", nil, nil),
			clients:         prometheus.NewDesc(metricClients, "Connected WebSocket clients.", nil, nil),
			queued:          prometheus.NewDesc(metricQueued, "Frames waiting in client queues.", nil, nil),
			liveSubs:        prometheus.NewDesc(metricLiveSubs, "Interest-based live subscriptions.", nil, nil),
			latency:         prometheus.NewDesc(metricLatency, latencyBucketHelp, nil, nil),
			natsUp:          prometheus.NewDesc(metricNATSUp, "1 if the NATS connection is up.", nil, nil),
			replayed:        prometheus.NewDesc(metricReplayed, "Event frames read back from the stream for resuming clients (part of frames_sent).", nil, nil),
			replaying:       prometheus.NewDesc(metricReplaying, "Clients catching up with the stream.", nil, nil),
			dropped:         prometheus.NewDesc(metricDropped, "Frames dropped from the queues of on_slow=drop_oldest clients.", nil, nil),
			resyncs:         prometheus.NewDesc(metricResyncs, "Re-syncs of live delivery from the stream (reconnect, leader election, gap).", nil, nil),
			resynced:        prometheus.NewDesc(metricResynced, "Events that live delivery missed and re-syncs delivered.", nil, nil),
			refused:         prometheus.NewDesc(metricRefused, "Requests refused before they were served, by reason: unauthorized (401), forbidden (403), connection_limit (503), address_limit (429).", []string{"reason"}, nil),
			conns:           prometheus.NewDesc(metricConns, "WebSocket and SSE clients counted against Config.MaxConnections.", nil, nil),
			streamMsgs:      prometheus.NewDesc(metricStream+"messages", "Messages in the EVENTS stream.", nil, nil),
			streamBytes:     prometheus.NewDesc(metricStream+"bytes", "Bytes in the EVENTS stream.", nil, nil),
			streamFirst:     prometheus.NewDesc(metricStream+"first_seq", "First sequence of the EVENTS stream.", nil, nil),
			streamLast:      prometheus.NewDesc(metricStream+"last_seq", "Last sequence of the EVENTS stream.", nil, nil),
			streamConsumers: prometheus.NewDesc(metricStream+"consumers", "Consumers of the EVENTS stream.", nil, nil),
		},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.eventsIn, c.framesOut, c.invalid, c.slow, c.clients, c.queued, c.liveSubs, c.latency, c.natsUp,
		c.replayed, c.replaying, c.dropped, c.resyncs, c.resynced, c.refused, c.conns,
		c.streamMsgs, c.streamBytes, c.streamFirst, c.streamLast, c.streamConsumers,
	} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.b.snapshot(0)
	for name, t := range s.Types {
		ch <- prometheus.MustNewConstMetric(c.eventsIn, prometheus.CounterValue, float64(t.Published), name)
		ch <- prometheus.MustNewConstMetric(c.framesOut, prometheus.CounterValue, float64(t.Delivered), name)
	}
	ch <- prometheus.MustNewConstMetric(c.invalid, prometheus.CounterValue, float64(s.Invalid))
	ch <- prometheus.MustNewConstMetric(c.slow, prometheus.CounterValue, float64(s.Slow))
	ch <- prometheus.MustNewConstMetric(c.clients, prometheus.GaugeValue, float64(s.Active))
	ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(s.Queued))
	ch <- prometheus.MustNewConstMetric(c.liveSubs, prometheus.GaugeValue, float64(s.LiveSubs))
	up := 0.0
	if c.b.nc.IsConnected() {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(c.natsUp, prometheus.GaugeValue, up)
	ch <- prometheus.MustNewConstMetric(c.replayed, prometheus.CounterValue, float64(s.Replayed))
	ch <- prometheus.MustNewConstMetric(c.replaying, prometheus.GaugeValue, float64(s.Replaying))
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(s.Dropped))
	ch <- prometheus.MustNewConstMetric(c.resyncs, prometheus.CounterValue, float64(s.Resyncs))
	ch <- prometheus.MustNewConstMetric(c.resynced, prometheus.CounterValue, float64(s.Resynced))
	rf := &c.b.refused
	for _, r := range []struct {
		reason string
		n      uint64
	}{
		{"unauthorized", rf.unauthorized.Load()}, {"forbidden", rf.forbidden.Load()},
		{"connection_limit", rf.bridgeLimit.Load()}, {"address_limit", rf.addressLimit.Load()},
	} {
		ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(r.n), r.reason)
	}
	c.b.mu.Lock()
	conns := c.b.conns
	c.b.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(conns))
	if st := c.b.streamState(); st.Error == "" { // else absent, not zero
		ch <- prometheus.MustNewConstMetric(c.streamMsgs, prometheus.GaugeValue, float64(st.Messages))
		ch <- prometheus.MustNewConstMetric(c.streamBytes, prometheus.GaugeValue, float64(st.Bytes))
		ch <- prometheus.MustNewConstMetric(c.streamFirst, prometheus.GaugeValue, float64(st.FirstSeq))
		ch <- prometheus.MustNewConstMetric(c.streamLast, prometheus.GaugeValue, float64(st.LastSeq))
		ch <- prometheus.MustNewConstMetric(c.streamConsumers, prometheus.GaugeValue, float64(st.ConsumerCount))
	}
	buckets := make(map[float64]uint64, latencyMaxPow2US-latencyMinPow2US+1)
	for p := latencyMinPow2US; p <= latencyMaxPow2US; p++ {
		limit := uint64(1) << p
		buckets[float64(limit)/1e6] = s.Latency.cumulativeBelow(limit)
	}
	ch <- prometheus.MustNewConstHistogram(c.latency, s.Latency.Count, float64(s.Latency.SumUS)/1e6, buckets)
}

func (b *Bridge) metricsHandler() http.Handler {
	return promhttp.HandlerFor(b.registry, promhttp.HandlerOpts{ErrorLog: zap.NewStdLog(b.log.Named("metrics"))})
}
