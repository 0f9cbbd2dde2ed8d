// Package bridge is the process that browsers and dashboards see: it keeps
// statistics of the change events on the bus and forwards them to WebSocket
// clients, over HTTP (DESIGN §6–7).
//
// # Routes
//
//	GET /v1/events/stats            statistics of this bridge; ?scope=cluster sums every bridge
//	WS  /v1/libraries/{id}/ws       one library's events
//	WS  /v1/events/ws?filter=P      the events of every subject matching the pattern P
//	GET /healthz                    200 while the process serves
//	GET /readyz                     200 when NATS is connected and the EVENTS stream answers, else 503
//	GET /metrics                    Prometheus metrics (the bridge's own registry)
//	GET /                           the dashboard page (embedded, web/)
//
// Errors are JSON objects {"error": "..."}: 400 for bad input (an invalid
// library id, an unknown or malformed query parameter), 404 for an unknown
// route, 405 (with Allow) for a known route with another method, 426 for a
// plain request to a WebSocket route, 503 when
// the bridge cannot serve (shutting down, NATS or the stream unreachable).
// All of them are answered before any WebSocket upgrade.
//
// # WebSocket frames
//
// Every frame the bridge sends is one JSON text message. The first is
//
//	{"type":"connected","library_id":"<id>","stream_seq":N}      (library socket)
//	{"type":"connected","filter":"<pattern>","stream_seq":N}     (pattern socket)
//
// where N is the last sequence of the EVENTS stream, read after the live
// subscription of the socket exists: every later frame carries seq > N, and
// every event stored after N that the socket selects is sent once, in stream
// order. A client that loaded a snapshot at sequence N misses nothing. Event
// frames keep the original event bus's format, plus id, seq and source:
//
//	{"type":"event","event_type":"document.added","id":"…","seq":42,
//	 "library_id":"…","timestamp":"2025-10-27T06:01:00.000000Z","source":"app-1","data":{…}}
//
// id is the event's id, or its Nats-Msg-Id header when the event has none;
// source is "" when the event has none; timestamp has microsecond precision.
//
// Query parameters of the library socket: types (a comma-separated list of
// event types or type patterns such as document.* or *.deleted, repeatable),
// exclude_source (drop events whose source is this value, repeatable) and
// token (accepted and ignored while auth is off). on_slow=disconnect is the
// default behaviour and accepted; since_seq, since_time and
// on_slow=drop_oldest are answered 400 "not supported yet". The pattern
// socket takes filter (a subject pattern under the prefix, checked by
// [subjects.ValidatePattern]; default "<prefix>.>") and the same parameters.
// Any other parameter is a 400 naming it.
//
// # Slow clients
//
// Each client has a queue of [Config.ClientQueue] frames (default 256: at
// about 300 bytes an event, 75 KiB per client at most, and a quarter of a
// second of headroom at 1000 events/s for one library). Fan-out never blocks:
// when a client's queue is full the bridge stops feeding it, counts it in
// slow_consumer_disconnects, and closes it with close code [CloseSlowConsumer]
// (4008) and the reason
//
//	slow consumer: resume with since_seq=<last seq sent>
//
// where the number is the seq of the last event frame written to it (the
// connected frame's stream_seq if none was). since_seq=N means "I have
// everything up to N": reconnecting with that number replays exactly what
// was missed (once since_seq is implemented; see below). Frames still queued are not written: the
// reason's number is exact. A client stuck in one write for
// [Config.WriteTimeout] is dropped without a close frame. On
// [Bridge.Shutdown] clients are closed with 1001 (going away).
//
// Clients are not expected to send data: any data message, whatever its
// size, closes that client with 1008 (policy violation) after reading at
// most its header. Pings from either side are answered; the bridge pings
// every [Config.PingInterval] and drops a client that does not answer
// within [Config.WriteTimeout].
//
// # Live subscriptions and statistics
//
// The EVENTS stream republishes each stored event to live.<subject> with its
// stream sequence in the Nats-Sequence header. The bridge subscribes to
// live.<prefix>.library.<id>.> when the first client of a library connects
// and unsubscribes when the last leaves; pattern sockets share one
// subscription to live.<pattern> per distinct pattern. Each live message is
// decoded, validated and checked against its subject once, its frame is
// built once, and the same bytes are queued for every client of that
// subscription; invalid messages are skipped (and counted by the statistics
// subscription below, so not twice).
//
// Statistics come from a queue-group subscription ([Config.StatsQueue]) on
// live.<prefix>.>: each stored event is counted by exactly one of the
// bridges, whatever its library, so totals summed over bridges equal what
// the stream stored (duplicates the stream dropped are never republished).
// total_delivered, active_subscribers, queue_size and the latencies are
// about this bridge's own clients: delivery latency is the time a frame was
// written minus the event's timestamp. ?scope=cluster asks every bridge of
// the prefix over NATS request/reply on arrwcdc.bridge.stats.<prefix>,
// gathers the replies for [Config.ClusterStatsTimeout], sums the counters,
// merges the latency histograms and reports the oldest bridge's uptime.
//
// Distinct event types are tracked up to [maxTypes] and libraries up to
// [maxLibraries]; beyond that, new types are counted under "_other" and new
// libraries are counted in the totals but not ranked in busiest_libraries.
//
// The bridge does not own its NATS connection: the caller closes (or
// drains) it after [Bridge.Shutdown].
//
// # Not yet
//
// Replay (since_seq, since_time), on_slow=drop_oldest, tokens, SSE, POST
// /v1/events, and the re-sync of live subscriptions after a NATS reconnect
// or a stream leader change (DESIGN §7) come in later issues. Until the
// re-sync exists, an event republished while the bridge is disconnected
// from NATS is not delivered live.
package bridge
