package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/broker"
	"github.com/arrwdb/arrwcdc/subjects"
)

// Scenarios are the names [Config.Scenario] accepts.
var Scenarios = []string{"publish", "e2e", "ws", "ws-peer", "ws-centrifugo", "replay", "outbox", "conns", "conns-peer", "conns-centrifugo"}

// DefaultEvents is the number of events of each scenario when
// [Config.Events] is 0: enough for a few seconds on a 2-core machine.
var DefaultEvents = map[string]int{
	"publish/sync":  20_000,
	"publish/async": 200_000,
	"publish/core":  500_000,
	"e2e":           100_000,
	"ws":            20_000,
	"ws-peer":       20_000,
	"ws-centrifugo": 20_000,
	"replay":        100_000,
	"outbox":        50_000,
}

// Defaults of the zero fields of [Config].
const (
	DefaultSize      = 300
	DefaultClients   = 10
	DefaultDrain     = 10 * time.Second
	DefaultScenario  = "publish"
	DefaultMode      = "async"
	maxClientsDialed = 64 // WebSocket dials in flight at once
)

// ErrIncomplete is wrapped by the error of [Result.Check] when fewer events
// were delivered than expected.
var ErrIncomplete = errors.New("bench: not every event was delivered")

// Config is one run. The zero value of each field means its default.
type Config struct {
	// Scenario is one of [Scenarios]; "" means "publish".
	Scenario string
	// Mode is sync, async or core (publish and e2e only); "" means async.
	Mode string
	// Events to publish; 0 means [DefaultEvents] of the scenario.
	Events int
	// Size is each event's encoded size in bytes; 0 means 300. An event
	// cannot be smaller than its envelope (about 230 bytes): a smaller
	// size gives the smallest event, and [Result.EventSize] tells.
	Size int
	// Rate is the target publish rate in events/s; 0 means saturate.
	Rate float64
	// Clients of the ws and conns scenarios; 0 means 10.
	Clients int
	// Libraries the events (and clients) are spread over, round robin;
	// 0 means 1.
	Libraries int
	// Duration stops publishing after this long; 0 means no limit.
	Duration time.Duration
	// ClientQueue is the bridge's queue per client in frames (ws,
	// replay); 0 means the bridge's default.
	ClientQueue int
	// Drain is how long to wait for deliveries without any progress before
	// giving up on the missing ones; 0 means 10 s.
	Drain time.Duration
	// NATSURL lists the servers; empty means an embedded broker in a
	// temporary directory (always so for ws-peer and conns-peer, whose
	// broker has its NATS WebSocket listener on).
	NATSURL []string
	// NATSOptions are given to every connection to NATSURL (credentials,
	// TLS), after the bench's own.
	NATSOptions []nats.Option
	// Centrifugo is the centrifugo binary of ws-centrifugo and
	// conns-centrifugo; "" means
	// "centrifugo" on the PATH.
	Centrifugo string
	// Prefix is the subject prefix; "" means "events".
	Prefix string
	// CPUProfile and MemProfile are files for pprof profiles of the
	// measured phase; "" means none.
	CPUProfile, MemProfile string
	// Trace is a file for an execution trace of the measured phase (go
	// tool trace); "" means none.
	Trace string
	// Progress, if set, is updated while the run goes on.
	Progress *Progress
	// ConnsPerProcess is the most client sockets one client process of
	// conns holds; 0 means [DefaultConnsPerProcess].
	ConnsPerProcess int
	// ClientArgs are the arguments of conns's client processes (this
	// binary again, with an environment variable that makes it one: see
	// [ConnsClientRequested]); nil means {"bench"}.
	ClientArgs []string
}

func (c Config) withDefaults() Config {
	if c.Scenario == "" {
		c.Scenario = DefaultScenario
	}
	if c.Mode == "" {
		c.Mode = DefaultMode
	}
	if c.Events == 0 {
		c.Events = DefaultEvents[c.Scenario]
		if c.Scenario == "publish" {
			c.Events = DefaultEvents["publish/"+c.Mode]
		}
	}
	if c.Size == 0 {
		c.Size = DefaultSize
	}
	if c.Clients == 0 {
		c.Clients = DefaultClients
	}
	if c.Libraries == 0 {
		c.Libraries = 1
	}
	if c.Drain == 0 {
		c.Drain = DefaultDrain
	}
	if c.Prefix == "" {
		c.Prefix = subjects.DefaultPrefix
	}
	if c.Progress == nil {
		c.Progress = &Progress{}
	}
	return c
}

// Validate reports what is wrong with c (after defaults).
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if !slices.Contains(Scenarios, c.Scenario) {
		errs = append(errs, fmt.Errorf("bench: scenario %q: want one of %s", c.Scenario, strings.Join(Scenarios, ", ")))
	}
	switch c.Mode {
	case "sync", "async":
	case "core":
		if c.Scenario != "publish" && c.Scenario != "e2e" {
			errs = append(errs, fmt.Errorf("bench: mode core: only with the publish and e2e scenarios"))
		}
	default:
		errs = append(errs, fmt.Errorf("bench: mode %q: want sync, async or core", c.Mode))
	}
	if c.Events < 0 || c.Size < 0 || c.Size > 1<<20 || !(c.Rate >= 0) || c.Clients < 0 || c.Libraries < 0 || c.Duration < 0 || c.Drain < 0 || c.ClientQueue < 0 || c.ConnsPerProcess < 0 {
		errs = append(errs, fmt.Errorf("bench: a count, size, rate or duration out of range"))
	}
	if (c.Scenario == "ws-peer" || c.Scenario == "conns-peer") && len(c.NATSURL) > 0 {
		errs = append(errs, fmt.Errorf("bench: %s runs its own broker with a websocket listener: no NATS URL", c.Scenario))
	}
	if err := subjects.ValidatePrefix(c.Prefix); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Progress counts a run's progress; its methods are safe for concurrent
// use. Done/Total are events in the publish phase and deliveries in the
// wait that follows; Phase names it.
type Progress struct {
	phase       atomic.Value // string
	done, total atomic.Int64
}

// Snapshot returns the phase, the work done and the work to do.
func (p *Progress) Snapshot() (phase string, done, total int64) {
	s, _ := p.phase.Load().(string)
	return s, p.done.Load(), p.total.Load()
}

func (p *Progress) start(phase string, total int64) {
	p.done.Store(0)
	p.total.Store(total)
	p.phase.Store(phase)
}

// Run runs one scenario and returns its result. Errors: a bad Config,
// a broker that cannot be started or reached, or a failure of the
// scenario's setup; lost deliveries are not errors of Run (see
// [Result.Check]). log may be nil.
func Run(ctx context.Context, cfg Config, log *zap.Logger) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = zap.NewNop()
	}
	r := &runner{cfg: cfg, log: log, progress: cfg.Progress, runID: runID()}
	defer r.close()
	res := &Result{
		Scenario: cfg.Scenario, Mode: cfg.Mode, Clients: cfg.Clients, Libraries: cfg.Libraries,
		Rate: cfg.Rate, Started: time.Now().UTC(), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(),
		LoadBefore: LoadAverage(),
	}
	if !strings.HasPrefix(cfg.Scenario, "ws") && !strings.HasPrefix(cfg.Scenario, "conns") {
		res.Clients = 0
	}
	var run func(context.Context, *Result) error
	switch cfg.Scenario {
	case "publish":
		run = r.runPublish
	case "e2e":
		run = r.runE2E
	case "ws":
		run = r.runWS
	case "ws-peer":
		run = r.runWSPeer
	case "ws-centrifugo":
		run = r.runWSCentrifugo
	case "replay":
		run = r.runReplay
	case "outbox":
		run = r.runOutbox
	case "conns", "conns-peer", "conns-centrifugo":
		run = r.runConns
	}
	if err := r.connect(ctx); err != nil {
		return nil, err
	}
	res.Server = r.serverDesc
	if err := run(ctx, res); err != nil {
		return nil, err
	}
	res.LoadAfter = LoadAverage()
	res.finish()
	return res, nil
}

// runner holds what a run started, to be stopped by close in reverse
// order.
type runner struct {
	cfg        Config
	log        *zap.Logger
	progress   *Progress
	runID      string
	serverDesc string

	broker  *broker.Broker // nil with NATSURL
	nc      *nats.Conn     // the publishers' connection
	js      jetstream.JetStream
	closers []func()

	// measured phase
	mem0      runtime.MemStats
	t0        time.Time
	recording []func() // stop the CPU profile and the trace of the measured phase
}

func runID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (r *runner) onClose(f func()) { r.closers = append(r.closers, f) }

func (r *runner) close() {
	r.stopRecording()
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i]()
	}
	r.closers = nil
}

// connect starts the embedded broker (or dials NATSURL) and opens the
// publishers' connection.
func (r *runner) connect(ctx context.Context) error {
	var url string
	if len(r.cfg.NATSURL) == 0 {
		dir, err := tempDir(r)
		if err != nil {
			return err
		}
		bc := broker.Config{NATSListen: "127.0.0.1:0", DataDir: dir, Prefix: r.cfg.Prefix}
		if r.cfg.Scenario == "ws-peer" || r.cfg.Scenario == "conns-peer" {
			bc.WebSocketListen = "127.0.0.1:0"
		}
		b, err := broker.New(bc, r.log.Named("broker"))
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		if err := b.Start(ctx); err != nil {
			return fmt.Errorf("bench: embedded broker: %w", err)
		}
		r.onClose(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = b.Shutdown(sctx)
		})
		r.broker = b
		url = b.ClientURL()
		r.serverDesc = "embedded broker " + url
	} else {
		url = strings.Join(r.cfg.NATSURL, ",")
		r.serverDesc = url
	}
	nc, err := r.dial(url, "arrwcdc-bench-publisher")
	if err != nil {
		return err
	}
	r.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	r.js = js
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := js.Stream(sctx, broker.StreamName); err != nil {
		return fmt.Errorf("bench: stream %s on %s: %w (start the broker with arrwcdc serve or arrwcdc broker)", broker.StreamName, url, err)
	}
	return nil
}

// dial opens a NATS connection that close will drain.
func (r *runner) dial(url, name string, opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectBufSize(64 << 20)}, opts...)
	if len(r.cfg.NATSURL) > 0 {
		opts = append(opts, r.cfg.NATSOptions...)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("bench: connect %s: %w", url, err)
	}
	r.onClose(func() {
		_ = nc.FlushTimeout(2 * time.Second)
		nc.Close()
	})
	return nc, nil
}

// libraries returns the library ids of the run: unique to it, so that runs
// against a shared server do not see each other's events.
func (r *runner) libraries() []string {
	ids := make([]string, r.cfg.Libraries)
	for i := range ids {
		ids[i] = fmt.Sprintf("bench-%s-%d", r.runID, i)
	}
	return ids
}

// begin starts the measured phase: memory statistics and profiles.
func (r *runner) begin() error {
	if err := r.record(r.cfg.CPUProfile, "cpu profile", pprof.StartCPUProfile, pprof.StopCPUProfile); err != nil {
		return err
	}
	if err := r.record(r.cfg.Trace, "trace", trace.Start, trace.Stop); err != nil {
		return err
	}
	runtime.GC()
	runtime.ReadMemStats(&r.mem0)
	r.t0 = time.Now()
	return nil
}

// record starts writing the measured phase into the file path (none if
// path is empty) with start; stopRecording calls stop.
func (r *runner) record(path, what string, start func(io.Writer) error, stop func()) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: %s: %w", what, err)
	}
	if err := start(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("bench: %s: %w", what, err)
	}
	r.recording = append(r.recording, stop)
	r.onClose(func() { _ = f.Close() })
	return nil
}

// stopRecording stops the CPU profile and the trace, if they run.
func (r *runner) stopRecording() {
	for _, stop := range r.recording {
		stop()
	}
	r.recording = nil
}

// end closes the measured phase into res.
func (r *runner) end(res *Result) error {
	r.stopRecording()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	res.Mallocs = m.Mallocs - r.mem0.Mallocs
	res.AllocBytes = m.TotalAlloc - r.mem0.TotalAlloc
	res.GCs = m.NumGC - r.mem0.NumGC
	res.RSSBytes, res.PeakRSSBytes = readRSS()
	if r.cfg.MemProfile != "" {
		f, err := os.Create(r.cfg.MemProfile)
		if err != nil {
			return fmt.Errorf("bench: mem profile: %w", err)
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return fmt.Errorf("bench: mem profile: %w", err)
		}
	}
	return nil
}

// waitFor polls done until it is true, ctx ends, or progress (a counter)
// has not moved for the drain time. It reports whether done became true.
func (r *runner) waitFor(ctx context.Context, progress func() int64, done func() bool) bool {
	last, lastMove := progress(), time.Now()
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for !done() {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
		if p := progress(); p != last {
			last, lastMove = p, time.Now()
		} else if time.Since(lastMove) > r.cfg.Drain {
			return done()
		}
	}
	return true
}
