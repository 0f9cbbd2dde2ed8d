package broker

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/arrwdb/arrwcdc/auth"
	"github.com/arrwdb/arrwcdc/subjects"
)

// StreamName is the name of the stream that keeps every change event.
const StreamName = "EVENTS"

// Defaults of [Config] and [StreamConfig].
const (
	DefaultNATSListen   = "127.0.0.1:4222"
	DefaultDataDir      = "./data"
	DefaultMaxAge       = 7 * 24 * time.Hour
	DefaultDuplicates   = 2 * time.Minute
	DefaultReadyTimeout = 30 * time.Second
	// DefaultMaxPayload fits a 1 MiB event plus its headers.
	DefaultMaxPayload = 2 << 20
)

// Config configures one broker node. The zero value of each field means the
// documented default, so Config{} is a valid single node on 127.0.0.1:4222.
type Config struct {
	// NATSListen is the client listener, host:port. "" means
	// 127.0.0.1:4222; port 0 picks a free port.
	NATSListen string `yaml:"nats_listen"`
	// ClusterListen is the route listener, host:port. "" means no cluster.
	ClusterListen string `yaml:"cluster_listen"`
	// ClusterName names the cluster. "" means "arrwcdc" when clustering.
	ClusterName string `yaml:"cluster_name"`
	// Routes are the nats-route:// URLs of the cluster's nodes. A node may
	// list its own cluster address; it is counted once.
	Routes []string `yaml:"routes"`
	// MonitorListen is the NATS monitoring listener (/varz, /jsz…),
	// host:port. "" means off.
	MonitorListen string `yaml:"monitor_listen"`
	// WebSocketListen is the NATS WebSocket listener (nats.ws in
	// browsers), host:port. "" means off. It uses the certificate of TLS
	// when that is on (wss://), else plain ws://; users, tokens and
	// permissions are those of the client listener.
	WebSocketListen string `yaml:"nats_ws_listen"`
	// DataDir holds JetStream's files. "" means ./data.
	DataDir string `yaml:"data_dir"`
	// ServerName is the node's name, unique in a cluster. "" means one made
	// from the host name and the client port.
	ServerName string `yaml:"server_name"`
	// Prefix is the subject prefix. "" means "events".
	Prefix string `yaml:"prefix"`
	// Stream configures the EVENTS stream.
	Stream StreamConfig `yaml:"stream"`
	// MaxPayload is the largest message the node accepts. 0 means 2 MiB.
	MaxPayload int32 `yaml:"max_payload"`
	// ReadyTimeout bounds Start. 0 means 30 s.
	ReadyTimeout time.Duration `yaml:"ready_timeout"`
	// Debug and Trace turn on nats-server's verbose logs.
	Debug bool `yaml:"debug"`
	Trace bool `yaml:"trace"`

	// Security (DESIGN §8): all off in the zero value. Setting any of
	// UsersFile, Users, TokenSecretFile, TokenPublicKeyFile or Tokens makes
	// every client connection authenticate; the broker's own connections
	// ([Broker.Connect]) then log in as [InternalUser].

	// UsersFile is a YAML file of users with roles ([LoadUsers]). "" means
	// none.
	UsersFile string `yaml:"users_file"`
	// Users are users given in code, added to those of UsersFile.
	Users []User `yaml:"users"`
	// TokenSecretFile holds the HS256 secret of the tokens the NATS auth
	// callout accepts ([auth.LoadVerifier]); setting it turns the callout
	// on. "" means none.
	TokenSecretFile string `yaml:"token_secret_file"`
	// TokenPublicKeyFile holds the RS256 public key (PEM) of the tokens;
	// setting it turns the callout on. At most one of the two.
	TokenPublicKeyFile string `yaml:"token_public_key_file"`
	// Tokens is a verifier given in code (tests, an embedding program); it
	// turns the callout on and takes the place of the two files.
	Tokens *auth.Verifier `yaml:"-"`
	// TLS of the client listener. The zero value means plain TCP.
	TLS TLSConfig `yaml:"tls"`
	// ClusterTLS of the route listener and of the routes this node dials.
	// The zero value means plain TCP.
	ClusterTLS TLSConfig `yaml:"cluster_tls"`
}

// AuthEnabled reports whether clients must authenticate: users or the
// token callout are configured.
func (c Config) AuthEnabled() bool {
	return c.UsersFile != "" || len(c.Users) > 0 || c.CalloutEnabled()
}

// CalloutEnabled reports whether the broker serves the NATS auth callout
// for tokens.
func (c Config) CalloutEnabled() bool {
	return c.Tokens != nil || c.TokenSecretFile != "" || c.TokenPublicKeyFile != ""
}

// StreamConfig holds the limits of the EVENTS stream.
type StreamConfig struct {
	// Replicas is the stream's replica count. 0 means min(3, cluster size).
	Replicas int `yaml:"replicas"`
	// MaxAge drops events older than this. 0 means 7 days.
	MaxAge time.Duration `yaml:"max_age"`
	// MaxBytes caps the stream's size, dropping the oldest events. 0 means
	// no cap (age alone limits it).
	MaxBytes int64 `yaml:"max_bytes"`
	// Duplicates is the Nats-Msg-Id dedup window. 0 means 2 minutes.
	Duplicates time.Duration `yaml:"duplicates"`
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.NATSListen = cmp.Or(c.NATSListen, DefaultNATSListen)
	c.DataDir = cmp.Or(c.DataDir, DefaultDataDir)
	c.Prefix = cmp.Or(c.Prefix, subjects.DefaultPrefix)
	if c.ClusterListen != "" && c.ClusterName == "" {
		c.ClusterName = "arrwcdc"
	}
	c.MaxPayload = cmp.Or(c.MaxPayload, DefaultMaxPayload)
	c.ReadyTimeout = cmp.Or(c.ReadyTimeout, DefaultReadyTimeout)
	if c.Stream.Replicas == 0 { // ClusterSize may ask the OS for the host name
		c.Stream.Replicas = min(3, c.ClusterSize())
	}
	c.Stream.MaxAge = cmp.Or(c.Stream.MaxAge, DefaultMaxAge)
	c.Stream.Duplicates = cmp.Or(c.Stream.Duplicates, DefaultDuplicates)
	return c
}

// ClusterSize is the node itself plus the other distinct route URLs. A
// route naming this node's own cluster address is not counted.
func (c Config) ClusterSize() int {
	if c.ClusterListen == "" {
		return 1
	}
	seen := map[string]bool{}
	for _, r := range c.Routes {
		u, err := url.Parse(strings.TrimSpace(r))
		if err != nil || u.Host == "" || c.isSelf(u.Host) {
			continue
		}
		seen[u.Host] = true
	}
	return 1 + len(seen)
}

// Validate reports every problem of c (after defaults) in one error.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var errs []error
	check := func(field string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		}
	}
	check("nats_listen", validListen(c.NATSListen))
	if c.ClusterListen != "" {
		check("cluster_listen", validListen(c.ClusterListen))
	}
	if c.MonitorListen != "" {
		check("monitor_listen", validListen(c.MonitorListen))
	}
	if c.WebSocketListen != "" {
		check("nats_ws_listen", validListen(c.WebSocketListen))
	}
	for _, r := range c.Routes {
		u, err := url.Parse(strings.TrimSpace(r))
		if err != nil || u.Host == "" || (u.Scheme != "nats-route" && u.Scheme != "nats") {
			errs = append(errs, fmt.Errorf("routes: %q: want nats-route://host:port", r))
		}
	}
	if len(c.Routes) > 0 && c.ClusterListen == "" {
		errs = append(errs, errors.New("routes: need cluster_listen"))
	}
	check("prefix", subjects.ValidatePrefix(c.Prefix))
	if c.Stream.Replicas < 1 || c.Stream.Replicas > 5 {
		errs = append(errs, fmt.Errorf("stream.replicas: %d: want 1 to 5", c.Stream.Replicas))
	}
	if c.Stream.Replicas > c.ClusterSize() {
		errs = append(errs, fmt.Errorf("stream.replicas: %d: more than the %d node(s) of the cluster", c.Stream.Replicas, c.ClusterSize()))
	}
	if c.Stream.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("stream.max_age: %v: must not be negative", c.Stream.MaxAge))
	}
	if c.Stream.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("stream.max_bytes: %d: must not be negative", c.Stream.MaxBytes))
	}
	if c.Stream.Duplicates < 0 || c.Stream.Duplicates > c.Stream.MaxAge {
		errs = append(errs, fmt.Errorf("stream.duplicates: %v: want 0 to max_age", c.Stream.Duplicates))
	}
	if c.MaxPayload < 0 {
		errs = append(errs, fmt.Errorf("max_payload: %d: must not be negative", c.MaxPayload))
	}
	if c.ReadyTimeout < 0 {
		errs = append(errs, fmt.Errorf("ready_timeout: %v: must not be negative", c.ReadyTimeout))
	}
	errs = append(errs, c.securityErrors()...)
	return errors.Join(errs...)
}

// splitListen returns host and nats-server's port for a listen address:
// port 0 becomes -1, nats-server's "pick a free port".
func splitListen(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	if port == 0 {
		port = -1
	}
	return host, port, nil
}

func validListen(addr string) error {
	_, _, err := splitListen(addr)
	if err != nil {
		return fmt.Errorf("%q: want host:port: %w", addr, err)
	}
	return nil
}

// isSelf reports whether a route's host:port is this node's own cluster
// listener: the same address, or this machine's host name (or the server
// name) on the same port, as in docker-compose where every node lists all.
func (c Config) isSelf(hostport string) bool {
	if sameHostPort(hostport, c.ClusterListen) {
		return true
	}
	h, p, err := net.SplitHostPort(hostport)
	_, lp, err2 := net.SplitHostPort(c.ClusterListen)
	if err != nil || err2 != nil || p != lp {
		return false
	}
	name, _ := os.Hostname()
	return h == name || (c.ServerName != "" && h == c.ServerName)
}

func sameHostPort(a, b string) bool {
	ah, ap, err1 := net.SplitHostPort(a)
	bh, bp, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || ap != bp {
		return false
	}
	norm := func(h string) string {
		if h == "" || h == "0.0.0.0" || h == "::" || h == "localhost" {
			return "127.0.0.1"
		}
		return h
	}
	return norm(ah) == norm(bh)
}

// securityErrors checks the users, token and TLS settings; it reads the
// files they name.
func (c Config) securityErrors() []error {
	var errs []error
	if c.UsersFile != "" {
		if _, err := LoadUsers(c.UsersFile); err != nil {
			errs = append(errs, fmt.Errorf("users_file: %q: %w", c.UsersFile, err))
		}
	}
	if err := ValidateUsers(c.Users); err != nil {
		errs = append(errs, fmt.Errorf("users: %w", err))
	}
	if c.Tokens == nil {
		if c.TokenSecretFile != "" && c.TokenPublicKeyFile != "" {
			errs = append(errs, fmt.Errorf("token_public_key_file: %q: give it or token_secret_file, not both", c.TokenPublicKeyFile))
		} else if _, err := auth.LoadVerifier(c.TokenSecretFile, c.TokenPublicKeyFile); err != nil {
			field, path := "token_secret_file", c.TokenSecretFile
			if path == "" {
				field, path = "token_public_key_file", c.TokenPublicKeyFile
			}
			errs = append(errs, fmt.Errorf("%s: %q: %w", field, path, err))
		}
	}
	errs = append(errs, c.TLS.validate("tls", false)...)
	errs = append(errs, c.ClusterTLS.validate("cluster_tls", true)...)
	if c.ClusterTLS != (TLSConfig{}) && c.ClusterListen == "" {
		errs = append(errs, errors.New("cluster_tls: need cluster_listen"))
	}
	return errs
}
