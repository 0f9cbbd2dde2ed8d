package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/arrwdb/arrwcdc/internal/hist"
)

// Result is the outcome of one run; its JSON form is what `arrwcdc bench
// --json` prints. Rates are over Elapsed, the measured phase: from the
// first publish (or the start of the relay, or the replay request) to the
// last ack or delivery.
type Result struct {
	Scenario  string  `json:"scenario"`
	Mode      string  `json:"mode"`
	Server    string  `json:"server"`
	EventSize int     `json:"event_size"`            // encoded bytes of each event
	Clients   int     `json:"clients,omitempty"`     // ws, ws-peer
	Libraries int     `json:"libraries"`             //
	Rate      float64 `json:"target_rate,omitempty"` // events/s; 0 = saturate

	// Events is the number of events published and acknowledged (publish,
	// e2e, ws, ws-peer), read back (replay) or relayed (outbox).
	Events int64 `json:"events"`
	// Expected and Delivered count deliveries: handler calls (e2e),
	// frames (ws, ws-peer, replay), events stored (outbox); Expected is
	// Events times the receivers of each. Equal to Events for publish.
	Expected      int64 `json:"expected"`
	Delivered     int64 `json:"delivered"`
	PublishErrors int64 `json:"publish_errors"`
	// Disconnects counts clients the server closed before the end
	// (slow consumers); OutOfOrder counts frames whose seq did not grow.
	Disconnects int64 `json:"disconnects"`
	OutOfOrder  int64 `json:"out_of_order"`

	ElapsedSeconds   float64 `json:"elapsed_s"`
	EventsPerSec     float64 `json:"events_per_s"`
	DeliveriesPerSec float64 `json:"deliveries_per_s"`
	MiBPerSec        float64 `json:"mib_per_s"` // delivered bytes (published bytes for publish, outbox)

	// Latency is in milliseconds; LatencyOf says what it measures. nil
	// when the scenario has none (replay, outbox).
	Latency   *Latency `json:"latency,omitempty"`
	LatencyOf string   `json:"latency_of,omitempty"`

	// Memory of the whole process (broker, bridge and clients included
	// when they run in it) at the end, from /proc/self/status: VmRSS and
	// VmHWM (the peak). Allocations are the runtime.MemStats deltas over
	// the measured phase, of the whole process too.
	RSSBytes       uint64  `json:"rss_bytes"`
	PeakRSSBytes   uint64  `json:"peak_rss_bytes"`
	Mallocs        uint64  `json:"mallocs"`
	AllocBytes     uint64  `json:"alloc_bytes"`
	GCs            uint32  `json:"gcs"`
	AllocsPerEvent float64 `json:"allocs_per_event"`
	BytesPerEvent  float64 `json:"alloc_bytes_per_event"`

	// Conns holds the conns scenario's figures (idle memory per
	// connection, connections held); nil for the other scenarios.
	Conns *ConnsFigures `json:"conns,omitempty"`

	// Unsupported is set, and nothing was measured, when the server
	// refused the scenario (a bridge without since_seq, say).
	Unsupported string   `json:"unsupported,omitempty"`
	Notes       []string `json:"notes,omitempty"`

	Started    time.Time `json:"started"`
	GoVersion  string    `json:"go_version"`
	CPUs       int       `json:"cpus"`
	LoadBefore string    `json:"load_before"` // /proc/loadavg's 1, 5 and 15 min averages
	LoadAfter  string    `json:"load_after"`

	elapsed time.Duration
	hist    hist.Hist
	bytes   int64 // delivered (or published) bytes
}

// Latency summarises a histogram, in milliseconds.
type Latency struct {
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
	Count uint64  `json:"count"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// Summarize returns the latency summary of h; nil when h is empty.
func Summarize(h *hist.Hist) *Latency {
	if h.Count() == 0 {
		return nil
	}
	return &Latency{
		P50: ms(h.Quantile(0.50)), P90: ms(h.Quantile(0.90)), P99: ms(h.Quantile(0.99)),
		P999: ms(h.Quantile(0.999)), Max: ms(h.Max()), Mean: ms(h.Mean()), Count: h.Count(),
	}
}

// finish computes the derived figures.
func (r *Result) finish() {
	r.ElapsedSeconds = math.Round(r.elapsed.Seconds()*1e4) / 1e4
	if s := r.elapsed.Seconds(); s > 0 {
		r.EventsPerSec = math.Round(float64(r.Events) / s)
		r.DeliveriesPerSec = math.Round(float64(r.Delivered) / s)
		r.MiBPerSec = math.Round(float64(r.bytes)/s/(1<<20)*100) / 100
	}
	if r.Events > 0 {
		r.AllocsPerEvent = math.Round(float64(r.Mallocs)/float64(r.Events)*10) / 10
		r.BytesPerEvent = math.Round(float64(r.AllocBytes) / float64(r.Events))
	}
	if r.Latency == nil {
		r.Latency = Summarize(&r.hist)
	}
}

func (r *Result) addNote(n string) {
	if n != "" {
		r.Notes = append(r.Notes, n)
	}
}

// Complete reports whether every expected delivery arrived.
func (r *Result) Complete() bool { return r.Unsupported != "" || r.Delivered >= r.Expected }

// Check returns an error wrapping [ErrIncomplete] if deliveries are
// missing, or if publishes failed.
func (r *Result) Check() error {
	if r.Unsupported != "" {
		return nil
	}
	if r.Delivered < r.Expected || r.PublishErrors > 0 {
		return fmt.Errorf("%w: %d of %d delivered, %d publish errors, %d clients disconnected",
			ErrIncomplete, r.Delivered, r.Expected, r.PublishErrors, r.Disconnects)
	}
	return nil
}

// WriteJSON writes r as one indented JSON object and a newline.
func (r *Result) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteTable writes r for people: a title, then one figure a line.
func (r *Result) WriteTable(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "arrwcdc bench %s\n", r.title())
	if r.Unsupported != "" {
		fmt.Fprintf(bw, "  unsupported: %s\n", r.Unsupported)
		for _, n := range r.Notes {
			fmt.Fprintf(bw, "  note: %s\n", n)
		}
		return bw.Flush()
	}
	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "  %s\t%s\n", k, v) }
	pct := 100.0
	if r.Expected > 0 {
		pct = float64(r.Delivered) / float64(r.Expected) * 100
	}
	delivered := fmt.Sprintf("%s / %s (%s%%)", count(r.Delivered), count(r.Expected), trimFloat(math.Floor(pct*100)/100))
	if r.Delivered < r.Expected {
		delivered += "  INCOMPLETE"
	}
	if r.Disconnects > 0 {
		delivered += fmt.Sprintf(", %d clients disconnected", r.Disconnects)
	}
	if r.OutOfOrder > 0 {
		delivered += fmt.Sprintf(", %d out of order", r.OutOfOrder)
	}
	if r.PublishErrors > 0 {
		delivered += fmt.Sprintf(", %d publish errors", r.PublishErrors)
	}
	row("delivered", delivered)
	row("elapsed", fmt.Sprintf("%.3f s", r.ElapsedSeconds))
	row("events/s", count(int64(r.EventsPerSec)))
	if r.Delivered != r.Events || strings.HasPrefix(r.Scenario, "ws") {
		row(r.deliveryUnit()+"/s", count(int64(r.DeliveriesPerSec)))
	}
	row("MiB/s", trimFloat(r.MiBPerSec))
	if l := r.Latency; l != nil {
		row("latency", fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s ms  (%s)",
			trimFloat(l.P50), trimFloat(l.P90), trimFloat(l.P99), trimFloat(l.P999), trimFloat(l.Max), r.LatencyOf))
	}
	if c := r.Conns; c != nil {
		held := fmt.Sprintf("%s of %s requested, from %d client processes (%s), connected in %.1f s",
			count(int64(c.Held)), count(int64(c.Requested)), c.ClientProcesses, strings.Join(c.SourceAddrs, ", "), c.ConnectSeconds)
		if c.CappedByFDLimit {
			held += fmt.Sprintf("  CAPPED by RLIMIT_NOFILE %d", c.FDLimit)
		}
		row("connections held", held)
		scavenged := "n/a"
		if c.ServerPID == 0 {
			scavenged = count(c.IdleScavengedPerConn) + " B"
		}
		row("idle memory/conn", fmt.Sprintf("%s B VmRSS (%.1f KiB), %s B heap+stack (%s B stack), %s goroutines (server process, after GC); %s VmRSS once freed pages are returned",
			count(c.IdleBytesPerConn), float64(c.IdleBytesPerConn)/1024, count(c.IdleHeapStackPerConn), count(c.IdleStackPerConn),
			trimFloat(c.GoroutinesPerConn), scavenged))
		row("server process", fmt.Sprintf("%s: VmRSS %s -> %s, heap+stack %s -> %s, goroutines %d -> %d", c.Server,
			mib(c.RSSBefore), mib(c.RSSIdle), mib(c.HeapStackBefore), mib(c.HeapStackIdle), c.GoroutinesBefore, c.GoroutinesIdle))
		row("clients complete", fmt.Sprintf("%s of %s received every event of their library; client processes' VmRSS %s",
			count(c.Complete), count(int64(c.Held)), mib(c.ClientRSS)))
	}
	row("memory", fmt.Sprintf("RSS %s, peak %s (whole process)", mib(r.RSSBytes), mib(r.PeakRSSBytes)))
	row("allocations", fmt.Sprintf("%s (%s/event), %s (%s/event), %d GCs",
		count(int64(r.Mallocs)), trimFloat(r.AllocsPerEvent), mib(r.AllocBytes), byteSize(r.BytesPerEvent), r.GCs))
	row("machine", fmt.Sprintf("%d CPUs, %s, load %s -> %s", r.CPUs, r.GoVersion, r.LoadBefore, r.LoadAfter))
	for _, n := range r.Notes {
		row("note", n)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return bw.Flush()
}

func (r *Result) title() string {
	var b strings.Builder
	b.WriteString(r.Scenario)
	if r.Scenario != "outbox" {
		fmt.Fprintf(&b, " (%s)", r.Mode)
	}
	fmt.Fprintf(&b, ": %s events of %d B", count(r.Events), r.EventSize)
	if r.Clients > 0 {
		fmt.Fprintf(&b, ", %d clients", r.Clients)
	}
	if r.Libraries == 1 {
		b.WriteString(", 1 library")
	} else {
		fmt.Fprintf(&b, ", %d libraries", r.Libraries)
	}
	if r.Rate > 0 {
		fmt.Fprintf(&b, ", target %s ev/s", trimFloat(r.Rate))
	}
	if r.Server != "" {
		b.WriteString(" — " + r.Server)
	}
	return b.String()
}

func (r *Result) deliveryUnit() string {
	switch r.Scenario {
	case "ws", "ws-peer", "ws-centrifugo", "replay", "conns", "conns-peer", "conns-centrifugo":
		return "frames"
	case "e2e":
		return "deliveries"
	}
	return "stored"
}

// count formats n with thousands separators: 1,234,567.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// trimFloat prints f with at most 3 decimals and no trailing zeros.
func trimFloat(f float64) string {
	return strconv.FormatFloat(math.Round(f*1000)/1000, 'f', -1, 64)
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func byteSize(b float64) string {
	if b >= 10*1024 {
		return fmt.Sprintf("%.1f KiB", b/1024)
	}
	return fmt.Sprintf("%.0f B", b)
}

// readRSS returns VmRSS and VmHWM of this process in bytes; zeros where
// /proc is missing.
func readRSS() (rss, hwm uint64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	return parseStatus(b)
}

func parseStatus(b []byte) (rss, hwm uint64) {
	for line := range bytes.Lines(b) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		f := strings.Fields(string(v)) // "123456 kB"
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch string(k) {
		case "VmRSS":
			rss = n << 10
		case "VmHWM":
			hwm = n << 10
		}
	}
	return rss, hwm
}

// LoadAverage returns the 1, 5 and 15 minute load averages, or "?".
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
