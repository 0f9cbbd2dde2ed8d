// Command compare is `make bench-compare`: it measures arrwcdc against raw
// NATS on this machine in one run and prints the ratios of issue 7's
// table. It starts one embedded broker on 127.0.0.1 (a free port, a
// temporary directory) and runs, against it, `nats bench` (natscli v0.5.0)
// and `arrwcdc bench --json` with the same message size, alternating them,
// each pair -runs times; the figure of each side is the median of its runs.
// The WebSocket fan-out pairs (bridge against nats-server's own websocket
// listener) run each in its own `arrwcdc bench` process with an embedded
// broker, so both have the same layout. Every load stays on 127.0.0.1 and is
// bounded in count and time.
//
//	go run ./internal/bench/compare -arrwcdc bin/arrwcdc -nats .tools/bin/nats
//
// The idle-memory pair (-only conns) runs `arrwcdc bench --scenario conns`
// and `--scenario conns-peer` with 2000 idle clients each: the memory per
// idle WebSocket connection of the bridge and of nats-server's own
// websocket listener, both in the bench process.
//
// With -peers it compares the bridge's WebSocket fan-out with nats-server's
// websocket listener and Centrifugo (make bench-peers), at 100 and 1000
// clients, and their idle memory per connection at 2000. With -curves it prints the scaling curves instead: throughput and p99 of
// the WebSocket fan-out at 1, 10, 100 and 1000 clients, and of publish →
// subscriber at 1, 100 and 10 000 libraries.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/arrwdb/arrwcdc/broker"
	"github.com/arrwdb/arrwcdc/internal/bench"
)

type options struct {
	arrwcdc, nats, centrifugo string
	runs, size                int
	quick, curves, peers      bool
	timeout                   time.Duration
	only                      map[string]bool // pair keys to run; empty: all
}

// pairKeys are the pairs -only selects from, in the order they run.
var pairKeys = []string{"async", "sync", "e2e", "ws", "latency", "replay", "outbox", "conns"}

// selected reports whether the pair key is selected by -only.
func (o options) selected(key string) bool { return len(o.only) == 0 || o.only[key] }

// parseOnly parses -only: a comma-separated subset of pairKeys.
func parseOnly(s string) (map[string]bool, error) {
	if s == "" {
		return nil, nil
	}
	m := map[string]bool{}
	for _, k := range strings.Split(s, ",") {
		if !slices.Contains(pairKeys, k) {
			return nil, fmt.Errorf("-only: unknown pair %q (pairs: %s)", k, strings.Join(pairKeys, ","))
		}
		m[k] = true
	}
	return m, nil
}

func main() {
	var o options
	flag.StringVar(&o.arrwcdc, "arrwcdc", "bin/arrwcdc", "the arrwcdc binary")
	flag.StringVar(&o.nats, "nats", ".tools/bin/nats", "the nats CLI (natscli v0.5.0)")
	flag.IntVar(&o.runs, "runs", 3, "runs of each pair; each side's figure is the median")
	flag.IntVar(&o.size, "size", 300, "event and message size in bytes")
	flag.BoolVar(&o.quick, "quick", false, "tiny counts, to check the harness (figures meaningless)")
	flag.BoolVar(&o.curves, "curves", false, "print the scaling curves instead of the ratios")
	flag.BoolVar(&o.peers, "peers", false, "compare the bridge's WebSocket fan-out with nats-server's and Centrifugo's instead")
	flag.StringVar(&o.centrifugo, "centrifugo", ".tools/bin/centrifugo", "the centrifugo binary (-peers)")
	flag.DurationVar(&o.timeout, "timeout", 3*time.Minute, "bound of each measuring process")
	only := flag.String("only", "", "run only these pairs, comma-separated: "+strings.Join(pairKeys, ","))
	flag.Parse()
	var err error
	if o.only, err = parseOnly(*only); err != nil {
		fmt.Fprintln(os.Stderr, "bench-compare:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch {
	case o.curves:
		err = curves(ctx, o, os.Stdout)
	case o.peers:
		err = peers(ctx, o, os.Stdout)
	default:
		err = compare(ctx, o, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-compare:", err)
		os.Exit(1)
	}
}

// counts are the sizes of the loads.
type counts struct {
	async, sync, core, ws, wsClients, latRate, latEvents, replay, outbox, idleClients int
}

func (o options) counts() counts {
	if o.quick {
		return counts{async: 2000, sync: 300, core: 5000, ws: 200, wsClients: 10, latRate: 500, latEvents: 200, replay: 2000, outbox: 1000, idleClients: 50}
	}
	return counts{async: 200_000, sync: 20_000, core: 200_000, ws: 5_000, wsClients: 100, latRate: 1000, latEvents: 5000, replay: 100_000, outbox: 50_000, idleClients: 2000}
}

// idleTarget is issue 7's bound on the bridge's idle memory per WebSocket
// connection: 16 KB, in bytes (decimal, the stricter reading).
const idleTarget = 16_000

// idleNote explains the idle-memory rows under the table.
const idleNote = "Idle memory rows: (VmRSS with the clients idle − before them) / connections of the server process (the bench process: " +
	"broker + bridge, or broker + its websocket listener), read after runtime.GC(); the headline keeps the GC's freed-but-unreturned pages, " +
	"the \"pages returned\" row is read after debug.FreeOSMemory; ratio = peer / arrwcdc (above 1 means the bridge holds less)."

// idleRun runs a conns scenario (conns, conns-peer, conns-centrifugo)
// with n clients and adds its idle VmRSS per connection, after GC and
// with freed pages returned, to gc and returned; it reports whether every
// client got every event.
func idleRun(ctx context.Context, o options, scenario string, n int, gc, returned *side) bool {
	_, res, err := ours(ctx, o, "", []string{"--scenario", scenario, "--clients", itoa(n), "--json", "--centrifugo", o.centrifugo})
	if res == nil || res.Conns == nil {
		gc.add(0, res, err)
		return false
	}
	gc.add(float64(res.Conns.IdleBytesPerConn), res, err)
	if res.Conns.ServerPID == 0 {
		returned.add(float64(res.Conns.IdleScavengedPerConn), nil, nil)
	}
	return res.Complete()
}

// side is one measured figure: the runs' values and, for arrwcdc, their
// results.
type side struct {
	label   string
	values  []float64
	results []*bench.Result
	errs    []string
	// cpu is the embedded broker's CPU time per event of each run, in µs
	// (addMeasured).
	cpu []float64
}

// addMeasured runs one load of n events with f, adds its figure, and the
// embedded broker's CPU time over it per event: this process's CPU time,
// since the loads run in other processes.
func (s *side) addMeasured(n int, f func() (float64, *bench.Result, error)) {
	t0 := processCPU()
	v, res, err := f()
	if d := processCPU() - t0; d > 0 && v > 0 && n > 0 {
		s.cpu = append(s.cpu, float64(d.Nanoseconds())/1e3/float64(n))
	}
	s.add(v, res, err)
}

func (s *side) add(v float64, res *bench.Result, err error) {
	if err != nil {
		s.errs = append(s.errs, err.Error())
	}
	if v > 0 {
		s.values = append(s.values, v)
	}
	if res != nil {
		s.results = append(s.results, res)
	}
}

func (s *side) median() float64 { return median(s.values) }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// row is one line of the ratio table.
type row struct {
	key      string // the -only pair it belongs to
	name     string
	ours     *side
	peer     *side
	unit     string
	target   float64 // minimum ratio
	max      float64 // an absolute bound on ours, in unit (lower is better); 0: none
	inverse  bool    // lower is better (latency, memory): ratio = peer / ours
	complete bool
	note     string // printed once under the table when the row is
}

func compare(ctx context.Context, o options, w io.Writer) error {
	if err := checkTools(o); err != nil {
		return err
	}
	c := o.counts()
	loadBefore := bench.LoadAverage()
	start := time.Now()

	dir, err := os.MkdirTemp("", "arrwcdc-bench-compare-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b, err := broker.New(broker.Config{NATSListen: "127.0.0.1:0", DataDir: dir}, nil)
	if err != nil {
		return err
	}
	if err := b.Start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Shutdown(sctx)
	}()
	url := b.ClientURL()
	size := strconv.Itoa(o.size)
	fmt.Fprintf(os.Stderr, "bench-compare: broker %s, %d runs of each pair\n", url, o.runs)

	var (
		asyncOurs    = &side{label: "arrwcdc bench publish --mode async"}
		asyncPeer    = &side{label: "nats bench js pub async"}
		syncOurs     = &side{label: "arrwcdc bench publish --mode sync"}
		syncPeer     = &side{label: "nats bench js pub sync"}
		e2eOurs      = &side{label: "arrwcdc bench e2e --mode core"}
		e2eAsync     = &side{label: "arrwcdc bench e2e --mode async"}
		e2ePeer      = &side{label: "nats bench pub + sub"}
		syncPeerH    = &side{label: "nats bench js pub sync --dedup -H (arrwcdc's headers)"}
		asyncPeerH   = &side{label: "nats bench js pub async --dedup -H (arrwcdc's headers)"}
		asyncPeerE   = &side{label: "nats bench js pub async --dedup -H into a stream configured as EVENTS"}
		syncPeerE    = &side{label: "nats bench js pub sync --dedup -H into a stream configured as EVENTS"}
		e2ePeerH     = &side{label: "nats bench pub + sub -H (arrwcdc's headers)"}
		wsOurs       = &side{label: "arrwcdc bench ws"}
		wsPeer       = &side{label: "arrwcdc bench ws-peer"}
		latOurs50    = &side{label: "bridge p50"}
		latPeer50    = &side{label: "nats ws p50"}
		latOurs99    = &side{label: "bridge p99"}
		latPeer99    = &side{label: "nats ws p99"}
		replayOurs   = &side{label: "arrwcdc bench replay"}
		replayPeer   = &side{label: "nats bench js ordered"}
		outboxOurs   = &side{label: "arrwcdc bench outbox"}
		idleOurs     = &side{label: "arrwcdc bench conns"}
		idlePeer     = &side{label: "arrwcdc bench conns-peer"}
		idleOursRet  = &side{label: "arrwcdc bench conns, pages returned"}
		idlePeerRet  = &side{label: "arrwcdc bench conns-peer, pages returned"}
		wsComplete   = true
		latComplete  = true
		idleComplete = true
	)
	ext := []string{"--nats-url", url, "--size", size, "--json"}
	embedded := []string{"--size", size, "--json"}
	step := func(what string) { fmt.Fprintf(os.Stderr, "bench-compare: %s\n", what) }
	// jsPub is `nats bench js pub <mode>` of n messages on bench.<name>
	// into a stream of its own, bench<name>, made and purged for it.
	jsPub := func(mode, name string, n int, flags ...string) func() (float64, *bench.Result, error) {
		return func() (float64, *bench.Result, error) {
			return natsBench(ctx, o, url, append([]string{"js", "pub", mode, "bench." + name, "--stream", "bench" + name,
				"--create", "--purge", "--msgs", itoa(n), "--size", size}, flags...)...)
		}
	}
	// publishLoads runs, after the plain peer, the same publish load
	// carrying what every arrwcdc message carries (a Nats-Msg-Id the
	// stream tracks, --dedup, and the other six headers), then that load
	// into a stream configured as EVENTS is (RePublish of every stored
	// message to live.<subject> included), then arrwcdc's.
	publishLoads := func(mode string, n int, withHeaders, likeEvents, arrwcdc *side) {
		headers := append([]string{"--dedup"}, headerArgs(false)...)
		withHeaders.addMeasured(n, jsPub(mode, mode+"h", n, headers...))
		likeEvents.addMeasured(n, func() (float64, *bench.Result, error) {
			return natsBenchLikeEvents(ctx, o, url, "bench"+mode+"e", mode, append([]string{"--msgs", itoa(n), "--size", size}, headerArgs(false)...)...)
		})
		arrwcdc.addMeasured(n, func() (float64, *bench.Result, error) {
			return ours(ctx, o, "events_per_s", append([]string{"--scenario", "publish", "--mode", mode, "--events", itoa(n)}, ext...))
		})
	}
	for run := 1; run <= o.runs; run++ {
		if o.selected("async") || o.selected("outbox") { // the async peer is the outbox's yardstick too
			step(fmt.Sprintf("run %d/%d: JetStream async publish", run, o.runs))
			asyncPeer.addMeasured(c.async, jsPub("async", "async", c.async))
		}
		if o.selected("async") {
			publishLoads("async", c.async, asyncPeerH, asyncPeerE, asyncOurs)
		}
		if o.selected("sync") {
			step(fmt.Sprintf("run %d/%d: JetStream sync publish", run, o.runs))
			syncPeer.addMeasured(c.sync, jsPub("sync", "sync", c.sync))
			publishLoads("sync", c.sync, syncPeerH, syncPeerE, syncOurs)
		}

		if o.selected("e2e") {
			step(fmt.Sprintf("run %d/%d: publisher → subscriber", run, o.runs))
			e2ePeer.add(natsPubSub(ctx, o, url, c.core, size))
			e2ePeerH.add(natsPubSub(ctx, o, url, c.core, size, headerArgs(true)...))
			// A prefix outside the EVENTS stream: core messages that nothing
			// stores, the flow of nats bench pub/sub.
			e2eOurs.add(ours(ctx, o, "events_per_s", append([]string{"--scenario", "e2e", "--mode", "core", "--prefix", "corebench", "--events", itoa(c.core)}, ext...)))
			e2eAsync.add(ours(ctx, o, "events_per_s", append([]string{"--scenario", "e2e", "--mode", "async", "--events", itoa(c.core)}, ext...)))
		}

		if o.selected("ws") {
			step(fmt.Sprintf("run %d/%d: WebSocket fan-out, %d clients, saturated", run, o.runs, c.wsClients))
			v, res, err := ours(ctx, o, "deliveries_per_s", append([]string{"--scenario", "ws", "--clients", itoa(c.wsClients), "--events", itoa(c.ws)}, embedded...))
			wsOurs.add(v, res, err)
			wsComplete = wsComplete && res != nil && res.Complete()
			v, res, err = ours(ctx, o, "deliveries_per_s", append([]string{"--scenario", "ws-peer", "--clients", itoa(c.wsClients), "--events", itoa(c.ws)}, embedded...))
			wsPeer.add(v, res, err)
		}

		if o.selected("latency") {
			step(fmt.Sprintf("run %d/%d: WebSocket latency, %d ev/s × %d clients", run, o.runs, c.latRate, c.wsClients))
			for _, sc := range []string{"ws", "ws-peer"} {
				_, res, err := ours(ctx, o, "", append([]string{"--scenario", sc, "--clients", itoa(c.wsClients), "--rate", itoa(c.latRate), "--events", itoa(c.latEvents)}, embedded...))
				p50, p99 := latOurs50, latOurs99
				if sc == "ws-peer" {
					p50, p99 = latPeer50, latPeer99
				} else {
					latComplete = latComplete && res != nil && res.Complete()
				}
				if res != nil && res.Latency != nil {
					p50.add(res.Latency.P50, nil, err)
					p99.add(res.Latency.P99, nil, nil)
				} else {
					p50.add(0, nil, err)
				}
			}
		}

		if o.selected("replay") {
			step(fmt.Sprintf("run %d/%d: replay of %d stored events", run, o.runs, c.replay))
			replayOurs.add(ours(ctx, o, "events_per_s", append([]string{"--scenario", "replay", "--events", itoa(c.replay)}, ext...)))
			replayPeer.add(natsBench(ctx, o, url, "js", "ordered", "--stream", broker.StreamName, "--msgs", itoa(c.replay)))
		}

		if o.selected("outbox") {
			step(fmt.Sprintf("run %d/%d: outbox drain", run, o.runs))
			outboxOurs.add(ours(ctx, o, "events_per_s", append([]string{"--scenario", "outbox", "--events", itoa(c.outbox)}, ext...)))
		}

		if o.selected("conns") {
			step(fmt.Sprintf("run %d/%d: idle memory, %d WebSocket connections", run, o.runs, c.idleClients))
			idleComplete = idleRun(ctx, o, "conns", c.idleClients, idleOurs, idleOursRet) && idleComplete
			idleComplete = idleRun(ctx, o, "conns-peer", c.idleClients, idlePeer, idlePeerRet) && idleComplete
		}
	}

	rows := []row{
		{key: "async", name: "PublishAsync vs nats bench js pub async", ours: asyncOurs, peer: asyncPeer, unit: "ev/s", target: 0.8, complete: true},
		{key: "async", name: "  same, peer with arrwcdc's 7 headers and dedup", ours: asyncOurs, peer: asyncPeerH, unit: "ev/s", complete: true},
		{key: "async", name: "  same, and into a stream configured as EVENTS (RePublish)", ours: asyncOurs, peer: asyncPeerE, unit: "ev/s", complete: true},
		{key: "sync", name: "Publish (sync) vs nats bench js pub sync", ours: syncOurs, peer: syncPeer, unit: "ev/s", target: 0.9, complete: true},
		{key: "sync", name: "  same, peer with arrwcdc's 7 headers and dedup", ours: syncOurs, peer: syncPeerH, unit: "ev/s", complete: true},
		{key: "sync", name: "  same, and into a stream configured as EVENTS (RePublish)", ours: syncOurs, peer: syncPeerE, unit: "ev/s", complete: true},
		{key: "e2e", name: "publisher → subscriber (core, unstored) vs nats bench pub/sub", ours: e2eOurs, peer: e2ePeer, unit: "ev/s", target: 0.8, complete: true},
		{key: "e2e", name: "  same, peer with arrwcdc's 7 headers", ours: e2eOurs, peer: e2ePeerH, unit: "ev/s", complete: true},
		{key: "e2e", name: "publisher → subscriber (JetStream async) vs nats bench pub/sub", ours: e2eAsync, peer: e2ePeer, unit: "ev/s", complete: true},
		{key: "ws", name: fmt.Sprintf("WS fan-out %d clients vs nats-server websocket", c.wsClients), ours: wsOurs, peer: wsPeer, unit: "frames/s", target: 1.0, complete: wsComplete},
		{key: "latency", name: fmt.Sprintf("WS latency p50, %d ev/s × %d clients", c.latRate, c.wsClients), ours: latOurs50, peer: latPeer50, unit: "ms", inverse: true, complete: latComplete, note: latencyNote},
		{key: "latency", name: fmt.Sprintf("WS latency p99, %d ev/s × %d clients", c.latRate, c.wsClients), ours: latOurs99, peer: latPeer99, unit: "ms", inverse: true, complete: latComplete, note: latencyNote},
		{key: "replay", name: fmt.Sprintf("replay %d stored events vs ordered consumer", c.replay), ours: replayOurs, peer: replayPeer, unit: "ev/s", target: 0.8, complete: true},
		{key: "outbox", name: "outbox drain (SQLite) vs nats bench js pub async", ours: outboxOurs, peer: asyncPeer, unit: "ev/s", target: 0.5, complete: true},
		{key: "conns", name: fmt.Sprintf("idle memory a WS connection, %d clients, vs nats-server websocket", c.idleClients), ours: idleOurs, peer: idlePeer,
			unit: "B", max: idleTarget, inverse: true, complete: idleComplete, note: idleNote},
		{key: "conns", name: "  same, VmRSS once freed pages are returned", ours: idleOursRet, peer: idlePeerRet, unit: "B", inverse: true, complete: idleComplete, note: idleNote},
	}
	rows = slices.DeleteFunc(rows, func(r row) bool { return !o.selected(r.key) })
	printTable(w, o, rows, loadBefore, bench.LoadAverage(), time.Since(start))
	printBrokerCPU(w, []cpuRow{
		{"nats bench js pub, plain stream", asyncPeer, syncPeer},
		{"  with arrwcdc's 7 headers and dedup", asyncPeerH, syncPeerH},
		{"  and into a stream configured as EVENTS (RePublish)", asyncPeerE, syncPeerE},
		{"arrwcdc bench publish (EVENTS)", asyncOurs, syncOurs},
	})
	return nil
}

// cpuRow is one line of the broker CPU table: a load, async and sync.
type cpuRow struct {
	name        string
	async, sync *side
}

// printBrokerCPU prints the embedded broker's CPU time per event under
// each publish load, when any was measured: what the stream's
// configuration and the messages' headers cost the server, whoever
// publishes.
func printBrokerCPU(w io.Writer, rows []cpuRow) {
	cell := func(s *side) string {
		if v := median(s.cpu); v > 0 {
			return fmt.Sprintf("%.1f", v)
		}
		return "-"
	}
	if !slices.ContainsFunc(rows, func(r cpuRow) bool { return len(r.async.cpu) > 0 || len(r.sync.cpu) > 0 }) {
		return
	}
	fmt.Fprintf(w, "\nBroker CPU per event (the embedded server: this process's CPU time over each load ÷ its events, µs, medians):\n\n")
	fmt.Fprintf(w, "| %-54s | %8s | %8s |\n", "load", "async", "sync")
	fmt.Fprintf(w, "|%s|%s|%s|\n", strings.Repeat("-", 56), strings.Repeat("-", 10), strings.Repeat("-", 10))
	for _, r := range rows {
		fmt.Fprintf(w, "| %-54s | %8s | %8s |\n", r.name, cell(r.async), cell(r.sync))
	}
}

func printTable(w io.Writer, o options, rows []row, before, after string, took time.Duration) {
	fmt.Fprintf(w, "arrwcdc bench-compare, %s: nproc %d, %s, %d-byte events, medians of %d runs, took %s\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), runtime.Version(), o.size, o.runs, took.Round(time.Second))
	fmt.Fprintf(w, "load average (1/5/15 min): before %s, after %s\n\n", before, after)
	fmt.Fprintf(w, "| %-66s | %16s | %16s | %7s | %13s | %s\n", "scenario", "arrwcdc", "peer", "ratio", "target", "runs (arrwcdc / peer)")
	fmt.Fprintf(w, "|%s|%s|%s|%s|%s|---\n", strings.Repeat("-", 68), strings.Repeat("-", 18), strings.Repeat("-", 18), strings.Repeat("-", 9), strings.Repeat("-", 15))
	for _, r := range rows {
		ours, peer := r.ours.median(), r.peer.median()
		ratio := "n/a"
		var rv float64
		if ours > 0 && peer > 0 {
			rv = ours / peer
			if r.inverse {
				rv = peer / ours
			}
			ratio = fmt.Sprintf("%.2f×", rv)
		}
		target := "-"
		switch {
		case r.target > 0:
			target = fmt.Sprintf("≥%.1f %s", r.target, verdict(rv >= r.target))
		case r.max > 0:
			target = fmt.Sprintf("≤%s %s", figure(r.max, r.unit), verdict(ours > 0 && ours <= r.max))
		}
		name := r.name
		if !r.complete {
			name += " (INCOMPLETE)"
		}
		fmt.Fprintf(w, "| %-66s | %16s | %16s | %7s | %13s | %s / %s\n", name, figure(ours, r.unit), figure(peer, r.unit), ratio, target, list(r.ours.values), list(r.peer.values))
	}
	fmt.Fprintln(w)
	var notes []string
	for _, r := range rows {
		if r.note != "" && !slices.Contains(notes, r.note) {
			notes = append(notes, r.note)
			fmt.Fprintln(w, r.note)
		}
	}
	seen := map[*side]bool{}
	for _, r := range rows {
		for _, s := range []*side{r.ours, r.peer} {
			if seen[s] {
				continue
			}
			seen[s] = true
			for _, e := range uniq(s.errs) {
				fmt.Fprintf(w, "note: %s: %s\n", s.label, e)
			}
			for _, res := range s.results {
				if res.Disconnects > 0 || res.Delivered < res.Expected {
					fmt.Fprintf(w, "note: %s: delivered %d of %d, %d clients disconnected %v\n", s.label, res.Delivered, res.Expected, res.Disconnects, res.Notes)
				}
				if res.Unsupported != "" {
					fmt.Fprintf(w, "note: %s: unsupported: %s\n", s.label, res.Unsupported)
				}
			}
		}
	}
}

// latencyNote explains the latency rows under the table.
const latencyNote = "Latency rows: ratio = peer / arrwcdc (above 1 means the bridge is faster); issue 7 targets p50 ≤ 0.5 ms, p99 ≤ 1.5 ms."

func verdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISS"
}

// idleCell is the idle-memory cell of -peers: the medians after GC and
// with pages returned, in bytes per connection.
func idleCell(gc, returned *side, complete bool) string {
	cell := "n/a"
	if v := gc.median(); v > 0 {
		cell = strconv.FormatFloat(v, 'f', 0, 64)
	}
	if v := returned.median(); v > 0 {
		cell += " / " + strconv.FormatFloat(v, 'f', 0, 64)
	} else {
		cell += " / n/a"
	}
	if !complete {
		cell += " INCOMPLETE"
	}
	return cell
}

func uniq(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

func figure(v float64, unit string) string {
	switch {
	case v == 0:
		return "n/a"
	case unit == "ms":
		return fmt.Sprintf("%.3f ms", v)
	case unit == "B":
		return fmt.Sprintf("%.1f kB", v/1e3)
	case v >= 1e6:
		return fmt.Sprintf("%.2f M %s", v/1e6, strings.TrimSuffix(unit, "/s")+"/s")
	case v >= 1e3:
		return fmt.Sprintf("%.1f k %s", v/1e3, unit)
	}
	return fmt.Sprintf("%.0f %s", v, unit)
}

func list(v []float64) string {
	var parts []string
	for _, x := range v {
		if x < 10 {
			parts = append(parts, strconv.FormatFloat(x, 'f', 3, 64))
		} else {
			parts = append(parts, strconv.FormatFloat(x, 'f', 0, 64))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func itoa(n int) string { return strconv.Itoa(n) }

func checkTools(o options) error {
	for _, p := range []string{o.arrwcdc, o.nats} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%w (make build tools installs bin/arrwcdc and .tools/bin/nats)", err)
		}
	}
	out, err := exec.Command(o.nats, "--version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s --version: %w", o.nats, err)
	}
	if v := strings.TrimSpace(string(out)); v != "v0.5.0" {
		fmt.Fprintf(os.Stderr, "bench-compare: warning: nats CLI %s, the syntax used is v0.5.0's\n", v)
	}
	return nil
}

// ours runs arrwcdc bench with args (which hold --json) and returns the
// field of the result named key (0 for ""), the result and an error. An
// incomplete run still returns its result.
func ours(ctx context.Context, o options, key string, flat []string) (float64, *bench.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, o.arrwcdc, append([]string{"bench", "--log-level", "error"}, flat...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var res bench.Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return 0, nil, fmt.Errorf("arrwcdc bench %s: %v: %s", strings.Join(flat, " "), errors.Join(runErr, err), lastLine(stderr.String()))
	}
	if runErr != nil {
		runErr = fmt.Errorf("arrwcdc bench %s: %s", strings.Join(flat, " "), lastLine(stderr.String()))
	}
	if key == "" {
		return 0, &res, runErr
	}
	var m map[string]any
	_ = json.Unmarshal(stdout.Bytes(), &m)
	v, _ := m[key].(float64)
	return v, &res, runErr
}

var statsRe = regexp.MustCompile(`stats: ([\d,]+) msgs/sec`)

// natsBench runs `nats bench args…` and returns its msgs/sec.
func natsBench(ctx context.Context, o options, url string, args ...string) (float64, *bench.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	full := append([]string{"--server", url, "bench"}, args...)
	full = append(full, "--no-progress")
	out, err := exec.CommandContext(ctx, o.nats, full...).CombinedOutput()
	m := statsRe.FindAllSubmatch(out, -1)
	if len(m) == 0 {
		return 0, nil, fmt.Errorf("nats %s: %v: %s", strings.Join(full, " "), err, lastLine(string(out)))
	}
	v, _ := strconv.ParseFloat(strings.ReplaceAll(string(m[len(m)-1][1]), ",", ""), 64)
	return v, nil, nil
}

// natsPubSub runs nats bench sub and nats bench pub on one subject and
// returns the subscriber's msgs/sec.
// lockedBuffer is a bytes.Buffer that a running command may write while
// the caller reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *lockedBuffer) Bytes() []byte { return []byte(b.String()) }

// natsBenchLikeEvents runs `nats bench js pub <mode> --dedup` (the other
// flags in args) into a stream named name that has the EVENTS
// stream's configuration (broker.StreamSpec) with name as its subject
// prefix: file storage, the dedup window, the limits and RePublish of each
// stored message to live.<subject>, which nats bench's own streams lack. It
// creates or updates that stream first, then purges it through nats bench.
func natsBenchLikeEvents(ctx context.Context, o options, url, name, mode string, args ...string) (float64, *bench.Result, error) {
	if err := ensureStreamLikeEvents(ctx, url, name); err != nil {
		return 0, nil, err
	}
	return natsBench(ctx, o, url, append([]string{"js", "pub", mode, likeEventsSubject(name), "--stream", name, "--purge", "--dedup"}, args...)...)
}

// likeEventsSubject is the subject of the peer's messages in the stream
// name: an event subject with name as its prefix.
func likeEventsSubject(name string) string { return name + ".library.lib-bench.document.added" }

func ensureStreamLikeEvents(ctx context.Context, url, name string) error {
	nc, err := nats.Connect(url, nats.Name("bench-compare"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	spec := broker.StreamSpec(name, broker.StreamConfig{})
	spec.Name, spec.Description = name, "bench-compare: configured as EVENTS"
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = js.CreateOrUpdateStream(ctx, spec)
	return err
}

// headerArgs are nats bench -H flags for the headers the publisher puts
// on every message, with the values of a bench event (TestHeaderArgs checks
// the names against a real publish). withMsgID adds a fixed Nats-Msg-Id;
// JetStream runs use --dedup instead, which sets a fresh one per message.
func headerArgs(withMsgID bool) []string {
	const id = "019abc4e-5f6a-7b8c-9d0e-1f2a3b4c5d6e"
	h := []string{
		"Content-Type:application/json",
		"ce-specversion:1.0",
		"ce-id:" + id,
		"ce-type:document.added",
		"ce-source:arrwcdc-bench",
		"ce-time:2026-11-25T21:40:00.123456Z",
	}
	if withMsgID {
		h = append(h, "Nats-Msg-Id:"+id)
	}
	var args []string
	for _, kv := range h {
		args = append(args, "-H", kv)
	}
	return args
}

func natsPubSub(ctx context.Context, o options, url string, n int, size string, pubArgs ...string) (float64, *bench.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	subj := "bench.core." + strconv.FormatInt(time.Now().UnixNano(), 36)
	sub := exec.CommandContext(ctx, o.nats, "--server", url, "bench", "sub", subj, "--msgs", itoa(n), "--size", size, "--no-progress")
	subOut := &lockedBuffer{}
	sub.Stdout, sub.Stderr = subOut, subOut
	if err := sub.Start(); err != nil {
		return 0, nil, err
	}
	// Wait until the subscriber has started (it prints its header), then
	// a moment for its SUB to reach the server.
	for i := 0; i < 100 && !strings.Contains(subOut.String(), "Starting"); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	pubOut, pubErr := exec.CommandContext(ctx, o.nats, append([]string{"--server", url, "bench", "pub", subj, "--msgs", itoa(n), "--size", size, "--no-progress"}, pubArgs...)...).CombinedOutput()
	waitErr := sub.Wait()
	m := statsRe.FindAllSubmatch(subOut.Bytes(), -1)
	if len(m) == 0 {
		return 0, nil, fmt.Errorf("nats bench sub: %v %v: %s / pub: %s", waitErr, pubErr, lastLine(subOut.String()), lastLine(string(pubOut)))
	}
	v, _ := strconv.ParseFloat(strings.ReplaceAll(string(m[len(m)-1][1]), ",", ""), 64)
	return v, nil, nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// curves prints the fan-out and library scaling curves: one arrwcdc bench
// per point.
func curves(ctx context.Context, o options, w io.Writer) error {
	if err := checkTools(o); err != nil {
		return err
	}
	size := strconv.Itoa(o.size)
	fmt.Fprintf(w, "arrwcdc bench curves, %s: nproc %d, %s, %d-byte events; load before %s\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), runtime.Version(), o.size, bench.LoadAverage())
	fmt.Fprintf(w, "| %-34s | %12s | %12s | %9s | %9s | %10s | %s\n", "point", "events/s", "frames/s", "p50 ms", "p99 ms", "allocs/ev", "delivered")
	fmt.Fprintf(w, "|%s|%s|%s|%s|%s|%s|---\n", strings.Repeat("-", 36), strings.Repeat("-", 14), strings.Repeat("-", 14), strings.Repeat("-", 11), strings.Repeat("-", 11), strings.Repeat("-", 12))
	point := func(name string, args ...string) {
		_, res, err := ours(ctx, o, "", append(args, "--size", size, "--json"))
		if res == nil {
			fmt.Fprintf(w, "| %-34s | error: %v\n", name, err)
			return
		}
		p50, p99 := 0.0, 0.0
		if res.Latency != nil {
			p50, p99 = res.Latency.P50, res.Latency.P99
		}
		var unconfirmed string
		if res.PublishErrors > 0 { // their frames may arrive too: see the bench's notes
			unconfirmed = fmt.Sprintf(", %d publishes failed", res.PublishErrors)
		}
		fmt.Fprintf(w, "| %-34s | %12.0f | %12.0f | %9.3f | %9.3f | %10.1f | %d/%d, %d disconnected%s\n",
			name, res.EventsPerSec, res.DeliveriesPerSec, p50, p99, res.AllocsPerEvent, res.Delivered, res.Expected, res.Disconnects, unconfirmed)
	}
	scale := 1
	if o.quick {
		scale = 10
	}
	for _, sc := range []string{"ws", "ws-peer"} {
		for _, n := range []int{1, 10, 100, 1000} {
			if o.quick && n > 100 {
				continue
			}
			// About 500k frames a point, at most 20k events.
			events := min(20_000, max(500, 500_000/n)) / scale
			point(fmt.Sprintf("%s %d clients, saturated", sc, n), "--scenario", sc, "--clients", itoa(n), "--events", itoa(events))
			point(fmt.Sprintf("%s %d clients, 1k ev/s", sc, n), "--scenario", sc, "--clients", itoa(n), "--rate", "1000", "--events", itoa(3000/scale))
		}
	}
	for _, libs := range []int{1, 100, 10_000} {
		point(fmt.Sprintf("e2e async, %d libraries", libs), "--scenario", "e2e", "--libraries", itoa(libs), "--events", itoa(100_000/scale))
	}
	for _, p := range [][2]int{{100, 1}, {100, 100}, {1000, 1000}} {
		if o.quick && p[0] > 100 {
			continue
		}
		point(fmt.Sprintf("ws %d clients, %d libraries, 1k ev/s", p[0], p[1]), "--scenario", "ws", "--clients", itoa(p[0]), "--libraries", itoa(p[1]), "--rate", "1000", "--events", itoa(5000/scale))
	}
	fmt.Fprintf(w, "\nload after %s\n", bench.LoadAverage())
	return nil
}

// peers compares the WebSocket fan-out of the bridge, nats-server and
// Centrifugo: saturated at 100 and 1000 clients, and latency at 1 k ev/s ×
// 100 clients; medians of -runs.
func peers(ctx context.Context, o options, w io.Writer) error {
	if err := checkTools(o); err != nil {
		return err
	}
	if _, err := os.Stat(o.centrifugo); err != nil {
		return fmt.Errorf("%w (make bench-peers builds it)", err)
	}
	loadBefore, start := bench.LoadAverage(), time.Now()
	size := strconv.Itoa(o.size)
	clients := []int{100, 1000}
	events := map[int]int{100: 5000, 1000: 500}
	latEvents := 5000
	if o.quick {
		clients, events, latEvents = []int{10, 100}, map[int]int{10: 200, 100: 100}, 200
	}
	idleClients := o.counts().idleClients
	servers := []struct{ label, scenario, conns string }{
		{"bridge", "ws", "conns"},
		{"nats-server websocket", "ws-peer", "conns-peer"}, {"Centrifugo v6.9.1", "ws-centrifugo", "conns-centrifugo"},
	}
	type cell struct {
		frames, p50, p99 side
		idle, idleRet    side // idle VmRSS per connection: after GC, pages returned
		complete         bool
	}
	results := map[string]*cell{}
	get := func(k string) *cell {
		if results[k] == nil {
			results[k] = &cell{complete: true}
		}
		return results[k]
	}
	for run := 1; run <= o.runs; run++ {
		for _, n := range clients {
			for _, sv := range servers {
				fmt.Fprintf(os.Stderr, "bench-peers: run %d/%d: %s, %d clients, saturated\n", run, o.runs, sv.label, n)
				args := []string{"--scenario", sv.scenario, "--clients", itoa(n), "--events", itoa(events[n]), "--size", size, "--json", "--centrifugo", o.centrifugo}
				v, res, err := ours(ctx, o, "deliveries_per_s", args)
				c := get(fmt.Sprintf("%s/%d", sv.label, n))
				c.frames.add(v, res, err)
				c.complete = c.complete && res != nil && res.Complete()
			}
		}
		for _, sv := range servers {
			n := clients[0]
			fmt.Fprintf(os.Stderr, "bench-peers: run %d/%d: %s, 1k ev/s × %d clients\n", run, o.runs, sv.label, n)
			_, res, err := ours(ctx, o, "", []string{"--scenario", sv.scenario, "--clients", itoa(n), "--rate", "1000", "--events", itoa(latEvents), "--size", size, "--json", "--centrifugo", o.centrifugo})
			c := get(sv.label + "/latency")
			if res != nil && res.Latency != nil {
				c.p50.add(res.Latency.P50, res, err)
				c.p99.add(res.Latency.P99, nil, nil)
			} else {
				c.p50.add(0, res, err)
			}
			c.complete = c.complete && res != nil && res.Complete()
		}
		for _, sv := range servers {
			if sv.conns == "" {
				continue
			}
			fmt.Fprintf(os.Stderr, "bench-peers: run %d/%d: %s, %d idle connections\n", run, o.runs, sv.label, idleClients)
			c := get(sv.label + "/idle")
			c.complete = idleRun(ctx, o, sv.conns, idleClients, &c.idle, &c.idleRet) && c.complete
		}
	}
	fmt.Fprintf(w, "arrwcdc bench-peers, %s: nproc %d, %s, %d-byte events, medians of %d runs, took %s\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), runtime.Version(), o.size, o.runs, time.Since(start).Round(time.Second))
	fmt.Fprintf(w, "load average (1/5/15 min): before %s, after %s\n\n", loadBefore, bench.LoadAverage())
	fmt.Fprintf(w, "| %-28s |", "server")
	for _, n := range clients {
		fmt.Fprintf(w, " %24s |", fmt.Sprintf("%d clients, frames/s", n))
	}
	fmt.Fprintf(w, " %26s |", fmt.Sprintf("1k ev/s × %d: p50 / p99 ms", clients[0]))
	fmt.Fprintf(w, " %30s |\n", fmt.Sprintf("idle B/conn, %d: GC / returned", idleClients))
	fmt.Fprintf(w, "|%s|%s%s|%s|\n", strings.Repeat("-", 30), strings.Repeat(strings.Repeat("-", 26)+"|", len(clients)), strings.Repeat("-", 28), strings.Repeat("-", 32))
	for _, sv := range servers {
		fmt.Fprintf(w, "| %-28s |", sv.label)
		for _, n := range clients {
			c := get(fmt.Sprintf("%s/%d", sv.label, n))
			f := figure(c.frames.median(), "frames/s")
			if !c.complete {
				f += " INCOMPLETE"
			}
			fmt.Fprintf(w, " %24s |", f)
		}
		lat := "-"
		if c := results[sv.label+"/latency"]; c != nil {
			lat = fmt.Sprintf("%.3f / %.3f", c.p50.median(), c.p99.median())
			if !c.complete {
				lat += " INCOMPLETE"
			}
		}
		fmt.Fprintf(w, " %26s |", lat)
		idle := "-"
		if c := results[sv.label+"/idle"]; c != nil {
			idle = idleCell(&c.idle, &c.idleRet, c.complete)
		}
		fmt.Fprintf(w, " %30s |\n", idle)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Idle B/conn: (VmRSS with the clients idle − before them) / connections of the server process, after a GC "+
		"(Centrifugo: one it runs on /debug/pprof/heap?gc=1), then once freed pages are returned (debug.FreeOSMemory; "+
		"not possible in another process, so n/a for Centrifugo). Bridge and nats-server run in the bench process with the broker.")
	for _, n := range clients {
		best := max(get(fmt.Sprintf("nats-server websocket/%d", n)).frames.median(), get(fmt.Sprintf("Centrifugo v6.9.1/%d", n)).frames.median())
		if v := get(fmt.Sprintf("bridge/%d", n)).frames.median(); v > 0 && best > 0 {
			fmt.Fprintf(w, "%d clients: bridge / best peer = %.2f× (targets: 1.0× at 100 clients, 1.5× at 1000)\n", n, v/best)
		}
	}
	for k, c := range results {
		for _, e := range uniq(slices.Concat(c.frames.errs, c.p50.errs, c.idle.errs)) {
			fmt.Fprintf(w, "note: %s: %s\n", k, e)
		}
	}
	return nil
}
