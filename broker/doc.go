// Package broker runs one embedded nats-server node for arrwcdc: client,
// cluster and monitoring listeners, JetStream on a data directory, and the
// EVENTS stream that keeps every change event (DESIGN §4, §7).
//
// A [Broker] is created with [New], started with [Broker.Start] (which does
// not return until the node accepts connections and the stream exists, and
// tears down what it started if it fails) and stopped with
// [Broker.Shutdown]. [EnsureStream] provisions the stream idempotently and is
// safe to call from several nodes at once: it creates the stream if missing
// and updates it in place if its configuration is older.
//
// Port 0 in any listen address picks a free port; the chosen addresses are
// reported by [Broker.ClientURL], [Broker.ClusterURL] and [Broker.MonitorURL].
package broker
