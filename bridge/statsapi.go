package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
)

// onStatsMsg counts one live message of the statistics queue group: a
// valid event by type and library, anything else as invalid.
func (b *Bridge) onStatsMsg(m *nats.Msg) {
	ev, _, err := parseLive(m, b.cfg.MaxEventSize)
	if err != nil {
		b.counters.invalid.Add(1)
		b.log.Debug("invalid event on the bus", zap.String("subject", m.Subject), zap.Error(err))
		return
	}
	b.counters.countPublished(b.counters.typ(ev.Type), ev.LibraryID)
}

// snapshot is this bridge's figures now, with at most topN libraries.
func (b *Bridge) snapshot(topN int) snapshot {
	s := b.counters.snap(topN)
	s.BridgeID = b.id
	b.mu.Lock()
	s.Active = len(b.clients)
	for cl := range b.clients {
		n, catching := cl.state()
		if catching {
			s.Replaying++ // its queue holds live frames for the hand-over
		} else {
			s.Queued += n
		}
	}
	s.LiveSubs = len(b.rooms)
	b.mu.Unlock()
	return s
}

// onStatsRequest answers a ?scope=cluster request with this bridge's
// snapshot.
func (b *Bridge) onStatsRequest(m *nats.Msg) {
	if m.Reply == "" {
		return
	}
	s := b.snapshot(clusterTopLibraries)
	body, err := json.Marshal(s)
	if err == nil && int64(len(body)) > b.nc.MaxPayload() {
		// Too many types: send the totals without per-type histograms.
		for name, t := range s.Types {
			t.Latency.Buckets = nil
			s.Types[name] = t
		}
		body, err = json.Marshal(s)
	}
	if err != nil {
		b.log.Warn("encode stats", zap.Error(err))
		return
	}
	if err := m.Respond(body); err != nil {
		b.log.Debug("answer stats request", zap.Error(err))
	}
}

// natsState describes the bridge's connection.
func (b *Bridge) natsState() NATSState {
	return NATSState{
		Connected: b.nc.IsConnected(),
		Status:    strings.ToLower(b.nc.Status().String()),
		URL:       b.nc.ConnectedUrlRedacted(),
	}
}

// Stats returns this bridge's statistics.
func (b *Bridge) Stats() Stats {
	s := b.snapshot(topLibraries)
	st := s.stats(time.Now(), "bridge", b.natsState())
	st.Stream = b.streamState()
	return st
}

// ClusterStats asks every bridge of the prefix for its figures over NATS,
// gathers the answers for Config.ClusterStatsTimeout (or until ctx ends)
// and returns their sum, this bridge included even if NATS is down.
func (b *Bridge) ClusterStats(ctx context.Context) (Stats, error) {
	total := b.snapshot(clusterTopLibraries)
	seen := map[string]bool{b.id: true}
	if b.nc.IsConnected() {
		replies := make(chan *nats.Msg, 64)
		inbox := b.nc.NewRespInbox()
		sub, err := b.nc.ChanSubscribe(inbox, replies)
		if err != nil {
			return Stats{}, fmt.Errorf("bridge: cluster stats: %w", err)
		}
		defer func() { _ = sub.Unsubscribe() }()
		if err := b.nc.PublishRequest(b.statsSubject(), inbox, nil); err != nil {
			return Stats{}, fmt.Errorf("bridge: cluster stats: %w", err)
		}
		timer := time.NewTimer(b.cfg.ClusterStatsTimeout)
		defer timer.Stop()
	gather:
		for {
			select {
			case m := <-replies:
				var s snapshot
				if err := json.Unmarshal(m.Data, &s); err != nil || s.BridgeID == "" {
					b.log.Warn("bad cluster stats reply", zap.Error(err))
					continue
				}
				if seen[s.BridgeID] {
					continue
				}
				seen[s.BridgeID] = true
				total.merge(s)
			case <-timer.C:
				break gather
			case <-ctx.Done():
				return Stats{}, ctx.Err()
			}
		}
	}
	st := total.stats(time.Now(), "cluster", b.natsState())
	st.Stream = b.streamState()
	return st, nil
}

// handleStats serves GET /v1/events/stats[?scope=bridge|cluster].
func (b *Bridge) handleStats(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		if k != "scope" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown query parameter %q (allowed: scope)", truncate(k)))
			return
		}
	}
	switch scope := q["scope"]; {
	case len(scope) == 0 || slices.Equal(scope, []string{"bridge"}):
		writeJSON(w, http.StatusOK, b.Stats())
	case slices.Equal(scope, []string{"cluster"}):
		st, err := b.ClusterStats(r.Context())
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, st)
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("scope: %q: want bridge or cluster", truncate(strings.Join(scope, ","))))
	}
}
