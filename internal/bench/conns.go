package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/arrwdb/arrwcdc/subjects"
)

// Defaults of the conns scenario.
const (
	// DefaultConnsPerProcess is the most client sockets one client process
	// holds when [Config.ConnsPerProcess] is 0: under a hard
	// RLIMIT_NOFILE of 20 000, and under the 28 232 ephemeral ports
	// (32768–60999) of one source address.
	DefaultConnsPerProcess = 18_000
	// connsEventsPerLibrary is the events published to each library when
	// [Config.Events] is 0.
	connsEventsPerLibrary = 3
	// fdReserve is the file descriptors the bridge process keeps beyond
	// one per client (broker, NATS connections, store files, listeners).
	fdReserve = 256
	// connsDials is the dials in flight at once in each client process.
	connsDials = 64
)

// ConnsFigures are the conns scenario's own figures: the idle cost of a
// WebSocket connection on the bridge, and how many it held.
type ConnsFigures struct {
	// Requested is --clients; Held the sockets the client processes had
	// open, idle, when the bridge was measured.
	Requested int `json:"requested_clients"`
	Held      int `json:"held_clients"`
	// DialFailures are clients whose dial or connected frame failed.
	DialFailures int64 `json:"dial_failures"`
	// FDLimit is the bridge process's soft RLIMIT_NOFILE after raising it
	// to the hard limit; CappedByFDLimit is set when it, not --clients,
	// decided Held (one descriptor per connection).
	FDLimit         uint64 `json:"fd_limit"`
	CappedByFDLimit bool   `json:"capped_by_fd_limit"`
	// ClientProcesses hold the client sockets, each from its own source
	// address (127.0.0.2, 127.0.0.3, …) to the bridge on 127.0.0.1.
	ClientProcesses int      `json:"client_processes"`
	SourceAddrs     []string `json:"source_addrs"`
	ConnectSeconds  float64  `json:"connect_s"` // dialling every client

	// Server is the process measured: the bench process with the bridge
	// and the embedded broker (conns), the bench process with the
	// embedded broker and its NATS websocket listener (conns-peer), or
	// the centrifugo process (conns-centrifugo). ServerPID is its process
	// id when it is not the bench process, else 0.
	Server    string `json:"server_process"`
	ServerPID int    `json:"server_pid,omitempty"`

	// The server process (in the bench process: with the broker and the
	// publisher; never a client) before the first dial and with every
	// client connected and idle, each read after a GC (centrifugo: one it
	// runs on a /debug/pprof/heap?gc=1 request): VmRSS, the runtime's
	// HeapInuse+StackInuse, and goroutines.
	RSSBefore            uint64  `json:"rss_before"`
	RSSIdle              uint64  `json:"rss_idle"`
	HeapStackBefore      uint64  `json:"heap_stack_before"`
	HeapStackIdle        uint64  `json:"heap_stack_idle"`
	GoroutinesBefore     int     `json:"goroutines_before"`
	GoroutinesIdle       int     `json:"goroutines_idle"`
	IdleBytesPerConn     int64   `json:"idle_bytes_per_conn"`            // VmRSS delta / Held
	IdleHeapStackPerConn int64   `json:"idle_heap_stack_bytes_per_conn"` // HeapInuse+StackInuse delta / Held
	IdleStackPerConn     int64   `json:"idle_stack_bytes_per_conn"`      // StackInuse delta / Held (part of the above)
	GoroutinesPerConn    float64 `json:"goroutines_per_conn"`
	// IdleScavengedPerConn is the VmRSS delta / Held once more, after
	// debug.FreeOSMemory returned the freed pages to the OS: what the
	// connections themselves hold, without the runtime's headroom of
	// garbage from their set-up not yet returned. 0 for centrifugo (no
	// way to make another process return its pages).
	IdleScavengedPerConn int64 `json:"idle_scavenged_bytes_per_conn"`

	// Delivery: every held client should receive each event of its
	// library; Complete counts those that did.
	Complete int64 `json:"complete_clients"`
	Excess   int64 `json:"excess_frames"` // frames beyond the expected (duplicates)
	// ClientRSS is the client processes' VmRSS, summed (not the server's).
	ClientRSS uint64 `json:"client_rss"`
}

// memSample is the server process's memory at one moment.
type memSample struct {
	rss, heapStack, stack uint64
	goroutines            int
}

// sampleMem reads this process's memory after a GC.
func sampleMem() (memSample, error) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	rss, _ := readRSS()
	return memSample{rss: rss, heapStack: m.HeapInuse + m.StackInuse, stack: m.StackInuse, goroutines: runtime.NumGoroutine()}, nil
}

// scavengedRSS is VmRSS after debug.FreeOSMemory.
func scavengedRSS() uint64 {
	debug.FreeOSMemory()
	rss, _ := readRSS()
	return rss
}

// connsServer is the server a conns scenario measures: what its clients
// dial and subscribe to, and how to weigh its process.
type connsServer struct {
	kind    string   // the clients' protocol: [connsJob.Kind]
	url     string   // [connsJob.URL]
	targets []string // per library, [connsJob.Libs]
	desc    string   // the process measured, for the figures
	pid     int      // its process id; 0: this process

	mem        func() (memSample, error) // after a GC
	scavenged  func() uint64             // VmRSS with freed pages returned; nil: cannot
	goroutines func() int                // for settle
	openFDs    func() int
}

// inProcess is a server running in this process (the bridge, the
// embedded broker).
func inProcess(kind, url string, targets []string, desc string) *connsServer {
	return &connsServer{kind: kind, url: url, targets: targets, desc: desc,
		mem: sampleMem, scavenged: scavengedRSS, goroutines: runtime.NumGoroutine, openFDs: func() int { return openFDsOf("self") }}
}

// startConnsServer starts the server of the run's conns scenario: the
// bridge (conns), nothing more than the embedded broker's NATS websocket
// listener (conns-peer), or centrifugo fed from the live subjects
// (conns-centrifugo).
func (r *runner) startConnsServer(ctx context.Context, libs []string) (*connsServer, error) {
	switch r.cfg.Scenario {
	case "conns-peer":
		ws := r.broker.WebSocketURL()
		if ws == "" {
			return nil, errors.New("bench: the embedded broker has no websocket listener")
		}
		subjs := make([]string, len(libs))
		for i, lib := range libs {
			subj, err := subjects.Library(r.cfg.Prefix, lib)
			if err != nil {
				return nil, err
			}
			subjs[i] = subjects.Live(subj) // what the bridge subscribes to
		}
		return inProcess(connsNATS, ws, subjs, "bench process: embedded broker with its NATS websocket listener "+ws+", no bridge"), nil
	case "conns-centrifugo":
		return r.startConnsCentrifugo(ctx, libs)
	}
	b, err := r.startBridge(ctx)
	if err != nil {
		return nil, err
	}
	url := "ws" + strings.TrimPrefix(b.URL(), "http") + "/v1/libraries/"
	return inProcess(connsBridge, url, libs, "bench process: bridge "+b.URL()+" and the embedded broker"), nil
}

// connsProc is one client process.
type connsProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	source string
	count  int
	done   chan struct{} // its stdout ended

	mu   sync.Mutex
	last connsStatus
	err  error // a bad status line
}

func (p *connsProc) status() connsStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

func (p *connsProc) exited() bool { return isClosed(p.done) }

// runConns: idle WebSocket connections on one server: the bridge (conns),
// nats-server's own websocket listener (conns-peer) or Centrifugo
// (conns-centrifugo); see [connsServer]. The bridge and the broker run in
// this process (as in ws), centrifugo in its own; the clients run in
// client processes (this binary again, see [ConnsClientRequested]), so
// that their memory is not counted as the server's. The server's memory
// is read before the first dial and with every client connected and
// idle; then events are published to every library (through JetStream and
// its live republish, as in ws) and each client's events counted.
func (r *runner) runConns(ctx context.Context, res *Result) error {
	fig := &ConnsFigures{Requested: r.cfg.Clients}
	res.Conns = fig
	nofile, err := raiseNoFile()
	if err != nil {
		res.Notes = append(res.Notes, "raising RLIMIT_NOFILE: "+err.Error())
	}
	fig.FDLimit = nofile
	libs := r.libraries()
	srv, err := r.startConnsServer(ctx, libs)
	if err != nil {
		return err
	}
	fig.Server, fig.ServerPID = srv.desc, srv.pid
	if srv.scavenged == nil {
		res.Notes = append(res.Notes, "the server is another process: no figure with its freed pages returned (debug.FreeOSMemory is only for this one)")
	}

	n := r.cfg.Clients
	if nofile > 0 {
		if room := int(nofile) - srv.openFDs() - fdReserve; n > room {
			n = max(room, 0)
			fig.CappedByFDLimit = true
			res.Notes = append(res.Notes, fmt.Sprintf(
				"CAPPED by the server process's file descriptor limit (RLIMIT_NOFILE %d, one per connection): %d of %d clients; "+
					"run with ulimit -n >= %d for all of them", nofile, n, r.cfg.Clients, r.cfg.Clients+srv.openFDs()+fdReserve))
		}
	}
	if n == 0 {
		return errors.New("bench: conns: no room for a single client under RLIMIT_NOFILE")
	}
	perProc := r.cfg.ConnsPerProcess
	if perProc <= 0 {
		perProc = DefaultConnsPerProcess
	}
	nproc := (n + perProc - 1) / perProc
	if nproc > 253 {
		return fmt.Errorf("bench: conns: %d client processes need more source addresses than 127.0.0.2–127.0.0.254", nproc)
	}

	memProfile := r.cfg.MemProfile != "" && srv.pid == 0
	if memProfile {
		// Sample the connections' allocations finely (the default, one
		// per 512 KiB, sees a handful of a 2 KiB structure's thousands).
		old := runtime.MemProfileRate
		runtime.MemProfileRate = 512
		defer func() { runtime.MemProfileRate = old }()
	}
	before, err := srv.mem()
	if err != nil {
		return err
	}
	var rssScavengedBefore uint64
	if srv.scavenged != nil {
		rssScavengedBefore = srv.scavenged()
	}
	fig.RSSBefore, fig.HeapStackBefore, fig.GoroutinesBefore = before.rss, before.heapStack, before.goroutines

	// Start the client processes and let them dial.
	cctx, cancel := context.WithCancel(ctx)
	var procs []*connsProc
	stopProcs := func() {
		for _, p := range procs {
			_ = p.stdin.Close()
		}
		for _, p := range procs {
			_ = p.cmd.Wait()
		}
		procs = nil
		cancel()
	}
	defer stopProcs()
	r.progress.start("connecting clients", int64(n))
	t0 := time.Now()
	for i := range nproc {
		first := i * n / nproc
		job := connsJob{Kind: srv.kind, URL: srv.url, Libs: srv.targets, First: first, Count: (i+1)*n/nproc - first,
			Source: fmt.Sprintf("127.0.0.%d", 2+i), Dials: connsDials}
		p, err := r.startClientProc(cctx, job)
		if err != nil {
			return err
		}
		procs = append(procs, p)
		fig.SourceAddrs = append(fig.SourceAddrs, job.Source)
	}
	fig.ClientProcesses = len(procs)
	sum := func() (s connsStatus) {
		for _, p := range procs {
			st := p.status()
			s.Connected += st.Connected
			s.Failed += st.Failed
			s.Frames += st.Frames
			s.Complete += st.Complete
			s.Excess += st.Excess
			s.Closed += st.Closed
			s.RSS += st.RSS
			if s.DialError == "" {
				s.DialError = st.DialError
			}
			if s.CloseReason == "" {
				s.CloseReason = st.CloseReason
			}
		}
		return s
	}
	if err := r.waitProcs(ctx, procs, func() bool {
		s := sum()
		r.progress.done.Store(s.Connected)
		return s.Connected+s.Failed >= int64(n)
	}); err != nil {
		return err
	}
	fig.ConnectSeconds = time.Since(t0).Round(time.Millisecond).Seconds()
	s := sum()
	fig.Held, fig.DialFailures = int(s.Connected), s.Failed
	if s.Failed > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d clients failed to connect, the first with: %s", s.Failed, s.DialError))
	}
	if fig.Held == 0 {
		return fmt.Errorf("bench: conns: no client connected: %s", s.DialError)
	}

	// Idle: let the connection set-up settle, then measure.
	r.progress.start("idle", 0)
	settle(ctx, srv.goroutines)
	idle, err := srv.mem()
	if err != nil {
		return err
	}
	fig.RSSIdle, fig.HeapStackIdle, fig.GoroutinesIdle = idle.rss, idle.heapStack, idle.goroutines
	fig.IdleBytesPerConn = (int64(idle.rss) - int64(before.rss)) / int64(fig.Held)
	fig.IdleHeapStackPerConn = (int64(idle.heapStack) - int64(before.heapStack)) / int64(fig.Held)
	fig.IdleStackPerConn = (int64(idle.stack) - int64(before.stack)) / int64(fig.Held)
	fig.GoroutinesPerConn = float64(idle.goroutines-before.goroutines) / float64(fig.Held)
	if srv.scavenged != nil {
		fig.IdleScavengedPerConn = (int64(srv.scavenged()) - int64(rssScavengedBefore)) / int64(fig.Held)
	}
	if memProfile {
		if err := writeHeapProfile(r.cfg.MemProfile); err != nil {
			return err
		}
	}

	// Every client receives each event of its library.
	events := r.cfg.Events
	if events == 0 {
		events = connsEventsPerLibrary * len(libs)
	}
	p, err := r.publishMeasured(ctx, res, libs, "async", events)
	if err != nil {
		return err
	}
	expect, _ := json.Marshal(p.perLib)
	for _, pr := range procs {
		if _, err := fmt.Fprintf(pr.stdin, "expect %s\n", expect); err != nil {
			return fmt.Errorf("bench: conns: client process: %w", err)
		}
	}
	var want int64
	for i := range fig.Held { // client i watches library i mod len(libs), as in the jobs
		want += p.perLib[i%len(libs)]
	}
	r.progress.start("delivering", want)
	r.waitFor(ctx, func() int64 {
		f := sum().Frames
		r.progress.done.Store(f)
		return f
	}, func() bool { return sum().Complete >= int64(fig.Held) })
	// r.end reads the memory after the publish, in the run's usual
	// figures; the mem profile was the heap at idle.
	memProfileFile := r.cfg.MemProfile
	r.cfg.MemProfile = ""
	err = r.end(res)
	r.cfg.MemProfile = memProfileFile
	if err != nil {
		return err
	}
	res.elapsed = time.Since(r.t0)
	s = sum()
	fig.Complete, fig.Excess, fig.ClientRSS = s.Complete, s.Excess, s.RSS
	stopProcs()

	res.Events, res.PublishErrors = p.acked, p.errors
	res.addNote(p.note())
	res.Expected = want
	res.Delivered = s.Frames - s.Excess
	res.Disconnects = s.Closed
	res.bytes = res.Delivered * int64(res.EventSize)
	if s.Closed > 0 {
		res.Notes = append(res.Notes, "closed by the server: "+s.CloseReason)
	}
	if s.Excess > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d frames more than published (duplicates)", s.Excess))
	}
	for i := fig.Held; i < n; i++ { // clients that failed to connect count as undelivered
		res.Expected += p.perLib[i%len(libs)]
	}
	return nil
}

// startClientProc starts one client process (this binary with
// connsClientEnv set and cfg.ClientArgs) on job. It dies with ctx, and by
// itself when its stdin closes (this process ended).
func (r *runner) startClientProc(ctx context.Context, job connsJob) (*connsProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bench: conns: %w", err)
	}
	args := r.cfg.ClientArgs
	if args == nil {
		args = []string{"bench"}
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(os.Environ(), connsClientEnv+"=1")
	cmd.Stderr = os.Stderr
	cmd.WaitDelay = 10 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("bench: conns: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("bench: conns: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: conns: client process: %w", err)
	}
	p := &connsProc{cmd: cmd, stdin: stdin, source: job.Source, count: job.Count, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var st connsStatus
			err := json.Unmarshal(sc.Bytes(), &st)
			p.mu.Lock()
			if err != nil {
				if p.err == nil {
					p.err = fmt.Errorf("status line %.200q: %w", sc.Text(), err)
				}
			} else {
				p.last = st
			}
			p.mu.Unlock()
		}
	}()
	line, _ := json.Marshal(job)
	if _, err := stdin.Write(append(line, '\n')); err != nil {
		return nil, fmt.Errorf("bench: conns: client process: %w", err)
	}
	return p, nil
}

// waitProcs polls until done, or fails when a client process exits or
// ctx ends.
func (r *runner) waitProcs(ctx context.Context, procs []*connsProc, done func() bool) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !done() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		for _, p := range procs {
			p.mu.Lock()
			err := p.err
			p.mu.Unlock()
			if err != nil {
				return fmt.Errorf("bench: conns: client process %s: %w", p.source, err)
			}
			if p.exited() && !done() {
				return fmt.Errorf("bench: conns: client process %s exited early (%v)", p.source, p.cmd.Wait())
			}
		}
	}
	return nil
}

// settle waits for the goroutine count (of the server process) to stay put
// for half a second (the last connections' set-up ending), 10 s at most.
func settle(ctx context.Context, goroutines func() int) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	deadline := time.Now().Add(10 * time.Second)
	last, same := goroutines(), 0
	for same < 5 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if g := goroutines(); g == last {
			same++
		} else {
			last, same = g, 0
		}
	}
}

// writeHeapProfile writes the heap profile (in-use and allocated) to file.
func writeHeapProfile(file string) error {
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("bench: mem profile: %w", err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		return fmt.Errorf("bench: mem profile: %w", err)
	}
	return f.Close()
}

// openFDsOf counts the open file descriptors of a process ("self" or a
// pid; 0 where /proc is missing).
func openFDsOf(proc string) int {
	ents, err := os.ReadDir("/proc/" + proc + "/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}

// startConnsCentrifugo runs centrifugo with its debug endpoints on (the
// bench reads its memory statistics there, after a GC they request) and
// the forwarder of ws-centrifugo, which publishes every event of the live
// subjects to the channel of its library.
func (r *runner) startConnsCentrifugo(ctx context.Context, libs []string) (*connsServer, error) {
	path, err := r.centrifugoPath()
	if err != nil {
		return nil, err
	}
	base, pid, err := r.startCentrifugo(ctx, path, true)
	if err != nil {
		return nil, err
	}
	stop, err := r.forwardToCentrifugo(ctx, base, libs)
	if err != nil {
		return nil, err
	}
	r.onClose(stop) // before centrifugo stops: closers run in reverse
	proc := strconv.Itoa(pid)
	hc := &http.Client{Timeout: 30 * time.Second}
	r.onClose(hc.CloseIdleConnections)
	return &connsServer{kind: connsCentrifugo, url: "ws" + strings.TrimPrefix(base, "http") + "/connection/websocket",
		targets: libs, desc: fmt.Sprintf("centrifugo process %d, %s (%s)", pid, base, path), pid: pid,
		mem: func() (memSample, error) { return centrifugoMem(hc, base, proc) },
		goroutines: func() int {
			g, _ := centrifugoGoroutines(hc, base)
			return g
		},
		openFDs: func() int { return openFDsOf(proc) },
	}, nil
}

// centrifugoMem reads the memory of the centrifugo process proc: its
// heap profile with gc=1 makes it run a GC and ends with its
// runtime.MemStats (HeapInuse, Stack = StackInuse / StackSys); VmRSS is
// read from /proc after that GC.
func centrifugoMem(hc *http.Client, base, proc string) (memSample, error) {
	prof, err := httpGet(hc, base+"/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		return memSample{}, fmt.Errorf("bench: centrifugo heap profile: %w", err)
	}
	var m memSample
	var heap uint64
	for line := range strings.Lines(prof) {
		if v, ok := strings.CutPrefix(line, "# HeapInuse = "); ok {
			heap, _ = strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
		if v, ok := strings.CutPrefix(line, "# Stack = "); ok {
			inuse, _, _ := strings.Cut(v, " ")
			m.stack, _ = strconv.ParseUint(inuse, 10, 64)
		}
	}
	if heap == 0 {
		return memSample{}, errors.New("bench: centrifugo heap profile without runtime.MemStats")
	}
	m.heapStack = heap + m.stack
	status, err := os.ReadFile("/proc/" + proc + "/status")
	if err != nil {
		return memSample{}, fmt.Errorf("bench: centrifugo: %w", err)
	}
	m.rss, _ = parseStatus(status)
	if m.goroutines, err = centrifugoGoroutines(hc, base); err != nil {
		return memSample{}, err
	}
	return m, nil
}

// centrifugoGoroutines reads the goroutine count of centrifugo's goroutine
// profile ("goroutine profile: total N").
func centrifugoGoroutines(hc *http.Client, base string) (int, error) {
	prof, err := httpGet(hc, base+"/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0, fmt.Errorf("bench: centrifugo goroutine profile: %w", err)
	}
	first, _, _ := strings.Cut(prof, "\n")
	v, ok := strings.CutPrefix(first, "goroutine profile: total ")
	n, err := strconv.Atoi(v)
	if !ok || err != nil {
		return 0, fmt.Errorf("bench: centrifugo goroutine profile starts %.100q", first)
	}
	return n, nil
}

// httpGet returns the body of a 200 answer to GET url.
func httpGet(hc *http.Client, url string) (string, error) {
	resp, err := hc.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), nil
}
