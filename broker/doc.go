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
//
// # Security (DESIGN §8)
//
// Off in the zero Config. Config.UsersFile ([LoadUsers]) lists users with a
// password (clear or bcrypt) or an nkey, each with a [Role] whose subject
// permissions [Permissions] spells out: publisher, bridge, tap, admin.
// Config.TLS and Config.ClusterTLS put the client and route listeners
// behind TLS (a CA on the client listener requires client certificates;
// routes always verify each other).
//
// Config.TokenSecretFile or Config.TokenPublicKeyFile (or Config.Tokens)
// turns on nats-server's auth callout, served in-process with the same
// [auth.Verifier] as the bridge: a client that presents an access token as
// its NATS auth token (nats --token <jwt>) may subscribe to exactly
// [TokenSubjects] — <prefix>.library.<id>.> and live.<prefix>.library.<id>.>
// for each library the token reads — may publish nothing, and is cut off
// by the server when the token expires. Refused tokens (missing, invalid,
// expired, forged) see "Authorization Violation". Every user of the users
// file skips the callout.
//
// Whenever clients must authenticate, the broker's own connections
// ([Broker.Connect]: provisioning, the callout responder, serve's bridge)
// log in as [InternalUser] with a password made anew by each process.
// Start connects the callout responder before anything else, as nats-server
// requires. In a cluster every node answers the callouts of its own
// clients; a separate `arrwcdc bridge` logs in as a bridge user of the
// users file.
package broker
