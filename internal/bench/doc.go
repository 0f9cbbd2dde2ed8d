// Package bench is the load generator behind `arrwcdc bench`: it drives
// arrwcdc's own packages (publisher, subscriber, bridge, outbox) against a
// broker and measures throughput, latency percentiles, memory and
// allocations. docs/performance.md explains each figure.
//
// Scenarios ([Scenarios]):
//
//	publish  Publisher → JetStream: Publish (sync), PublishAsync (async) or core NATS (core)
//	e2e      Publisher → subscriber.Subscribe handler; latency = handler time − event timestamp
//	ws       Publisher → JetStream → bridge → N WebSocket clients; latency = frame read − event timestamp
//	ws-peer  the same load against nats-server's own websocket listener (NATS protocol over WebSocket)
//	ws-centrifugo  the same load through Centrifugo (fed from the live subjects by its HTTP API)
//	replay   N stored events → one WebSocket client resuming with since_seq
//	outbox   N rows in a SQLite outbox → relay → JetStream (drain rate)
//
// [Run] starts an embedded broker in a temporary directory unless
// [Config.NATSURL] is set, runs one scenario and returns a [Result], which
// [Result.WriteTable] and [Result.WriteJSON] print. Every load goes to
// 127.0.0.1 or to the given URLs, is bounded by [Config.Events] and
// [Config.Duration], and stops waiting for deliveries after [Config.Drain]
// without progress.
package bench
