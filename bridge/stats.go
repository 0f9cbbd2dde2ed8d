package bridge

import (
	"cmp"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// maxTypes bounds the distinct event types tracked one by one; more
	// are counted under otherType.
	maxTypes = 1024
	// maxLibraries bounds the libraries whose counts are kept for
	// busiest_libraries; more are counted only in the totals.
	maxLibraries = 10000
	// topLibraries is how many libraries the stats report.
	topLibraries = 10
	// clusterTopLibraries is how many libraries a bridge sends to a
	// ?scope=cluster asker, to be summed there.
	clusterTopLibraries = 100
	otherType           = "_other"
)

// typeStats are the counters of one event type.
type typeStats struct {
	name      string
	published atomic.Uint64 // counted by the statistics subscription
	delivered atomic.Uint64 // frames written to this bridge's clients
	latency   hist
}

// counters are a bridge's statistics. Everything is safe for concurrent use.
type counters struct {
	started time.Time

	published atomic.Uint64
	delivered atomic.Uint64
	replayed  atomic.Uint64 // delivered frames read from the stream for a resuming client
	invalid   atomic.Uint64
	slow      atomic.Uint64
	dropped   atomic.Uint64 // frames dropped under on_slow=drop_oldest
	resyncs   atomic.Uint64 // re-syncs of live delivery started
	resynced  atomic.Uint64 // events fanned out by re-syncs
	latency   hist

	typesMu sync.RWMutex
	types   map[string]*typeStats

	libsMu sync.Mutex
	libs   map[string]uint64
}

func newCounters() *counters {
	return &counters{started: time.Now(), types: make(map[string]*typeStats), libs: make(map[string]uint64)}
}

// typ returns the stats of event type name, creating them.
func (c *counters) typ(name string) *typeStats {
	c.typesMu.RLock()
	t := c.types[name]
	c.typesMu.RUnlock()
	if t != nil {
		return t
	}
	c.typesMu.Lock()
	defer c.typesMu.Unlock()
	if t = c.types[name]; t != nil {
		return t
	}
	if len(c.types) >= maxTypes {
		name = otherType
		if t = c.types[name]; t != nil {
			return t
		}
	}
	name = strings.Clone(name) // not the payload name may point into
	t = &typeStats{name: name}
	c.types[name] = t
	return t
}

// countPublished counts one stored event (statistics subscription).
func (c *counters) countPublished(t *typeStats, library string) {
	c.published.Add(1)
	t.published.Add(1)
	c.libsMu.Lock()
	if n, ok := c.libs[library]; ok {
		c.libs[library] = n + 1
	} else if len(c.libs) < maxLibraries {
		c.libs[strings.Clone(library)] = 1 // not the payload library may point into
	}
	c.libsMu.Unlock()
}

// countDelivered counts the event frames one write sent, at now, with a
// few atomic adds for the batch (and each run of one type) rather than
// for every frame: the writers of many clients count at once. A replayed
// frame's latency says how old the event is, not how fast it was
// delivered: it is left out of the latency.
func (c *counters) countDelivered(frames []*frame, now time.Time) {
	nowUS := now.UnixMicro()
	all := histBatch{h: &c.latency}
	var delivered, replayed uint64
	var (
		t          *typeStats // the type of the current run of frames
		tl         histBatch
		tDelivered uint64
	)
	endRun := func() {
		if t != nil {
			t.delivered.Add(tDelivered)
			tl.flush()
		}
	}
	for _, f := range frames {
		if f.typ != t {
			endRun()
			t, tl, tDelivered = f.typ, histBatch{h: &f.typ.latency}, 0
		}
		delivered++
		tDelivered++
		if f.replayed {
			replayed++
			continue
		}
		us := uint64(max(nowUS-f.tsUS, 0)) // 0 if the producer's clock is ahead
		all.record(us)
		tl.record(us)
	}
	endRun()
	c.delivered.Add(delivered)
	if replayed > 0 {
		c.replayed.Add(replayed)
	}
	all.flush()
}

// snapshot is one bridge's raw figures: what ?scope=cluster exchanges over
// NATS and merges. Everything in it adds up across bridges.
type snapshot struct {
	BridgeID     string                  `json:"bridge_id"`
	Started      time.Time               `json:"started"`
	Published    uint64                  `json:"published"`
	Delivered    uint64                  `json:"delivered"`
	Replayed     uint64                  `json:"replayed"`
	Invalid      uint64                  `json:"invalid"`
	Slow         uint64                  `json:"slow"`
	Dropped      uint64                  `json:"dropped"`
	Resyncs      uint64                  `json:"resyncs"`
	Resynced     uint64                  `json:"resynced"`
	Replaying    int                     `json:"replaying"`
	Active       int                     `json:"active"`
	Queued       int                     `json:"queued"`
	LiveSubs     int                     `json:"live_subscriptions"`
	Latency      histSnapshot            `json:"latency"`
	Types        map[string]typeSnapshot `json:"types"`
	Libraries    map[string]uint64       `json:"libraries"`
	BridgesCount int                     `json:"bridges"`
}

type typeSnapshot struct {
	Published uint64       `json:"published"`
	Delivered uint64       `json:"delivered"`
	Latency   histSnapshot `json:"latency"`
}

// snap copies the counters, with at most topN libraries.
func (c *counters) snap(topN int) snapshot {
	s := snapshot{
		Started:      c.started,
		Published:    c.published.Load(),
		Delivered:    c.delivered.Load(),
		Replayed:     c.replayed.Load(),
		Invalid:      c.invalid.Load(),
		Slow:         c.slow.Load(),
		Dropped:      c.dropped.Load(),
		Resyncs:      c.resyncs.Load(),
		Resynced:     c.resynced.Load(),
		Latency:      c.latency.snapshot(),
		Types:        make(map[string]typeSnapshot),
		BridgesCount: 1,
	}
	c.typesMu.RLock()
	for name, t := range c.types {
		s.Types[name] = typeSnapshot{Published: t.published.Load(), Delivered: t.delivered.Load(), Latency: t.latency.snapshot()}
	}
	c.typesMu.RUnlock()
	if topN > 0 {
		c.libsMu.Lock()
		libs := maps.Clone(c.libs)
		c.libsMu.Unlock()
		s.Libraries = top(libs, topN)
	}
	return s
}

// top returns the n largest entries of m (ties by id).
func top(m map[string]uint64, n int) map[string]uint64 {
	if len(m) <= n {
		return m
	}
	out := make(map[string]uint64, n)
	for _, lc := range ranked(m)[:n] {
		out[lc.LibraryID] = lc.Events
	}
	return out
}

func ranked(m map[string]uint64) []LibraryCount {
	list := make([]LibraryCount, 0, len(m))
	for id, n := range m {
		list = append(list, LibraryCount{LibraryID: id, Events: n})
	}
	slices.SortFunc(list, func(a, b LibraryCount) int {
		if c := cmp.Compare(b.Events, a.Events); c != 0 {
			return c
		}
		return cmp.Compare(a.LibraryID, b.LibraryID)
	})
	return list
}

// merge adds o into s; the start time becomes the older one.
func (s *snapshot) merge(o snapshot) {
	if s.Started.IsZero() || (!o.Started.IsZero() && o.Started.Before(s.Started)) {
		s.Started = o.Started
	}
	s.Published += o.Published
	s.Delivered += o.Delivered
	s.Replayed += o.Replayed
	s.Invalid += o.Invalid
	s.Slow += o.Slow
	s.Dropped += o.Dropped
	s.Resyncs += o.Resyncs
	s.Resynced += o.Resynced
	s.Replaying += o.Replaying
	s.Active += o.Active
	s.Queued += o.Queued
	s.LiveSubs += o.LiveSubs
	s.BridgesCount += max(o.BridgesCount, 1)
	s.Latency.merge(o.Latency)
	if s.Types == nil {
		s.Types = make(map[string]typeSnapshot)
	}
	for name, t := range o.Types {
		cur := s.Types[name]
		cur.Published += t.Published
		cur.Delivered += t.Delivered
		cur.Latency.merge(t.Latency)
		s.Types[name] = cur
	}
	if s.Libraries == nil {
		s.Libraries = make(map[string]uint64)
	}
	for id, n := range o.Libraries {
		s.Libraries[id] += n
	}
}

// Stats is the body of GET /v1/events/stats. The first seven fields are
// the original event bus's.
type Stats struct {
	// TotalPublished: stored events counted by this bridge's share of the
	// statistics queue group (summed over bridges under scope=cluster).
	TotalPublished uint64 `json:"total_published"`
	// TotalDelivered: event frames written to WebSocket and SSE clients,
	// replayed ones included. A frame counts once all of its bytes were
	// handed to the client's socket (a frame whose connection failed
	// before may not count).
	TotalDelivered uint64 `json:"total_delivered"`
	// ActiveSubscribers: connected WebSocket and SSE clients.
	ActiveSubscribers int `json:"active_subscribers"`
	// QueueSize: frames waiting in client queues now.
	QueueSize int `json:"queue_size"`
	// EventsByType: TotalPublished by event type.
	EventsByType map[string]uint64 `json:"events_by_type"`
	// AverageDeliveryLatencyMS: mean of (frame written − event timestamp),
	// over live frames (replayed ones are left out).
	AverageDeliveryLatencyMS float64 `json:"average_delivery_latency_ms"`
	// UptimeSeconds since the bridge (under scope=cluster, the oldest) started.
	UptimeSeconds float64 `json:"uptime_seconds"`

	// LatencyMS: delivery latency percentiles of every frame.
	LatencyMS Latency `json:"latency_ms"`
	// LatencyByTypeMS: the same by event type (types delivered at least once).
	LatencyByTypeMS map[string]Latency `json:"latency_ms_by_type"`
	// DeliveredByType: TotalDelivered by event type.
	DeliveredByType map[string]uint64 `json:"delivered_by_type"`
	// BusiestLibraries: the libraries with the most published events, at most 10.
	BusiestLibraries []LibraryCount `json:"busiest_libraries"`
	// InvalidEvents: live messages skipped because they were not valid events.
	InvalidEvents uint64 `json:"invalid_events"`
	// SlowConsumerDisconnects: clients closed because their queue overflowed.
	SlowConsumerDisconnects uint64 `json:"slow_consumer_disconnects"`
	// TotalReplayed: event frames of TotalDelivered read back from the
	// stream for clients that resumed (since_seq, since_time, Last-Event-ID).
	TotalReplayed uint64 `json:"total_replayed"`
	// ReplayingClients: clients catching up with the stream now.
	ReplayingClients int `json:"replaying_clients"`
	// DroppedFrames: frames dropped from the queues of on_slow=drop_oldest
	// clients (each told with a gap frame).
	DroppedFrames uint64 `json:"dropped_frames"`
	// Resyncs: times live delivery re-synced from the stream after a
	// reconnect, a stream leader election or a gap.
	Resyncs uint64 `json:"resyncs"`
	// ResyncedEvents: events that live delivery had missed and re-syncs
	// delivered.
	ResyncedEvents uint64 `json:"resynced_events"`
	// LiveSubscriptions: interest-based live subscriptions open now.
	LiveSubscriptions int `json:"live_subscriptions"`
	// NATS: the connection state of the bridge that answered.
	NATS NATSState `json:"nats"`
	// Stream: the EVENTS stream, as the bridge that answered read it (at
	// most a second ago).
	Stream StreamState `json:"stream"`
	// Scope is "bridge" or "cluster".
	Scope string `json:"scope"`
	// Bridges that contributed: 1, or how many answered under scope=cluster.
	Bridges int `json:"bridges"`
}

// LibraryCount is one entry of Stats.BusiestLibraries.
type LibraryCount struct {
	LibraryID string `json:"library_id"`
	Events    uint64 `json:"events"`
}

// NATSState is the bridge's NATS connection.
type NATSState struct {
	Connected bool   `json:"connected"`
	Status    string `json:"status"`
	URL       string `json:"url"`
}

// stats renders a snapshot at now.
func (s *snapshot) stats(now time.Time, scope string, nats NATSState) Stats {
	st := Stats{
		TotalPublished:          s.Published,
		TotalDelivered:          s.Delivered,
		ActiveSubscribers:       s.Active,
		QueueSize:               s.Queued,
		EventsByType:            make(map[string]uint64),
		UptimeSeconds:           math.Round(now.Sub(s.Started).Seconds()*1000) / 1000,
		LatencyMS:               s.Latency.latency(),
		LatencyByTypeMS:         make(map[string]Latency),
		DeliveredByType:         make(map[string]uint64),
		BusiestLibraries:        ranked(s.Libraries),
		InvalidEvents:           s.Invalid,
		SlowConsumerDisconnects: s.Slow,
		TotalReplayed:           s.Replayed,
		ReplayingClients:        s.Replaying,
		DroppedFrames:           s.Dropped,
		Resyncs:                 s.Resyncs,
		ResyncedEvents:          s.Resynced,
		LiveSubscriptions:       s.LiveSubs,
		NATS:                    nats,
		Scope:                   scope,
		Bridges:                 s.BridgesCount,
	}
	st.AverageDeliveryLatencyMS = st.LatencyMS.Avg
	if len(st.BusiestLibraries) > topLibraries {
		st.BusiestLibraries = st.BusiestLibraries[:topLibraries]
	}
	for name, t := range s.Types {
		if t.Published > 0 {
			st.EventsByType[name] = t.Published
		}
		if t.Delivered > 0 {
			st.DeliveredByType[name] = t.Delivered
			st.LatencyByTypeMS[name] = t.Latency.latency()
		}
	}
	return st
}
