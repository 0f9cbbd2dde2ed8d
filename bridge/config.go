package bridge

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/subjects"
)

// Defaults for the zero values of [Config].
const (
	DefaultHTTPListen          = "127.0.0.1:8000"
	DefaultClientQueue         = 256
	DefaultPingInterval        = 20 * time.Second
	DefaultWriteTimeout        = 10 * time.Second
	DefaultStatsQueue          = "arrwcdc-bridge-stats"
	DefaultClusterStatsTimeout = 500 * time.Millisecond
	DefaultReadHeaderTimeout   = 10 * time.Second
	DefaultIdleTimeout         = 120 * time.Second
	DefaultMaxPublishBytes     = 4 << 20
)

// Config configures a [Bridge]. The zero value of each field means its
// documented default.
type Config struct {
	// HTTPListen is the host:port of the HTTP listener; default
	// "127.0.0.1:8000". Port 0 picks a free one (see [Bridge.URL]).
	HTTPListen string `yaml:"http_listen"`
	// Prefix of the event subjects; default "events".
	Prefix string `yaml:"prefix"`
	// ClientQueue is how many frames may wait for one client before it is
	// closed as a slow consumer; default 256 (see the package doc).
	ClientQueue int `yaml:"client_queue"`
	// PingInterval is the WebSocket keep-alive ping period (and the SSE
	// keep-alive comment's); default 20s.
	PingInterval time.Duration `yaml:"ping_interval"`
	// WriteTimeout bounds one write (and one ping) to a client; default 10s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// MaxPublishBytes bounds the body of POST /v1/events; default 4 MiB.
	// A larger body is answered 413.
	MaxPublishBytes int64 `yaml:"max_publish_bytes"`
	// MaxEventSize is the largest event accepted from the bus and over
	// POST /v1/events; default event.DefaultMaxSize (1 MiB). Larger ones
	// are invalid.
	MaxEventSize int `yaml:"max_event_size"`
	// StatsQueue is the queue group of the statistics subscription; default
	// "arrwcdc-bridge-stats". Bridges that share it share the counting.
	StatsQueue string `yaml:"stats_queue"`
	// ClusterStatsTimeout is how long ?scope=cluster gathers replies;
	// default 500ms.
	ClusterStatsTimeout time.Duration `yaml:"cluster_stats_timeout"`
	// ReadHeaderTimeout of the HTTP server; default 10s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// IdleTimeout of the HTTP server's keep-alive connections; default 120s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// AllowedOrigins are the origin patterns (path.Match syntax on the
	// Origin host, as websocket.AcceptOptions.OriginPatterns) allowed to open
	// a WebSocket; empty allows any origin (DESIGN §8).
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.HTTPListen == "" {
		c.HTTPListen = DefaultHTTPListen
	}
	if c.Prefix == "" {
		c.Prefix = subjects.DefaultPrefix
	}
	if c.ClientQueue == 0 {
		c.ClientQueue = DefaultClientQueue
	}
	if c.PingInterval == 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.MaxPublishBytes == 0 {
		c.MaxPublishBytes = DefaultMaxPublishBytes
	}
	if c.MaxEventSize == 0 {
		c.MaxEventSize = event.DefaultMaxSize
	}
	if c.StatsQueue == "" {
		c.StatsQueue = DefaultStatsQueue
	}
	if c.ClusterStatsTimeout == 0 {
		c.ClusterStatsTimeout = DefaultClusterStatsTimeout
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	return c
}

// Validate reports every invalid field of c (after defaults), joined.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var errs []error
	if _, _, err := net.SplitHostPort(c.HTTPListen); err != nil {
		errs = append(errs, fmt.Errorf("http_listen: %w", err))
	}
	if err := subjects.ValidatePrefix(c.Prefix); err != nil {
		errs = append(errs, fmt.Errorf("prefix: %w", err))
	}
	if c.ClientQueue < 1 {
		errs = append(errs, fmt.Errorf("client_queue: %d: must be positive", c.ClientQueue))
	}
	if c.MaxPublishBytes < 1 {
		errs = append(errs, fmt.Errorf("max_publish_bytes: %d: must be positive", c.MaxPublishBytes))
	}
	if c.MaxEventSize < 1 {
		errs = append(errs, fmt.Errorf("max_event_size: %d: must be positive", c.MaxEventSize))
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{
		{"ping_interval", c.PingInterval}, {"write_timeout", c.WriteTimeout},
		{"cluster_stats_timeout", c.ClusterStatsTimeout}, {"read_header_timeout", c.ReadHeaderTimeout},
		{"idle_timeout", c.IdleTimeout},
	} {
		if d.d < 0 {
			errs = append(errs, fmt.Errorf("%s: %v: must not be negative", d.name, d.d))
		}
	}
	return errors.Join(errs...)
}
