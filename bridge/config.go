package bridge

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/arrwdb/arrwcdc/auth"
	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/subjects"
)

// Defaults for the zero values of [Config].
const (
	DefaultHTTPListen          = "127.0.0.1:8000"
	DefaultClientQueueBytes    = 4 << 20
	DefaultPingInterval        = 20 * time.Second
	DefaultWriteTimeout        = 10 * time.Second
	DefaultStatsQueue          = "arrwcdc-bridge-stats"
	DefaultClusterStatsTimeout = 500 * time.Millisecond
	DefaultReadHeaderTimeout   = 10 * time.Second
	DefaultIdleTimeout         = 120 * time.Second
	DefaultMaxPublishBytes     = 4 << 20
	DefaultMaxConnections      = 50000
	DefaultMaxConnsPerAddress  = 256
	DefaultMaxFilters          = 32
	DefaultBodyReadTimeout     = 30 * time.Second
)

// Config configures a [Bridge]. The zero value of each field means its
// documented default.
type Config struct {
	// HTTPListen is the host:port of the HTTP listener; default
	// "127.0.0.1:8000". Port 0 picks a free one (see [Bridge.URL]).
	HTTPListen string `yaml:"http_listen"`
	// Prefix of the event subjects; default "events".
	Prefix string `yaml:"prefix"`
	// ClientQueueBytes is how many bytes of frames may wait for one client
	// before it is closed as a slow consumer (see the package doc);
	// default 4 MiB, negative: no byte bound (then ClientQueue must be
	// set). A frame that alone exceeds it is still queued for an empty
	// queue.
	ClientQueueBytes int64 `yaml:"client_queue_bytes"`
	// ClientQueue, if positive, also bounds the frames that may wait for
	// one client; 0, the default, means no frame bound (only
	// ClientQueueBytes). Before ClientQueueBytes it was the only bound,
	// 256 frames by default; a configured value keeps bounding.
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
	// WebSocket, and a browser (a request with an Origin header) to open
	// an SSE stream or POST events: others get 403. Empty allows any
	// origin (DESIGN §8).
	AllowedOrigins []string `yaml:"allowed_origins"`
	// Tokens verifies the access tokens of WebSocket, SSE and
	// POST /v1/events requests (DESIGN §8); nil, the default, means auth
	// is off and everything is allowed. The statistics, health, metrics
	// and dashboard routes stay open either way.
	Tokens *auth.Verifier `yaml:"-"`
	// MaxConnections bounds the WebSocket and SSE clients of this bridge;
	// one more is answered 503. Default 50000; negative: no limit.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnsPerAddress bounds the WebSocket and SSE clients of one
	// remote IP address (behind a proxy, the proxy's); one more is
	// answered 429. Default 256; negative: no limit.
	MaxConnsPerAddress int `yaml:"max_conns_per_address"`
	// MaxFilters bounds the entries of ?types= plus ?exclude_source= of one
	// client; more is answered 400. Default 32; negative: no limit.
	MaxFilters int `yaml:"max_filters"`
	// BodyReadTimeout bounds reading the body of POST /v1/events; default
	// 30s. (The server has no global ReadTimeout: it would end SSE streams.)
	BodyReadTimeout time.Duration `yaml:"body_read_timeout"`
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.HTTPListen = cmp.Or(c.HTTPListen, DefaultHTTPListen)
	c.Prefix = cmp.Or(c.Prefix, subjects.DefaultPrefix)
	c.ClientQueueBytes = cmp.Or(c.ClientQueueBytes, DefaultClientQueueBytes)
	c.PingInterval = cmp.Or(c.PingInterval, DefaultPingInterval)
	c.WriteTimeout = cmp.Or(c.WriteTimeout, DefaultWriteTimeout)
	c.MaxPublishBytes = cmp.Or(c.MaxPublishBytes, DefaultMaxPublishBytes)
	c.MaxEventSize = cmp.Or(c.MaxEventSize, event.DefaultMaxSize)
	c.StatsQueue = cmp.Or(c.StatsQueue, DefaultStatsQueue)
	c.ClusterStatsTimeout = cmp.Or(c.ClusterStatsTimeout, DefaultClusterStatsTimeout)
	c.ReadHeaderTimeout = cmp.Or(c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	c.IdleTimeout = cmp.Or(c.IdleTimeout, DefaultIdleTimeout)
	c.MaxConnections = cmp.Or(c.MaxConnections, DefaultMaxConnections)
	c.MaxConnsPerAddress = cmp.Or(c.MaxConnsPerAddress, DefaultMaxConnsPerAddress)
	c.MaxFilters = cmp.Or(c.MaxFilters, DefaultMaxFilters)
	c.BodyReadTimeout = cmp.Or(c.BodyReadTimeout, DefaultBodyReadTimeout)
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
	if c.ClientQueue < 0 {
		errs = append(errs, fmt.Errorf("client_queue: %d: must not be negative", c.ClientQueue))
	}
	if c.ClientQueueBytes < 0 && c.ClientQueue == 0 {
		errs = append(errs, fmt.Errorf("client_queue_bytes: %d: no byte bound needs a positive client_queue", c.ClientQueueBytes))
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
		{"idle_timeout", c.IdleTimeout}, {"body_read_timeout", c.BodyReadTimeout},
	} {
		if d.d < 0 {
			errs = append(errs, fmt.Errorf("%s: %v: must not be negative", d.name, d.d))
		}
	}
	return errors.Join(errs...)
}
