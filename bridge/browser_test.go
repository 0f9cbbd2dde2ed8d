package bridge_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"

	"github.com/arrwdb/arrwcdc/bridge"
	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/testnats"
)

// The browser tests drive headless Chromium (the Debian package "chromium")
// with chromedp. Without a browser they skip, except in CI (env CI set),
// where they fail: CI must run them. CHROME_PATH overrides the lookup.

// chromiumPath returns the browser to run, or skips (fails in CI).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROME_PATH"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("CHROME_PATH: %v", err)
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "no chromium or chromium-browser on PATH and CHROME_PATH unset (apt-get install chromium)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg + ": CI must run the browser tests")
	}
	t.Skip(msg)
	return ""
}

// browserTab is one tab of a headless Chromium of its own, with every JS
// error of the page recorded.
type browserTab struct {
	ctx context.Context

	mu   sync.Mutex
	errs []string
}

// newBrowserTab starts Chromium and opens a tab; t.Cleanup closes the tab,
// ends the browser process and waits for it (so no goroutine outlives the
// test).
func newBrowserTab(t *testing.T) *browserTab {
	t.Helper()
	path := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.WindowSize(1440, 1000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tab := &browserTab{}
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithListener(tab.listen))
	t.Cleanup(func() {
		cancel()      // closes the browser (this is its first tab)
		cancelAlloc() // waits for the process
	})
	// The first action starts the browser; its context must not have a
	// deadline, or the browser would end with it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	tab.ctx = ctx
	return tab
}

// listen records uncaught exceptions, console.error calls and error entries
// of the browser log (a failed request of the page, a refused script). It
// runs in the tab's event loop: it only appends.
func (b *browserTab) listen(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		msg = "uncaught exception: " + exceptionText(ev.ExceptionDetails)
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeAssert {
			return
		}
		var parts []string
		for _, a := range ev.Args {
			switch {
			case a.Description != "":
				parts = append(parts, a.Description)
			case len(a.Value) > 0:
				parts = append(parts, string(a.Value))
			default:
				parts = append(parts, string(a.Type))
			}
		}
		msg = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(parts, " "))
	case *log.EventEntryAdded:
		if ev.Entry == nil || ev.Entry.Level != log.EntryLevelError {
			return
		}
		msg = fmt.Sprintf("browser log (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
	default:
		return
	}
	b.mu.Lock()
	b.errs = append(b.errs, msg)
	b.mu.Unlock()
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d == nil {
		return "?"
	}
	s := d.Text
	if d.Exception != nil && d.Exception.Description != "" {
		s += " " + d.Exception.Description
	}
	return fmt.Sprintf("%s (%s:%d:%d)", s, d.URL, d.LineNumber+1, d.ColumnNumber+1)
}

// checkNoErrors fails t with every JS error the page showed.
func (b *browserTab) checkNoErrors(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errs) > 0 {
		t.Fatalf("the page showed %d JS error(s):\n  %s", len(b.errs), strings.Join(b.errs, "\n  "))
	}
}

// navigate loads url in the tab.
func (b *browserTab) navigate(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, wait)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigate %s: %v", url, err)
	}
}

// browserEval evaluates a JS expression in the page.
func browserEval[T any](t *testing.T, b *browserTab, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, wait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS polls the JS expression until it gives want, within wait.
func waitJS[T comparable](t *testing.T, b *browserTab, expr string, want T) {
	t.Helper()
	testnats.Eventually(t, wait, func() error {
		ctx, cancel := context.WithTimeout(b.ctx, wait)
		defer cancel()
		got, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
		if err != nil {
			return fmt.Errorf("%s: %w", expr, err)
		}
		if got != want {
			return fmt.Errorf("%s = %v, want %v", expr, got, want)
		}
		return nil
	})
}

// snippetPage runs, unchanged but for the host, the original event bus's
// browser snippet; handle counts document.added frames into window.count
// and notes the last seq and any frame of another library.
const snippetPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>snippet</title><link rel="icon" href="data:,"></head><body>
<script>
window.count = 0; window.foreign = 0; window.frames_seen = 0; window.lastSeq = 0;
const libraryId = '%s';
function handle(eventType, d) {
  window.frames_seen++;
  window.lastSeq = d.seq;
  if (d.library_id !== libraryId) window.foreign++;
  if (eventType === 'document.added') window.count++;
}
const ws = new WebSocket(` + "`ws://%s/v1/libraries/${libraryId}/ws`" + `);
ws.onmessage = (e) => { const d = JSON.parse(e.data);
  if (d.type === 'event') { handle(d.event_type, d); } };
</script>
</body></html>
`

// TestBrowserSnippet: browser code written for the original event bus works
// unchanged against the bridge, from a page of another origin.
func TestBrowserSnippet(t *testing.T) {
	chromiumPath(t) // skip before starting anything
	e := newEnv(t)
	b := e.bridge(t)
	const lib, other = "lib-snippet", "lib-other"
	host := strings.TrimPrefix(b.URL(), "http://")

	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, snippetPage, lib, host)
	}))
	t.Cleanup(page.Close)
	tab := newBrowserTab(t) // closed first, before the page server and the bridge
	tab.navigate(t, page.URL+"/")

	// The socket is open when the bridge counts it: events stored from then
	// on reach it.
	testnats.Eventually(t, wait, func() error {
		if n := b.Stats().ActiveSubscribers; n != 1 {
			return fmt.Errorf("%d active subscribers, want 1", n)
		}
		return nil
	})

	const n = 50
	for i := range n {
		e.publish(t, ev{lib: lib, typ: event.TypeDocumentAdded, source: "app-1",
			data: fmt.Sprintf(`{"document_id":"d%d","title":"T","num_chunks":1}`, i)})
		switch {
		case i%5 == 0:
			e.publish(t, ev{lib: lib, typ: event.TypeDocumentDeleted, data: fmt.Sprintf(`{"document_id":"d%d"}`, i)})
		case i%5 == 1:
			e.publish(t, ev{lib: other, typ: event.TypeDocumentAdded})
		case i%5 == 2:
			e.publish(t, ev{lib: lib, typ: event.TypeSearchPerformed, data: `{"query":"q","results":3}`})
		}
	}
	// The last event of the library: once the page has it, it has every
	// event before it (frames of a library arrive in order) and nothing
	// more will come.
	lastSeq, _ := e.publish(t, ev{lib: lib, typ: event.TypeLibraryDeleted, data: `{}`})

	waitJS(t, tab, "window.lastSeq", int64(lastSeq))
	if got := browserEval[int](t, tab, "window.count"); got != n {
		t.Fatalf("window.count = %d, want exactly %d", got, n)
	}
	if got := browserEval[int](t, tab, "window.foreign"); got != 0 {
		t.Fatalf("%d frames of another library reached the page", got)
	}
	// 50 added + 10 deleted + 10 searches + the last one.
	if got := browserEval[int](t, tab, "window.frames_seen"); got != n+10+10+1 {
		t.Fatalf("%d event frames, want %d", got, n+10+10+1)
	}
	tab.checkNoErrors(t)
}

// TestDashboardScreenshot loads the dashboard (GET /), publishes events of a
// few types and libraries, waits until the page shows them and the bridge's
// figures, and takes a full screenshot (also written to
// $ARRWCDC_SCREENSHOT_DIR/dashboard.png when that is set). Any JS error of
// the page fails it.
func TestDashboardScreenshot(t *testing.T) {
	chromiumPath(t) // skip before starting anything
	e := newEnv(t)
	b := e.bridge(t)
	tab := newBrowserTab(t) // closed first, before the bridge

	// No animations: a screenshot shows a settled page.
	ctx, cancel := context.WithTimeout(tab.ctx, wait)
	defer cancel()
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-reduced-motion", Value: "reduce"}},
	}); err != nil {
		t.Fatal(err)
	}
	tab.navigate(t, b.URL()+"/")
	waitJS(t, tab, "document.body.dataset.conn", "live")
	testnats.Eventually(t, wait, func() error {
		if n := b.Stats().ActiveSubscribers; n != 1 {
			return fmt.Errorf("%d active subscribers, want 1", n)
		}
		return nil
	})

	// A few seconds of traffic in bursts, so the rate chart has bars.
	libs := []string{"catalog", "research-notes", "support-kb"}
	types := []string{
		event.TypeDocumentAdded, event.TypeDocumentAdded, event.TypeSearchPerformed, event.TypeDocumentAdded,
		event.TypeSearchPerformed, event.TypeDocumentDeleted, event.TypeDocumentAdded, event.TypeSearchPerformed,
	}
	sources := []string{"ingest-1", "ingest-2", "web-app", "ingest-1"}
	total := 0
	publish := func(x ev) {
		e.publish(t, x)
		total++
	}
	publish(ev{lib: "support-kb", typ: event.TypeLibraryCreated, source: "admin", data: `{"name":"Support KB"}`})
	tick := time.NewTicker(400 * time.Millisecond)
	defer tick.Stop()
	for burst := range 10 {
		for i := range 3 + (burst*7)%9 {
			k := burst*11 + i
			typ := types[k%len(types)]
			data := `{}`
			switch typ {
			case event.TypeDocumentAdded:
				data = fmt.Sprintf(`{"document_id":"doc-%04d","title":"Quarterly report %d","num_chunks":%d}`, k, k, 3+k%17)
			case event.TypeDocumentDeleted:
				data = fmt.Sprintf(`{"document_id":"doc-%04d"}`, k-40)
			case event.TypeSearchPerformed:
				data = fmt.Sprintf(`{"query":"retention policy %d","results":%d,"took_ms":%d}`, k%7, k%13, 4+k%23)
			}
			publish(ev{lib: libs[k%len(libs)], typ: typ, source: sources[k%len(sources)], data: data})
		}
		if burst == 4 {
			// Event content is shown as text, never parsed as HTML.
			publish(ev{lib: "research-notes", typ: event.TypeDocumentAdded, source: `<b id="xss-source">web</b>`,
				data: `{"document_id":"doc-x","title":"<img id=\"xss-data\" src=x onerror=\"window.xss=1\">"}`})
		}
		<-tick.C
	}

	// The page shows every event, and the bridge's figures once a stats
	// poll saw them all.
	want := fmt.Sprint(total)
	waitJS(t, tab, "document.getElementById('kpi-received').dataset.value", want)
	waitJS(t, tab, "document.getElementById('kpi-published').dataset.value", want)
	waitJS(t, tab, "document.getElementById('kpi-delivered').dataset.value", want)
	waitJS(t, tab, "document.getElementById('lat-count').textContent", want+" frames")
	waitJS(t, tab, "document.querySelector('#types li[data-type=\"document.added\"]') !== null", true)

	if got := browserEval[bool](t, tab, "document.getElementById('xss-source') === null && document.getElementById('xss-data') === null && window.xss === undefined"); !got {
		t.Fatal("event content was parsed as HTML")
	}
	if got := browserEval[bool](t, tab, "[...document.querySelectorAll('#feed-body td')].some(td => td.textContent.includes('<img id='))"); !got {
		t.Fatal("the hostile event's data is not shown as text")
	}
	tab.checkNoErrors(t)

	shot := screenshot(t, tab)
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	bounds := img.Bounds()
	if bounds.Dx() < 800 || bounds.Dy() < 600 {
		t.Fatalf("screenshot is %v", bounds)
	}
	if n := distinctColors(img, 1000); n < 50 {
		t.Fatalf("screenshot has %d distinct colours: blank?", n)
	}
	dst := filepath.Join(t.TempDir(), "dashboard.png")
	writeScreenshot(t, dst, shot)
	if dir := os.Getenv("ARRWCDC_SCREENSHOT_DIR"); dir != "" {
		writeScreenshot(t, filepath.Join(dir, "dashboard.png"), shot)
	}
	t.Logf("%d events; screenshot %dx%d, %d bytes", total, bounds.Dx(), bounds.Dy(), len(shot))

	// Watching one library: the page opens that library's socket and shows
	// only its events.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#libs .chip[data-library="catalog"]`))); err != nil {
		t.Fatalf("click the library chip: %v", err)
	}
	waitJS(t, tab, "document.body.dataset.conn + ' ' + document.getElementById('scope-text').textContent.startsWith('library catalog')", "live true")
	waitJS(t, tab, "location.hash", "#library=catalog")
	testnats.Eventually(t, wait, func() error {
		// The old socket is gone and the new one counted.
		if n := b.Stats().ActiveSubscribers; n != 1 {
			return fmt.Errorf("%d active subscribers, want 1", n)
		}
		return nil
	})
	e.publish(t, ev{lib: "support-kb", typ: event.TypeDocumentAdded})
	e.publish(t, ev{lib: "catalog", typ: event.TypeDocumentDeleted, data: `{"document_id":"doc-0001"}`})
	waitJS(t, tab, "document.getElementById('kpi-received').dataset.value", "1")
	waitJS(t, tab, "document.querySelector('#feed-body tr .t-lib').textContent", "catalog")
	tab.checkNoErrors(t)
}

func screenshot(t *testing.T, b *browserTab) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, wait)
	defer cancel()
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	return shot
}

func writeScreenshot(t *testing.T, path string, shot []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// distinctColors counts the distinct colours of img, up to limit.
func distinctColors(img image.Image, limit int) int {
	seen := make(map[[4]uint32]struct{})
	r := img.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, ca := img.At(x, y).RGBA()
			seen[[4]uint32{cr, cg, cb, ca}] = struct{}{}
			if len(seen) >= limit {
				return len(seen)
			}
		}
	}
	return len(seen)
}

// TestDashboardFrames runs the dashboard against a scripted stand-in for
// the bridge (the page's own files, a fake socket): frames of unknown types,
// garbage and duplicates are shown as notices or dropped, never break the
// page; a slow-consumer close is shown with its reason and the page resumes
// with since_seq, and when that is refused (400) it reconnects without it
// and says which sequences it may have missed.
func TestDashboardFrames(t *testing.T) {
	chromiumPath(t)
	var (
		handlers sync.WaitGroup
		done     = make(chan struct{})
		mu       sync.Mutex
		sockets  int
		queries  []string
	)
	frame := func(c *websocket.Conn, s string) error {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		return c.Write(ctx, websocket.MessageText, []byte(s))
	}
	evFrame := func(seq int) string {
		return fmt.Sprintf(`{"type":"event","event_type":"document.added","id":"e%d","seq":%d,"library_id":"lib-a","timestamp":"2025-10-27T06:01:00.000000Z","source":"app-1","data":{"n":%d}}`, seq, seq, seq)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(os.DirFS("web")))
	mux.Handle("GET /web/", http.StripPrefix("/web/", http.FileServerFS(os.DirFS("web"))))
	mux.HandleFunc("GET /v1/events/stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"total_published":7,"nats":{"connected":true,"status":"connected"}}`) // most fields missing
	})
	mux.HandleFunc("GET /v1/events/ws", func(w http.ResponseWriter, r *http.Request) {
		handlers.Add(1)
		defer handlers.Done()
		mu.Lock()
		queries = append(queries, r.URL.RawQuery)
		mu.Unlock()
		if r.URL.Query().Has("since_seq") { // what the bridge answers today
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"since_seq: not supported yet"}`)
			return
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		mu.Lock()
		sockets++
		n := sockets
		mu.Unlock()
		if n == 1 {
			for _, f := range []string{
				`{"type":"connected","filter":"events.>","stream_seq":10}`,
				evFrame(11),
				`{"type":"gap","from_seq":3,"to_seq":4}`,
				`not json <b>`,
				`[1,2,3]`,
				`{"type":"event"}`,
				evFrame(11), // a duplicate: dropped
				evFrame(12),
			} {
				if frame(c, f) != nil {
					return
				}
			}
			_ = c.Write(context.Background(), websocket.MessageBinary, []byte{0, 1, 2})
			_ = c.Close(bridge.CloseSlowConsumer, "slow consumer: resume with since_seq=12")
			return
		}
		if frame(c, `{"type":"connected","filter":"events.>","stream_seq":20}`) != nil || frame(c, evFrame(21)) != nil {
			return
		}
		ctx := c.CloseRead(context.Background())
		select {
		case <-ctx.Done():
		case <-done:
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		close(done)
		handlers.Wait()
		srv.Close()
	})
	tab := newBrowserTab(t)
	tab.navigate(t, srv.URL+"/")

	// 11, the event without fields, 12 and 21; the second 11 dropped.
	waitJS(t, tab, "document.getElementById('kpi-received').dataset.value", "4")
	waitJS(t, tab, "document.body.dataset.conn", "live")
	notices := browserEval[string](t, tab, "[...document.querySelectorAll('#notices li span')].map(s => s.textContent).reverse().join('\\n')")
	for _, want := range []string{
		`gap frame: {"type":"gap","from_seq":3,"to_seq":4}`,
		"unreadable frame (12 bytes): not json <b>",
		"unexpected frame: [1,2,3]",
		"binary frame ignored",
		"socket closed (4008 slow consumer): slow consumer: resume with since_seq=12",
		"the bridge cannot replay (since_seq: not supported yet)",
		"while disconnected the stream stored seqs 13–20",
	} {
		if !strings.Contains(notices, want) {
			t.Errorf("no notice %q in:\n%s", want, notices)
		}
	}
	if got := browserEval[string](t, tab, "document.getElementById('kpi-received-sub').textContent"); got != "1 duplicate dropped" {
		t.Errorf("received sub-line %q", got)
	}
	if got := browserEval[string](t, tab, "document.getElementById('kpi-published').textContent"); got != "7" {
		t.Errorf("published %q", got)
	}
	mu.Lock()
	if want := []string{"", "since_seq=12", "since_seq=12", ""}; fmt.Sprint(queries) != fmt.Sprint(want) {
		// the socket, the refused resume, the page's plain-HTTP probe of
		// it, the socket without since_seq
		t.Errorf("socket queries %q, want %q", queries, want)
	}
	mu.Unlock()

	// The refused handshake and the probe's 400 are logged by the browser
	// itself; nothing else may be.
	tab.mu.Lock()
	defer tab.mu.Unlock()
	for _, msg := range tab.errs {
		t.Logf("browser: %s", msg)
		if !strings.Contains(msg, "since_seq=12") {
			t.Errorf("the page showed an error: %s", msg)
		}
	}
}
