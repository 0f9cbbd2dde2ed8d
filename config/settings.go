package config

import (
	"flag"
	"slices"
	"strings"
	"time"

	"github.com/arrwdb/arrwcdc/broker"
	"github.com/arrwdb/arrwcdc/internal/bench"
	"github.com/arrwdb/arrwcdc/subjects"
)

// Command names one subcommand of the arrwcdc binary.
type Command struct {
	Name    string // "serve"
	Summary string // one line, lower case, for the top-level help
}

// Commands lists the subcommands in the order the top-level help shows them.
var Commands = []Command{
	{"serve", "all-in-one: embedded NATS (JetStream) broker and the HTTP/WebSocket bridge"},
	{"broker", "one NATS node with JetStream; --routes to form a cluster"},
	{"bridge", "HTTP/WebSocket bridge to the brokers at --nats-url"},
	{"demo-app", "reference library service publishing through repository hooks"},
	{"tail", "print events as they arrive (filters: --library, --type, --subject); replay stored ones first with --since-seq, --since-time or --all"},
	{"publish", "publish one event from the flags, or a JSON event on stdin without --type"},
	{"bench", "load generator: throughput and latency percentiles"},
	{"healthcheck", "exit 0 if the --url answers 2xx (the container health check: FROM-scratch images have no curl)"},
	{"token", "print an access token (JWT) for --library IDs or --all, signed with --secret-file (development and tests)"},
	{"version", "print the version"},
}

// Defaults that are not the broker's (those are in package broker).
const (
	DefaultLogLevel          = "info"
	DefaultLogFormat         = "console"
	DefaultNATSURL           = "nats://127.0.0.1:4222"
	DefaultHTTPListen        = "127.0.0.1:8000"
	DefaultDemoAppHTTPListen = "127.0.0.1:8080"
	DefaultDemoAppDB         = "./demoapp.db"
	DefaultTokenTTL          = time.Hour
	DefaultTokenSubject      = "dev"
)

// Which commands take a setting: space-separated command names.
const (
	allCmds     = "serve broker bridge demo-app tail publish bench" // not version: it takes only --help
	brokerCmds  = "serve broker"
	natsClients = "bridge demo-app tail publish" // bench: its own row, default empty
	// natsAuth take the NATS client's credentials and TLS settings.
	natsAuth = natsClients + " bench"
	// tokenVerifiers check access tokens: the bridge, and the broker's
	// auth callout.
	tokenVerifiers = "serve broker bridge"
)

// setting is one flag with its env twin and YAML key. Adding a setting is
// adding one row to [settings].
type setting struct {
	name string // flag name, "nats-listen"
	cmds string // commands that take it
	def  string // default, given to the flag's Set; "" keeps the zero value
	// usage is the flag's help; a `quoted` word names its argument.
	usage string
	bind  func(*Config) flag.Value // the field the setting fills
}

// settings is the one table of settings: defaults and parsing live here.
// A name may have several rows if their commands differ (http-listen).
var settings = []setting{
	{"config", allCmds, "", "read settings from the YAML `file`", func(c *Config) flag.Value { return (*stringValue)(&c.File) }},
	{"prefix", allCmds, subjects.DefaultPrefix, "subject `prefix` of every event", func(c *Config) flag.Value { return (*stringValue)(&c.Prefix) }},
	{"log-level", allCmds, DefaultLogLevel, "log `level`: debug, info, warn or error", func(c *Config) flag.Value { return (*stringValue)(&c.LogLevel) }},
	{"log-format", allCmds, DefaultLogFormat, "log `format`: console or json", func(c *Config) flag.Value { return (*stringValue)(&c.LogFormat) }},

	{"nats-listen", brokerCmds, broker.DefaultNATSListen, "NATS client listener `host:port`; port 0 picks a free one", func(c *Config) flag.Value { return (*stringValue)(&c.Broker.NATSListen) }},
	{"cluster-listen", brokerCmds, "", "cluster route listener `host:port`; empty means no cluster", func(c *Config) flag.Value { return (*stringValue)(&c.Broker.ClusterListen) }},
	{"cluster-name", brokerCmds, "", "cluster `name`; empty means arrwcdc when clustering", func(c *Config) flag.Value { return (*stringValue)(&c.Broker.ClusterName) }},
	{"routes", brokerCmds, "", "comma-separated nats-route://host:port `urls` of the cluster's nodes (repeatable)", func(c *Config) flag.Value { return (*listValue)(&c.Broker.Routes) }},
	{"nats-ws-listen", brokerCmds, "", "NATS WebSocket listener `host:port` for nats.ws in browsers (wss:// with --tls-cert); empty means off", func(c *Config) flag.Value { return (*stringValue)(&c.Broker.WebSocketListen) }},
	{"monitor-listen", brokerCmds, "", "NATS monitoring listener `host:port` (/varz, /jsz…); empty means off", func(c *Config) flag.Value { return (*stringValue)(&c.Broker.MonitorListen) }},
	{"data-dir", brokerCmds, broker.DefaultDataDir, "JetStream data `directory`", func(c *Config) flag.Value { return (*stringValue)(&c.Broker.DataDir) }},
	{"server-name", brokerCmds, "", "node `name`, unique in a cluster; empty means host name and client port", func(c *Config) flag.Value { return (*stringValue)(&c.Broker.ServerName) }},
	{"stream-replicas", brokerCmds, "", "`count` of EVENTS stream replicas, 1 to 5; 0 means min(3, cluster size)", func(c *Config) flag.Value { return (*intValue)(&c.Broker.Stream.Replicas) }},
	{"stream-max-age", brokerCmds, formatDuration(broker.DefaultMaxAge), "drop events older than this `duration`", func(c *Config) flag.Value { return (*durationValue)(&c.Broker.Stream.MaxAge) }},
	{"stream-max-bytes", brokerCmds, "", "cap the EVENTS stream at this many `bytes`, dropping the oldest; 0 means no cap", func(c *Config) flag.Value { return (*int64Value)(&c.Broker.Stream.MaxBytes) }},

	{"allowed-origins", "serve bridge", "", "comma-separated browser `origins` allowed on the bridge (path.Match patterns such as https://*.example.com); empty means any", func(c *Config) flag.Value { return (*listValue)(&c.Bridge.AllowedOrigins) }},
	{"client-queue", "serve bridge", "", "also bound the `frames` that may wait for one client before it is closed as slow; 0 means no frame bound (only --client-queue-bytes)", func(c *Config) flag.Value { return (*intValue)(&c.Bridge.ClientQueue) }},
	{"client-queue-bytes", "serve bridge", "", "`bytes` of frames that may wait for one client before it is closed as slow; 0 means 4 MiB, negative no byte bound (needs --client-queue)", func(c *Config) flag.Value { return (*int64Value)(&c.Bridge.ClientQueueBytes) }},
	{"max-connections", "serve bridge", "", "WebSocket and SSE `clients` of the bridge; 0 means 50000, negative no limit", func(c *Config) flag.Value { return (*intValue)(&c.Bridge.MaxConnections) }},
	{"max-conns-per-address", "serve bridge", "", "WebSocket and SSE `clients` of one remote address; 0 means 256, negative no limit", func(c *Config) flag.Value { return (*intValue)(&c.Bridge.MaxConnsPerAddress) }},
	{"max-publish-bytes", "serve bridge", "", "largest POST /v1/events body in `bytes`; 0 means 4 MiB", func(c *Config) flag.Value { return (*int64Value)(&c.Bridge.MaxPublishBytes) }},
	{"http-listen", "serve bridge", DefaultHTTPListen, "HTTP listener `host:port`; port 0 picks a free one", func(c *Config) flag.Value { return (*stringValue)(&c.HTTPListen) }},
	{"http-listen", "demo-app", DefaultDemoAppHTTPListen, "HTTP listener `host:port`; port 0 picks a free one", func(c *Config) flag.Value { return (*stringValue)(&c.HTTPListen) }},
	{"nats-url", natsClients, DefaultNATSURL, "comma-separated NATS server `urls` (repeatable)", func(c *Config) flag.Value { return (*listValue)(&c.NATSURL) }},

	{"library", "tail", "", "only events of this library `id`", func(c *Config) flag.Value { return (*stringValue)(&c.Tail.LibraryID) }},
	{"type", "tail", "", "only events of these comma-separated `types` or patterns such as document.* (repeatable)", func(c *Config) flag.Value { return (*listValue)(&c.Tail.Types) }},
	{"subject", "tail", "", "raw NATS subject `pattern` such as events.library.*.document.>, instead of --library and --type", func(c *Config) flag.Value { return (*stringValue)(&c.Tail.Subject) }},
	{"json", "tail", "", "print each event as one JSON line", func(c *Config) flag.Value { return (*boolValue)(&c.Tail.JSON) }},
	{"since-seq", "tail", "", "first replay the stored events from this stream `sequence` (1 or more), then go on live", func(c *Config) flag.Value { return (*seqValue)(&c.Tail.SinceSeq) }},
	{"since-time", "tail", "", "first replay the events stored since this RFC 3339 `time` (2025-10-27T06:01:00Z), then go on live", func(c *Config) flag.Value { return (*timeValue)(&c.Tail.SinceTime) }},
	{"all", "tail", "", "first replay every stored event, then go on live", func(c *Config) flag.Value { return (*boolValue)(&c.Tail.All) }},

	{"library", "publish", "", "library `id` of the event", func(c *Config) flag.Value { return (*stringValue)(&c.Publish.LibraryID) }},
	{"type", "publish", "", "event `type` such as document.added; empty means read one JSON event from stdin", func(c *Config) flag.Value { return (*stringValue)(&c.Publish.Type) }},
	{"data", "publish", "", "event data, a JSON `object`; empty means {}", func(c *Config) flag.Value { return (*stringValue)(&c.Publish.Data) }},
	{"source", "publish", "", "event `source`; empty means the publisher's default", func(c *Config) flag.Value { return (*stringValue)(&c.Publish.Source) }},
	{"id", "publish", "", "event `id`, also its dedup key; empty means a new UUID", func(c *Config) flag.Value { return (*stringValue)(&c.Publish.ID) }},

	{"db", "demo-app", DefaultDemoAppDB, "SQLite `file` of the libraries and the outbox", func(c *Config) flag.Value { return (*stringValue)(&c.DemoApp.DB) }},
	{"source", "demo-app", "", "`name` of this instance in its events; empty means the host name", func(c *Config) flag.Value { return (*stringValue)(&c.DemoApp.Source) }},
	{"search-events", "demo-app", "1", "share of searches that publish search.performed, 0 to 1 (`rate`); 0 turns them off", func(c *Config) flag.Value { return (*float64Value)(&c.DemoApp.SearchRate) }},

	{"url", "healthcheck", "", "`url` to GET", func(c *Config) flag.Value { return (*stringValue)(&c.Healthcheck.URL) }},

	// Security (DESIGN §8): broker users and TLS, token keys, NATS client
	// credentials, and the token command.
	{"users-file", brokerCmds, "", "YAML `file` of NATS users with roles (publisher, bridge, tap, admin); empty means no user authentication", func(c *Config) flag.Value { return (*stringValue)(&c.Broker.UsersFile) }},
	{"tls-cert", brokerCmds, "", "PEM certificate `file` of the NATS client listener; with --tls-key turns TLS on", func(c *Config) flag.Value { return (*stringValue)(&c.Broker.TLS.Cert) }},
	{"tls-key", brokerCmds, "", "PEM private key `file` of --tls-cert", func(c *Config) flag.Value { return (*stringValue)(&c.Broker.TLS.Key) }},
	{"tls-ca", brokerCmds, "", "PEM CA `file`: NATS clients must present a certificate it signed (mutual TLS)", func(c *Config) flag.Value { return (*stringValue)(&c.Broker.TLS.CA) }},
	{"cluster-tls-cert", brokerCmds, "", "PEM certificate `file` of the cluster routes; with --cluster-tls-key and --cluster-tls-ca turns route TLS on", func(c *Config) flag.Value { return (*stringValue)(&c.Broker.ClusterTLS.Cert) }},
	{"cluster-tls-key", brokerCmds, "", "PEM private key `file` of --cluster-tls-cert", func(c *Config) flag.Value { return (*stringValue)(&c.Broker.ClusterTLS.Key) }},
	{"cluster-tls-ca", brokerCmds, "", "PEM CA `file` the routes verify each other with", func(c *Config) flag.Value { return (*stringValue)(&c.Broker.ClusterTLS.CA) }},
	{"token-secret-file", tokenVerifiers, "", "`file` holding the HS256 secret of access tokens (trailing whitespace ignored); turns token auth on (bridge, and NATS auth callout on serve and broker)", func(c *Config) flag.Value { return (*stringValue)(&c.TokenSecretFile) }},
	{"token-public-key-file", tokenVerifiers, "", "PEM `file` of the RS256 public key of access tokens, instead of --token-secret-file", func(c *Config) flag.Value { return (*stringValue)(&c.TokenPublicKeyFile) }},

	{"nats-user", natsAuth, "", "NATS user `name` (with --nats-password)", func(c *Config) flag.Value { return (*stringValue)(&c.NATSClient.User) }},
	{"nats-password", natsAuth, "", "NATS `password` of --nats-user (prefer the env var: flags show in ps)", func(c *Config) flag.Value { return (*stringValue)(&c.NATSClient.Password) }},
	{"nats-nkey-seed-file", natsAuth, "", "`file` holding the NATS user's nkey seed (SU…)", func(c *Config) flag.Value { return (*stringValue)(&c.NATSClient.NKeySeedFile) }},
	{"nats-creds", natsAuth, "", "NATS credentials `file` (user JWT and seed, operator mode)", func(c *Config) flag.Value { return (*stringValue)(&c.NATSClient.CredsFile) }},
	{"nats-token", natsAuth, "", "NATS auth `token`, such as an access token of arrwcdc token for the auth callout", func(c *Config) flag.Value { return (*stringValue)(&c.NATSClient.Token) }},
	{"nats-tls-ca", natsAuth, "", "PEM CA `file` that signed the NATS servers' certificates; turns TLS on", func(c *Config) flag.Value { return (*stringValue)(&c.NATSClient.TLSCA) }},
	{"nats-tls-cert", natsAuth, "", "PEM client certificate `file` for NATS servers that require one", func(c *Config) flag.Value { return (*stringValue)(&c.NATSClient.TLSCert) }},
	{"nats-tls-key", natsAuth, "", "PEM private key `file` of --nats-tls-cert", func(c *Config) flag.Value { return (*stringValue)(&c.NATSClient.TLSKey) }},

	{"config", "token", "", "read settings from the YAML `file`", func(c *Config) flag.Value { return (*stringValue)(&c.File) }},
	{"library", "token", "", "library `id` the token may read (comma-separated, repeatable)", func(c *Config) flag.Value { return (*listValue)(&c.Token.Libraries) }},
	{"all", "token", "", "the token may read every library (\"read\": [\"*\"])", func(c *Config) flag.Value { return (*boolValue)(&c.Token.All) }},
	{"publish", "token", "", "the token may publish (POST /v1/events)", func(c *Config) flag.Value { return (*boolValue)(&c.Token.Publish) }},
	{"ttl", "token", formatDuration(DefaultTokenTTL), "the token expires after this `duration`", func(c *Config) flag.Value { return (*durationValue)(&c.Token.TTL) }},
	{"sub", "token", DefaultTokenSubject, "who holds the token (its sub `claim`)", func(c *Config) flag.Value { return (*stringValue)(&c.Token.Subject) }},
	{"secret-file", "token", "", "`file` holding the HS256 secret to sign with (trailing whitespace ignored)", func(c *Config) flag.Value { return (*stringValue)(&c.Token.SecretFile) }},
	{"private-key-file", "token", "", "PEM `file` of an RS256 private key to sign with, instead of --secret-file", func(c *Config) flag.Value { return (*stringValue)(&c.Token.PrivateKeyFile) }},

	{"nats-url", "bench", "", "comma-separated NATS server `urls` (repeatable); empty means an embedded broker in a temporary directory", func(c *Config) flag.Value { return (*listValue)(&c.NATSURL) }},
	{"scenario", "bench", "publish", "what to measure (`name`): " + strings.Join(bench.Scenarios, ", "), func(c *Config) flag.Value { return (*stringValue)(&c.Bench.Scenario) }},
	{"mode", "bench", "async", "publish `mode`: sync, async or core (core: publish and e2e only)", func(c *Config) flag.Value { return (*stringValue)(&c.Bench.Mode) }},
	{"events", "bench", "", "`count` of events to publish; 0 means the scenario's default", func(c *Config) flag.Value { return (*intValue)(&c.Bench.Events) }},
	{"size", "bench", "300", "encoded size of each event in `bytes`", func(c *Config) flag.Value { return (*intValue)(&c.Bench.Size) }},
	{"rate", "bench", "", "target publish `rate` in events/s; 0 means as fast as possible", func(c *Config) flag.Value { return (*float64Value)(&c.Bench.Rate) }},
	{"clients", "bench", "10", "`count` of WebSocket clients (ws, ws-peer, ws-centrifugo, conns, conns-peer, conns-centrifugo)", func(c *Config) flag.Value { return (*intValue)(&c.Bench.Clients) }},
	{"libraries", "bench", "1", "`count` of libraries the events and clients are spread over", func(c *Config) flag.Value { return (*intValue)(&c.Bench.Libraries) }},
	{"duration", "bench", "", "stop publishing after this `duration` even if --events are not all sent; 0 means no limit", func(c *Config) flag.Value { return (*durationValue)(&c.Bench.Duration) }},
	{"client-queue", "bench", "", "the bridge's queue per client in `frames` (ws, replay); 0 means the bridge's default", func(c *Config) flag.Value { return (*intValue)(&c.Bench.ClientQueue) }},
	{"centrifugo", "bench", "", "centrifugo `binary` of ws-centrifugo and conns-centrifugo; empty means centrifugo on the PATH", func(c *Config) flag.Value { return (*stringValue)(&c.Bench.Centrifugo) }},
	{"json", "bench", "", "print the result as one JSON object instead of a table", func(c *Config) flag.Value { return (*boolValue)(&c.Bench.JSON) }},
	{"cpu-profile", "bench", "", "write a CPU profile of the measured phase to this `file`", func(c *Config) flag.Value { return (*stringValue)(&c.Bench.CPUProfile) }},
	{"mem-profile", "bench", "", "write an allocation profile of the measured phase to this `file`", func(c *Config) flag.Value { return (*stringValue)(&c.Bench.MemProfile) }},
	{"trace", "bench", "", "write an execution trace of the measured phase to this `file` (go tool trace)", func(c *Config) flag.Value { return (*stringValue)(&c.Bench.Trace) }},
}

// takes reports whether command takes s.
func (s *setting) takes(command string) bool {
	return slices.Contains(strings.Fields(s.cmds), command)
}

// envName is the setting's environment twin, ARRWCDC_NATS_LISTEN.
func envName(name string) string {
	return "ARRWCDC_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// commandSettings returns the rows of command, in table order.
func commandSettings(command string) []*setting {
	var out []*setting
	for i := range settings {
		if settings[i].takes(command) {
			out = append(out, &settings[i])
		}
	}
	return out
}

// takers returns the commands that take the setting name, for error hints.
func takers(name string) []string {
	var out []string
	for i := range settings {
		if settings[i].name == name {
			out = append(out, strings.Fields(settings[i].cmds)...)
		}
	}
	return out
}

func knownCommand(command string) bool {
	return slices.ContainsFunc(Commands, func(c Command) bool { return c.Name == command })
}
