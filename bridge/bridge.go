package bridge

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/broker"
	"github.com/arrwdb/arrwcdc/publisher"
	"github.com/arrwdb/arrwcdc/subjects"
)

// Errors of [Bridge.Start].
var (
	ErrStarted = errors.New("bridge: already started")
	ErrClosed  = errors.New("bridge: shut down")
)

//go:embed web
var webFiles embed.FS

// Bridge serves statistics and WebSocket delivery of the events on one
// NATS connection. Create it with [New], run it with [Bridge.Start] (or
// mount [Bridge.Handler] yourself), stop it with [Bridge.Shutdown].
type Bridge struct {
	cfg       Config
	nc        *nats.Conn
	js        jetstream.JetStream
	log       *zap.Logger
	id        string // this bridge in cluster statistics
	counters  *counters
	registry  *prometheus.Registry
	handler   http.Handler
	pub       *publisher.Publisher // POST /v1/events
	done      chan struct{}        // closed by Shutdown: writers close their clients
	doneCtx   context.Context      // cancelled with done: a pending ping gives up
	cancel    context.CancelFunc
	stream    streamCache // the stream's state in the statistics
	infoReads infoReads   // stream info requests shared by concurrent callers

	// liveHook, if set (tests), sees each live message of a room first and
	// drops it by returning false.
	liveHook atomic.Pointer[func(*nats.Msg) bool]

	refused refusals

	mu       sync.Mutex
	conns    int            // WebSocket and SSE clients admitted (Config.MaxConnections)
	perAddr  map[string]int // the same by remote host (Config.MaxConnsPerAddress)
	closing  bool
	started  bool
	rooms    map[string]*room
	clients  map[*client]struct{}
	srv      *http.Server
	url      string
	subs     []*nats.Subscription // statistics, the cluster statistics responder, leader advisories
	statusCh chan nats.Status     // reconnects, for the re-sync; nil until Start

	wg           sync.WaitGroup // sockets and the HTTP server
	bg           sync.WaitGroup // the reconnect watcher
	shutdownOnce sync.Once
	shutdownErr  error
}

// New checks cfg and returns a bridge on nc, which the caller keeps
// owning (it closes nc after Shutdown). log nil means no logging.
func New(cfg Config, nc *nats.Conn, log *zap.Logger) (*Bridge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bridge: config: %w", err)
	}
	if nc == nil {
		return nil, errors.New("bridge: nil NATS connection")
	}
	if log == nil {
		log = zap.NewNop()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	cfg = cfg.WithDefaults()
	// Events posted over HTTP get no source unless they carry one.
	pub, err := publisher.New(nc, publisher.WithPrefix(cfg.Prefix), publisher.WithSource(""),
		publisher.WithMaxEventSize(cfg.MaxEventSize), publisher.WithLogger(log.Named("bridge")))
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	doneCtx, cancel := context.WithCancel(context.Background())
	b := &Bridge{
		cfg:      cfg,
		pub:      pub,
		doneCtx:  doneCtx,
		cancel:   cancel,
		nc:       nc,
		js:       js,
		log:      log.Named("bridge"),
		id:       nuid.Next(),
		counters: newCounters(),
		done:     make(chan struct{}),
		rooms:    make(map[string]*room),
		clients:  make(map[*client]struct{}),
		perAddr:  make(map[string]int),
	}
	b.registry = newRegistry(b)
	b.handler = b.routes()
	return b, nil
}

// statsSubject is where bridges of one prefix answer ?scope=cluster.
func (b *Bridge) statsSubject() string { return "arrwcdc.bridge.stats." + b.cfg.Prefix }

// Start subscribes the statistics queue group on live.<prefix>.>, the
// cluster statistics responder and the stream's leader advisories, watches
// the connection for reconnects (both re-sync live delivery), then listens
// on Config.HTTPListen and serves in the background. If it fails it undoes
// what it did. A second call returns [ErrStarted], a call after Shutdown
// [ErrClosed].
func (b *Bridge) Start(ctx context.Context) error {
	b.mu.Lock()
	switch {
	case b.closing:
		b.mu.Unlock()
		return ErrClosed
	case b.started:
		b.mu.Unlock()
		return ErrStarted
	}
	b.started = true
	b.mu.Unlock()

	err := b.start(ctx)
	if err != nil {
		b.unsubscribe()
		b.stopWatching()
	}
	return err
}

func (b *Bridge) start(ctx context.Context) error {
	all := subjects.Live(subjects.All(b.cfg.Prefix))
	statsSub, err := b.nc.QueueSubscribe(all, b.cfg.StatsQueue, b.onStatsMsg)
	if err != nil {
		return fmt.Errorf("bridge: subscribe %s: %w", all, err)
	}
	b.addSub(statsSub)
	replySub, err := b.nc.Subscribe(b.statsSubject(), b.onStatsRequest)
	if err != nil {
		return fmt.Errorf("bridge: subscribe %s: %w", b.statsSubject(), err)
	}
	b.addSub(replySub)
	leaderSub, err := b.nc.Subscribe(leaderAdvisory, func(*nats.Msg) { b.disturbAll(resyncLeader) })
	if err != nil {
		return fmt.Errorf("bridge: subscribe %s: %w", leaderAdvisory, err)
	}
	b.addSub(leaderSub)
	b.watchReconnects()
	fctx, cancel := context.WithTimeout(ctx, b.cfg.WriteTimeout)
	defer cancel()
	if err := b.nc.FlushWithContext(fctx); err != nil {
		return fmt.Errorf("bridge: flush subscriptions: %w", err)
	}

	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", b.cfg.HTTPListen)
	if err != nil {
		return fmt.Errorf("bridge: %w", err)
	}
	srv := &http.Server{
		Handler:           b.handler,
		ReadHeaderTimeout: b.cfg.ReadHeaderTimeout,
		IdleTimeout:       b.cfg.IdleTimeout,
		ErrorLog:          zap.NewStdLog(b.log.Named("http")),
	}
	b.mu.Lock()
	if b.closing { // Shutdown ran meanwhile
		b.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	b.srv = srv
	b.url = "http://" + ln.Addr().String()
	b.wg.Add(1)
	b.mu.Unlock()
	go func() {
		defer b.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.log.Error("http server", zap.Error(err))
		}
	}()
	b.log.Info("bridge listening", zap.String("url", b.URL()), zap.String("prefix", b.cfg.Prefix))
	return nil
}

// leaderAdvisory is published when the EVENTS stream elects a leader.
const leaderAdvisory = "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED." + broker.StreamName

// watchReconnects re-syncs every room after the connection reconnects.
// (A room also sees the reconnect in the first live message after it;
// this covers the rooms to which nothing comes live.)
func (b *Bridge) watchReconnects() {
	ch := b.nc.StatusChanged(nats.CONNECTED)
	b.mu.Lock()
	b.statusCh = ch
	b.mu.Unlock()
	b.bg.Add(1)
	go func() {
		defer b.bg.Done()
		for range ch {
			b.disturbAll(resyncReconnect)
		}
	}()
}

// stopWatching ends watchReconnects and waits for it.
func (b *Bridge) stopWatching() {
	b.mu.Lock()
	ch := b.statusCh
	b.statusCh = nil
	b.mu.Unlock()
	if ch != nil {
		b.nc.RemoveStatusListener(ch)
	}
	b.bg.Wait()
}

func (b *Bridge) addSub(s *nats.Subscription) {
	b.mu.Lock()
	b.subs = append(b.subs, s)
	b.mu.Unlock()
}

func (b *Bridge) unsubscribe() {
	b.mu.Lock()
	subs := b.subs
	b.subs = nil
	b.mu.Unlock()
	for _, s := range subs {
		if err := s.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			b.log.Warn("unsubscribe", zap.String("subject", s.Subject), zap.Error(err))
		}
	}
}

// Handler returns the bridge's HTTP handler (every route), for tests with
// httptest or to mount elsewhere.
func (b *Bridge) Handler() http.Handler { return b.handler }

// URL returns "http://host:port" of the listener once Start succeeded,
// else "".
func (b *Bridge) URL() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.url
}

// Registry returns the bridge's Prometheus registry (served on /metrics).
func (b *Bridge) Registry() *prometheus.Registry { return b.registry }

// Shutdown stops accepting connections and sockets, closes every WebSocket
// client with 1001 (going away) and ends every SSE stream, unsubscribes,
// waits for the acks of events posted over HTTP and for every goroutine
// the bridge started. If ctx ends first, the remaining clients are dropped
// without a close handshake and ctx's error is returned. It is idempotent:
// later calls return the first call's result.
func (b *Bridge) Shutdown(ctx context.Context) error {
	b.shutdownOnce.Do(func() { b.shutdownErr = b.shutdown(ctx) })
	return b.shutdownErr
}

func (b *Bridge) shutdown(ctx context.Context) error {
	b.mu.Lock()
	b.closing = true
	srv := b.srv
	close(b.done) // writers close their clients with StatusGoingAway,
	for cl := range b.clients {
		cl.poke() // including the idle ones, which have no writer running
	}
	b.mu.Unlock()
	b.cancel()

	var errs []error
	if srv != nil {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("bridge: http shutdown: %w", err))
		}
	}
	waited := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(waited)
	}()
	select {
	case <-waited:
	case <-ctx.Done():
		b.mu.Lock()
		for cl := range b.clients {
			if f := cl.closeNow.Load(); f != nil {
				(*f)()
			}
		}
		b.mu.Unlock()
		if srv != nil {
			_ = srv.Close()
		}
		<-waited
		errs = append(errs, fmt.Errorf("bridge: shutdown: %w", ctx.Err()))
	}
	b.unsubscribe()
	b.stopWatching()
	b.infoReads.wait() // its requests end with doneCtx, cancelled above
	if err := b.pub.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("bridge: %w", err))
	}
	b.log.Info("bridge stopped")
	return errors.Join(errs...)
}

// track registers a socket handler with the wait group, unless shutting
// down.
func (b *Bridge) track() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing {
		return false
	}
	b.wg.Add(1)
	return true
}

// addClient registers a running client; closeNow drops its connection
// when Shutdown runs out of time.
func (b *Bridge) addClient(cl *client, closeNow func()) bool {
	cl.closeNow.Store(&closeNow)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing {
		return false
	}
	b.clients[cl] = struct{}{}
	return true
}

// refusals count the requests refused before they were served.
type refusals struct {
	unauthorized atomic.Uint64 // 401: token missing, invalid or expired
	forbidden    atomic.Uint64 // 403: token does not allow it, or origin not allowed
	bridgeLimit  atomic.Uint64 // 503: Config.MaxConnections reached
	addressLimit atomic.Uint64 // 429: Config.MaxConnsPerAddress reached
}

// admit counts a WebSocket or SSE client against the connection limits,
// or answers 503 (this bridge is full) or 429 (its address is) and
// returns false. The caller calls release when the client goes.
func (b *Bridge) admit(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	host := remoteHost(r.RemoteAddr)
	b.mu.Lock()
	switch {
	case b.cfg.MaxConnections > 0 && b.conns >= b.cfg.MaxConnections:
		b.mu.Unlock()
		b.refuse(w, r, http.StatusServiceUnavailable, fmt.Sprintf("connection limit reached (%d clients)", b.cfg.MaxConnections), nil)
		return nil, false
	case b.cfg.MaxConnsPerAddress > 0 && b.perAddr[host] >= b.cfg.MaxConnsPerAddress:
		b.mu.Unlock()
		b.refuse(w, r, http.StatusTooManyRequests, fmt.Sprintf("connection limit per address reached (%d clients)", b.cfg.MaxConnsPerAddress), nil)
		return nil, false
	}
	b.conns++
	b.perAddr[host]++
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		b.conns--
		if b.perAddr[host]--; b.perAddr[host] <= 0 {
			delete(b.perAddr, host)
		}
		b.mu.Unlock()
	}, true
}

func (b *Bridge) removeClient(cl *client) {
	b.mu.Lock()
	delete(b.clients, cl)
	b.mu.Unlock()
}

// routes builds the HTTP API.
func (b *Bridge) routes() http.Handler {
	mux := http.NewServeMux()
	get := func(path string, h http.HandlerFunc) {
		mux.HandleFunc("GET "+path, h)
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed", r.Method))
		})
	}
	get("/v1/events/stats", b.handleStats)
	get("/v1/libraries/{library_id}/ws", b.handleLibraryWS)
	get("/v1/libraries/{library_id}/events", b.handleLibrarySSE)
	get("/v1/events/ws", b.handlePatternWS)
	mux.HandleFunc("POST /v1/events", b.handlePublish)
	mux.HandleFunc("/v1/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed", r.Method))
	})
	get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	get("/readyz", b.handleReady)
	get("/metrics", b.metricsHandler().ServeHTTP)
	web, _ := fs.Sub(webFiles, "web")
	get("/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, web, "index.html")
	})
	mux.Handle("GET /web/", http.FileServerFS(webFiles))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no route %s %s", r.Method, truncate(r.URL.Path)))
	})
	return mux
}

func (b *Bridge) handleReady(w http.ResponseWriter, r *http.Request) {
	if !b.nc.IsConnected() {
		writeError(w, http.StatusServiceUnavailable, "nats: "+b.nc.Status().String())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := b.js.Stream(ctx, broker.StreamName); err != nil {
		writeError(w, http.StatusServiceUnavailable, "stream "+broker.StreamName+": "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// writeJSON answers v as JSON with code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		code, body = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

// writeError answers {"error": msg} with code.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
