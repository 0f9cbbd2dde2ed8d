package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/auth"
	"github.com/arrwdb/arrwcdc/internal/natslog"
)

// ErrNotReady is returned by Start when the node does not accept
// connections, or the stream cannot be provisioned, within ReadyTimeout.
var ErrNotReady = errors.New("broker: not ready")

// Broker is one embedded NATS node. Its methods are safe for concurrent use.
type Broker struct {
	cfg Config
	log *zap.Logger

	// Security, fixed by New: the users of UsersFile and Users, the token
	// verifier (nil: no callout), the internal user's random password
	// ("" when auth is off) and the callout's account key.
	users    []User
	tokens   *auth.Verifier
	password string
	issuer   nkeys.KeyPair

	mu      sync.Mutex
	srv     *server.Server
	callout *nats.Conn // the auth callout responder's connection
}

// New validates cfg and returns a Broker that is not started yet. A nil log
// means no logging.
func New(cfg Config, log *zap.Logger) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("broker: config: %w", err)
	}
	if log == nil {
		log = zap.NewNop()
	}
	b := &Broker{cfg: cfg.WithDefaults(), log: log.Named("broker")}
	if err := b.initSecurity(); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	return b, nil
}

// Config returns the configuration in force, defaults filled in.
func (b *Broker) Config() Config { return b.cfg }

// Start starts the node and waits until it accepts connections and the
// EVENTS stream is provisioned, or ctx ends, or ReadyTimeout passes
// ([ErrNotReady]). If it fails, whatever it started is shut down.
func (b *Broker) Start(ctx context.Context) error {
	opts, err := b.natsOptions()
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	srv.SetLoggerV2(natslog.New(b.log.Named("nats")), b.cfg.Debug, b.cfg.Trace, false)
	srv.Start()
	if !srv.ReadyForConnections(b.cfg.ReadyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("%w: no client listener within %v", ErrNotReady, b.cfg.ReadyTimeout)
	}
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()

	// The callout responder must listen before any other connection
	// opens, or that connection waits for a callout nobody answers
	// (notes/auth-callout.md, 2).
	if err := b.startCallout(); err != nil {
		_ = b.Shutdown(context.Background())
		return fmt.Errorf("%w: auth callout: %w", ErrNotReady, err)
	}

	ctx, cancel := context.WithTimeout(ctx, b.cfg.ReadyTimeout)
	defer cancel()
	if err := b.provision(ctx); err != nil {
		_ = b.Shutdown(context.Background())
		return err
	}
	b.log.Info("broker ready",
		zap.String("client_url", b.ClientURL()),
		zap.String("cluster_url", b.ClusterURL()),
		zap.String("monitor_url", b.MonitorURL()),
		zap.String("websocket_url", b.WebSocketURL()),
		zap.String("server_name", srv.Name()),
		zap.Int("users", len(b.users)),
		zap.Bool("token_callout", b.tokens != nil),
		zap.Bool("tls", b.cfg.TLS.Enabled()),
		zap.Bool("cluster_tls", b.cfg.ClusterTLS.Enabled()))
	return nil
}

func (b *Broker) provision(ctx context.Context) error {
	nc, err := b.Connect(nats.Name("arrwcdc-provisioner"))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotReady, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	if _, err := EnsureStream(ctx, js, b.cfg.Prefix, b.cfg.Stream); err != nil {
		return fmt.Errorf("%w: %w", ErrNotReady, err)
	}
	return nil
}

// Shutdown stops the node and waits for it, or returns ctx's error if ctx
// ends first (the node then finishes stopping in the background). It is
// safe to call more than once and on a Broker that never started.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	srv, callout := b.srv, b.callout
	b.srv, b.callout = nil, nil
	b.mu.Unlock()
	if callout != nil {
		callout.Close()
	}
	if srv == nil {
		return nil
	}
	done := make(chan struct{})
	go func() {
		srv.Shutdown()
		srv.WaitForShutdown()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("broker: shutdown: %w", ctx.Err())
	}
}

// Server returns the running nats-server, or nil when not started.
func (b *Broker) Server() *server.Server {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.srv
}

// Connect opens an in-process client connection (no TCP, no TLS) to the
// node. When clients must authenticate it logs in as [InternalUser], which
// may do everything; opts given here come after, so they may override it.
func (b *Broker) Connect(opts ...nats.Option) (*nats.Conn, error) {
	srv := b.Server()
	if srv == nil {
		return nil, errors.New("broker: not started")
	}
	return nats.Connect("", append(b.internalOptions(srv), opts...)...)
}

// internalOptions are the nats.Options of an in-process connection as
// the internal user to srv; [Broker.Connect] uses them.
func (b *Broker) internalOptions(srv *server.Server) []nats.Option {
	opts := []nats.Option{nats.InProcessServer(srv)}
	if b.password != "" {
		opts = append(opts, nats.UserInfo(InternalUser, b.password))
	}
	return opts
}

// ClientURL is the nats:// URL of the client listener, "" when not started.
func (b *Broker) ClientURL() string {
	srv := b.Server()
	if srv == nil {
		return ""
	}
	return srv.ClientURL()
}

// ClusterURL is the nats-route:// URL of the route listener, "" when not
// clustered or not started.
func (b *Broker) ClusterURL() string {
	srv := b.Server()
	if srv == nil {
		return ""
	}
	if a := srv.ClusterAddr(); a != nil {
		return "nats-route://" + a.String()
	}
	return ""
}

// WebSocketURL is the ws:// (or wss://) URL of the NATS WebSocket
// listener, "" when off or not started.
func (b *Broker) WebSocketURL() string {
	srv := b.Server()
	if srv == nil || b.cfg.WebSocketListen == "" {
		return ""
	}
	if p := srv.PortsInfo(b.cfg.ReadyTimeout); p != nil && len(p.WebSocket) > 0 {
		return p.WebSocket[0]
	}
	return ""
}

// MonitorURL is the http:// URL of the monitoring listener, "" when off.
func (b *Broker) MonitorURL() string {
	srv := b.Server()
	if srv == nil {
		return ""
	}
	if a := srv.MonitorAddr(); a != nil {
		return "http://" + a.String()
	}
	return ""
}

func (b *Broker) natsOptions() (*server.Options, error) {
	c := b.cfg
	host, port, err := splitListen(c.NATSListen)
	if err != nil {
		return nil, fmt.Errorf("nats_listen: %w", err)
	}
	name := c.ServerName
	if name == "" {
		hn, _ := os.Hostname()
		name = "arrwcdc-" + hn + "-" + strconv.Itoa(max(port, 0))
		if port < 0 { // a free port: the name must still be unique
			name += "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		}
	}
	opts := &server.Options{
		AuthTimeout: authTimeout.Seconds(),
		ServerName:  name,
		Host:        host,
		Port:        port,
		NoSigs:      true,
		NoLog:       false,
		MaxPayload:  c.MaxPayload,
		JetStream:   true,
		StoreDir:    c.DataDir,
		Debug:       c.Debug,
		Trace:       c.Trace,
	}
	if c.MonitorListen != "" {
		h, p, err := splitListen(c.MonitorListen)
		if err != nil {
			return nil, fmt.Errorf("monitor_listen: %w", err)
		}
		opts.HTTPHost, opts.HTTPPort = h, p
	}
	if c.ClusterListen != "" {
		h, p, err := splitListen(c.ClusterListen)
		if err != nil {
			return nil, fmt.Errorf("cluster_listen: %w", err)
		}
		opts.Cluster.Name, opts.Cluster.Host, opts.Cluster.Port = c.ClusterName, h, p
		for _, r := range c.Routes {
			u, err := url.Parse(strings.TrimSpace(r))
			if err != nil {
				return nil, fmt.Errorf("routes: %w", err)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	if err := b.securityOptions(opts); err != nil {
		return nil, err
	}
	return opts, nil
}

// Addr is a convenience for tests and the CLI: the host:port of a
// nats:// URL.
func Addr(u string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return ""
	}
	if _, _, err := net.SplitHostPort(parsed.Host); err != nil {
		return ""
	}
	return parsed.Host
}
