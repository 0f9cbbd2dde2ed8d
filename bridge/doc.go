// Package bridge is the process that browsers and dashboards see: it keeps
// statistics of the change events on the bus, forwards them to WebSocket
// and Server-Sent Events clients, and accepts events over HTTP (DESIGN
// §6–7).
//
// # Routes
//
//	GET  /v1/events/stats            statistics of this bridge; ?scope=cluster sums every bridge
//	WS   /v1/libraries/{id}/ws       one library's events
//	WS   /v1/events/ws?filter=P      the events of every subject matching the pattern P
//	GET  /v1/libraries/{id}/events   one library's events as Server-Sent Events
//	POST /v1/events                  publish one event or a JSON array of them
//	GET  /healthz                    200 while the process serves
//	GET  /readyz                     200 when NATS is connected and the EVENTS stream answers, else 503
//	GET  /metrics                    Prometheus metrics (the bridge's own registry)
//	GET  /                           the dashboard page (embedded, web/)
//
// Errors are JSON objects {"error": "..."}: 400 for bad input (an invalid
// library id, an unknown or malformed query parameter, an invalid event),
// 404 for an unknown route, 405 (with Allow) for a known route with
// another method, 413 for a POST body over [Config.MaxPublishBytes], 415
// for a POST that is not JSON, 426 for a plain request to a WebSocket
// route, 503 when the bridge cannot serve (shutting down, NATS or the
// stream unreachable, or [Config.MaxConnections] reached), 429 when the
// remote address has [Config.MaxConnsPerAddress] clients. All of them are
// answered before any WebSocket upgrade, event stream or publish starts.
//
// # Access
//
// With [Config.Tokens] set (DESIGN §8; nil, the default, is auth off) the
// WebSocket, SSE and POST routes need a token, in "Authorization: Bearer"
// or ?token= (browsers cannot set WebSocket headers). The checks run in
// this order, each before anything is subscribed or published: 400 for bad
// ids, filters and parameters; 401 with WWW-Authenticate: Bearer and
// {"error":"missing token"|"invalid token"|"token expired"}; 403 when the
// token does not allow it (a library socket or stream: CanRead(id); the
// pattern socket: CanReadPattern(prefix, filter); POST: CanPublish) or,
// with [Config.AllowedOrigins] set, when a browser's Origin is not allowed;
// then 426, the connection limits (503, 429) and the upgrade. The
// statistics, /healthz, /readyz, /metrics and the dashboard stay open:
// they show counts and rates, never event data, and probes and scrapers
// carry no tokens. A client whose token expires while connected is closed
// at its exp: a WebSocket with 1008 (policy violation) and reason "token
// expired", an SSE stream with a close event of that reason, then ended
// (EventSource's retry then gets 401 and stops). Logged URLs never carry
// the token. Refusals are counted in arrwcdc_bridge_refused_requests_total
// by reason.
//
// # Limits
//
//	Config.MaxConnections        50000   WebSocket+SSE clients per bridge; 503 beyond
//	Config.MaxConnsPerAddress    256     the same per remote IP (a proxy counts as one); 429 beyond
//	Config.MaxFilters            32      types plus exclude_source entries per client; 400 beyond
//	Config.MaxPublishBytes       4 MiB   POST body; 413 beyond
//	Config.MaxEventSize          1 MiB   one event, from the bus or POSTed; 400 beyond
//	Config.BodyReadTimeout       30s     reading a POST body (the server has no ReadTimeout: it would end SSE streams)
//	Config.ReadHeaderTimeout     10s     slow headers (slowloris) are dropped
//	Config.IdleTimeout           120s    idle keep-alive connections
//	client frames                1 KiB   read limit; clients send no data frames at all
//
// Negative MaxConnections, MaxConnsPerAddress or MaxFilters turn that limit
// off. The message rate of a client is zero: the bridge only answers pings
// and reads the close, and closes a client that sends any data message
// with 1008 after its header, so no client can make it do work per
// message. POST bodies must be valid UTF-8 JSON, nested at most 10000 deep
// (encoding/json); at most 10000 events per request (413 beyond).
//
// # WebSocket frames
//
// Every frame the bridge sends is one JSON text message. The first is
//
//	{"type":"connected","library_id":"<id>","stream_seq":N}      (library socket)
//	{"type":"connected","filter":"<pattern>","stream_seq":N}     (pattern socket)
//
// where N is the last sequence of the EVENTS stream, read after the live
// subscription of the socket exists: without a resume parameter, every
// later frame carries seq > N, and every event stored after N that the
// socket selects is sent once, in stream order. A client that loaded a
// snapshot at sequence N misses nothing. Event frames keep the original
// event bus's format, plus id, seq and source:
//
//	{"type":"event","event_type":"document.added","id":"…","seq":42,
//	 "library_id":"…","timestamp":"2025-10-27T06:01:00.000000Z","source":"app-1","data":{…}}
//
// id is the event's id, or its Nats-Msg-Id header when the event has none;
// source is "" when the event has none; timestamp has microsecond precision.
// A gap frame says that the client will not get the events it selects in
// a range of sequences:
//
//	{"type":"gap","from_seq":F,"to_seq":T,"reason":"slow"}     dropped under on_slow=drop_oldest
//	{"type":"gap","from_seq":F,"to_seq":T,"reason":"expired"}  asked for, but no longer in the stream
//
// # Query parameters
//
// Of both sockets and the SSE stream:
//
//	types=document.added,document.*   event types or type patterns (document.*, *.deleted), repeatable
//	exclude_source=app-1              drop events whose source is this value, repeatable
//	since_seq=N                       resume: "I have everything up to N", replay from N+1, then live
//	since_time=RFC3339                resume from the first event stored at or after that time
//	on_slow=disconnect|drop_oldest    what a full queue does (see Slow clients); default disconnect
//	token=…                           the access token (see Access); ignored while auth is off
//
// The pattern socket also takes filter, a subject pattern under the prefix
// checked by [subjects.ValidatePattern] (default "<prefix>.>"). since_seq
// and since_time exclude each other. Any other parameter is a 400 naming
// it.
//
// # Resume
//
// With since_seq or since_time the client first gets the stored events it
// selects from that point (replayed through a JetStream ordered consumer),
// then the live ones, with no gap and no duplicate however many events are
// stored meanwhile; frames keep stream order. The replay is paced by the
// client: it is read only as fast as the client's socket drains, so a
// client that keeps reading is never closed as slow while it catches up,
// however long the backlog. A since_seq at or after the stream's last
// sequence goes live at once. If the events from since_seq+1 on are no
// longer all in the stream, an "expired" gap frame comes first.
// docs/resume.md describes the hand-over: live frames wait in the
// client's queue, as a gap-free run whose oldest frames are let go (and
// read from the stream instead) when it is full.
//
// # Healing
//
// Live delivery re-syncs itself (DESIGN §7): after a NATS reconnect, a
// stream leader election (the JetStream advisory), messages dropped by the
// client library, or a gap seen through a live message's
// Nats-Last-Sequence, each affected live subscription reads the stream
// from the last sequence it delivered, through an ordered consumer, and
// holds live messages back meanwhile; clients get what was missed once, in
// order. Stats.Resyncs and Stats.ResyncedEvents count it; docs/resume.md
// lists what it cannot see.
//
// # Server-Sent Events
//
// GET /v1/libraries/{id}/events serves the library socket's frames as an
// event stream (text/event-stream), so EventSource and curl -N are
// clients. Each event's data is the WebSocket frame's JSON:
//
//	retry: 1000
//	event: connected
//	data: {"type":"connected","library_id":"lib-1","stream_seq":41}
//
//	id: 42
//	data: {"type":"event","event_type":"document.added","id":"…","seq":42,…}
//
//	event: gap
//	data: {"type":"gap","from_seq":43,"to_seq":47,"reason":"slow"}
//
//	: keep-alive
//
// Event frames have no event: line, so EventSource's onmessage gets every
// one of them (the type is in event_type); connected and gap frames are
// named events. id is the seq, so an EventSource that reconnects sends
// Last-Event-ID = the last seq it got and resumes exactly there:
// Last-Event-ID is since_seq, and wins over since_seq and since_time in
// the URL. A line break inside an event's data (JSON whitespace) continues
// on another data: line. A keep-alive comment comes every
// [Config.PingInterval]. A slow client with on_slow=disconnect gets a last
// event
//
//	event: close
//	data: {"type":"close","reason":"slow consumer: resume with since_seq=N"}
//
// and the stream ends; on shutdown it just ends.
//
// # Publishing over HTTP
//
// POST /v1/events takes one event envelope (DESIGN §3) or a JSON array of
// them, at most [Config.MaxPublishBytes] (default 4 MiB, else 413) and
// 10000 events. Content-Type must be application/json (or a +json type),
// else 415: a page of another site cannot send that without a CORS
// preflight, which the bridge never grants, so a browser cannot be made to
// publish even while auth is off (curl -d needs -H 'Content-Type:
// application/json'). id
// and timestamp may be left out: the bridge sets a new UUIDv7 and the
// current time; source stays empty unless given. Unknown fields are an
// error. Every event is validated (and checked against
// [Config.MaxEventSize]) before anything is published: one invalid event
// answers 400 naming it ("events[3]: invalid event: type: …", or "event:
// …" for a single object) and publishes nothing. Then each is published
// with the publisher package (Nats-Msg-Id = id) and the answer, after the
// JetStream acks, is 202 with
//
//	[{"id":"…","seq":42},{"id":"…","seq":43,"duplicate":true}]
//
// in request order; duplicate means the stream already held an event with
// that id (within its duplicate window) and seq is the stored one. If a
// publish fails (NATS or the stream unavailable), the answer is 503 with
// {"error": …, "published": [the results before the failure]}; publishing
// the same events again with their ids is safe within the duplicate
// window, so give ids yourself when you may retry.
//
// # Slow clients
//
// Each client has a queue bounded in bytes, [Config.ClientQueueBytes]
// (default 4 MiB, like nats-server's and Centrifugo's byte bounds rather
// than a frame count: about 14 000 frames of 300 bytes, 14 seconds of
// headroom at 1000 events/s for one library; frames are shared by the
// clients they are queued for, so a queue costs a pointer a frame, and the
// bytes are those of frames the bridge holds anyway while any client
// waits), and optionally in frames too ([Config.ClientQueue]). The queue
// holds no storage until a frame waits, grows by doubling and lets its
// storage go once drained after a burst (or at the next keep-alive when
// idle). Fan-out never blocks. With on_slow=disconnect (the default), when a live client's
// queue is full the bridge stops feeding it, counts it in
// slow_consumer_disconnects, and closes it with close code
// [CloseSlowConsumer] (4008) and the reason
//
//	slow consumer: resume with since_seq=<last seq sent>
//
// where the number is the seq of the last event frame written to it (the
// connected frame's stream_seq if none was). Reconnecting with that
// since_seq replays exactly what was missed. Frames still queued are not
// written: the reason's number is exact. With on_slow=drop_oldest the
// oldest queued frames are dropped instead (counted in dropped_frames) and
// a "slow" gap frame takes their place. A client that is catching up is
// never slow. A client stuck in one write for [Config.WriteTimeout] is
// dropped without a close frame. On [Bridge.Shutdown] WebSocket clients
// are closed with 1001 (going away).
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
// written minus the event's timestamp, for live frames (replayed frames
// are counted in total_delivered and total_replayed, not in the latency).
// ?scope=cluster asks every bridge of the prefix over NATS request/reply on
// arrwcdc.bridge.stats.<prefix>, gathers the replies for
// [Config.ClusterStatsTimeout], sums the counters, merges the latency
// histograms and reports the oldest bridge's uptime. stream is the EVENTS
// stream's state (messages, bytes, first_seq, last_seq, consumer_count)
// as the answering bridge read it from JetStream, at most a second ago.
//
// Distinct event types are tracked up to [maxTypes] and libraries up to
// [maxLibraries]; beyond that, new types are counted under "_other" and new
// libraries are counted in the totals but not ranked in busiest_libraries.
//
// The bridge does not own its NATS connection: the caller closes (or
// drains) it after [Bridge.Shutdown].
package bridge
