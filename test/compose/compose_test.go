// Package compose_test drives the docker-compose deployment end to end:
// three brokers, two bridges, two demo-apps, each in its own container.
// It runs only under `make compose-test` (ARRWCDC_COMPOSE_TEST=1), which
// builds the image first and skips where no Docker engine answers.
package compose_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/testnats"
)

const project = "arrwcdc-compose-test"

var (
	brokers  = []string{"nats://127.0.0.1:4222", "nats://127.0.0.1:4223", "nats://127.0.0.1:4224"}
	bridges  = []string{"http://127.0.0.1:8000", "http://127.0.0.1:8001"}
	demoApps = []string{"http://127.0.0.1:8080", "http://127.0.0.1:8081"}
)

func compose(t *testing.T, args ...string) string {
	t.Helper()
	tool := strings.Fields(os.Getenv("COMPOSE"))
	if len(tool) == 0 {
		tool = []string{"docker-compose"}
	}
	file, _ := filepath.Abs("../../docker-compose.yml")
	full := append(append(tool[1:], "-p", project, "-f", file), args...)
	out, err := exec.Command(tool[0], full...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", tool[0], strings.Join(full, " "), err, out)
	}
	return string(out)
}

func httpOK(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

func post(t *testing.T, url, body string, out any) error {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("POST %s: %s %s", url, resp.Status, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

func waitHealthy(t *testing.T) {
	t.Helper()
	testnats.EventuallyEvery(t, 3*time.Minute, 250*time.Millisecond, func() error {
		for _, u := range []string{bridges[0] + "/readyz", bridges[1] + "/readyz", demoApps[0] + "/healthz", demoApps[1] + "/healthz",
			"http://127.0.0.1:8222/healthz", "http://127.0.0.1:8223/healthz", "http://127.0.0.1:8224/healthz"} {
			if err := httpOK(u); err != nil {
				return err
			}
		}
		return nil
	})
}

// wsClient collects document ids of document.added frames of one library.
type wsClient struct {
	mu   sync.Mutex
	docs map[string]int
}

func watch(t *testing.T, ctx context.Context, bridge, lib string) *wsClient {
	t.Helper()
	url := "ws" + strings.TrimPrefix(bridge, "http") + "/v1/libraries/" + lib + "/ws?types=document.added"
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(-1)
	w := &wsClient{docs: map[string]int{}}
	go func() {
		defer c.CloseNow()
		for {
			_, data, err := c.Read(ctx)
			if err != nil {
				return
			}
			var f struct {
				Type string `json:"type"`
				Data struct {
					DocumentID string `json:"document_id"`
				} `json:"data"`
			}
			if json.Unmarshal(data, &f) == nil && f.Type == "event" {
				w.mu.Lock()
				w.docs[f.Data.DocumentID]++
				w.mu.Unlock()
			}
		}
	}()
	return w
}

func (w *wsClient) has(ids []string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, id := range ids {
		if w.docs[id] != 1 {
			return fmt.Errorf("document %s seen %d times over WebSocket", id, w.docs[id])
		}
	}
	return nil
}

// streamDocs returns how often each document id of lib appears in the
// EVENTS stream as document.added.
func streamDocs(ctx context.Context, js jetstream.JetStream, lib string) (map[string]int, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c, err := js.OrderedConsumer(ctx, "EVENTS", jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"events.library." + lib + ".document.added"},
	})
	if err != nil {
		return nil, err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return nil, err
	}
	// Messages rides out consumer resets (a leader moving), unlike Next.
	it, err := c.Messages()
	if err != nil {
		return nil, err
	}
	defer it.Stop()
	docs := map[string]int{}
	for n := uint64(0); n < info.NumPending; n++ {
		m, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("after %d of %d: %w", n, info.NumPending, err)
		}
		ev, err := event.Decode(m.Data(), 0)
		if err != nil {
			return nil, err
		}
		var d event.DocumentAdded
		if err := ev.DataAs(&d); err != nil {
			return nil, err
		}
		docs[d.DocumentID]++
	}
	return docs, nil
}

func TestCompose(t *testing.T) {
	if os.Getenv("ARRWCDC_COMPOSE_TEST") == "" {
		t.Skip("set ARRWCDC_COMPOSE_TEST=1 (make compose-test builds the image and runs this where a Docker engine answers)")
	}
	compose(t, "down", "-v")
	compose(t, "up", "-d")
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(compose(t, "logs", "--tail=40"))
		}
		compose(t, "down", "-v")
	})
	waitHealthy(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	// One library on each demo-app.
	libs := make([]string, 2)
	for i, app := range demoApps {
		var lib struct{ ID string }
		if err := post(t, app+"/v1/libraries", fmt.Sprintf(`{"name":"compose-%d"}`, i), &lib); err != nil {
			t.Fatal(err)
		}
		libs[i] = lib.ID
	}

	// WebSocket clients of each library on both bridges, and the stock nats
	// CLI on broker 3.
	var clients [2][2]*wsClient
	for i, lib := range libs {
		for j, br := range bridges {
			clients[i][j] = watch(t, ctx, br, lib)
		}
	}
	const quiet = 20
	natsOut, natsDone := natsSub(t, ctx, brokers[2], "events.library."+libs[0]+".document.added", quiet)
	add := func(i, n int) string {
		var doc struct{ ID string }
		if err := post(t, demoApps[i]+"/v1/libraries/"+libs[i]+"/documents",
			fmt.Sprintf(`{"title":"doc %d","text":"words of document %d"}`, n, n), &doc); err != nil {
			t.Error(err)
			return ""
		}
		return doc.ID
	}

	// Phase 1, quiet: every client sees every event of its library.
	var ids [2][]string
	for n := range quiet {
		for i := range libs {
			ids[i] = append(ids[i], add(i, n))
		}
	}
	for i := range libs {
		for j := range bridges {
			testnats.EventuallyEvery(t, 30*time.Second, 250*time.Millisecond, func() error { return clients[i][j].has(ids[i]) })
		}
	}
	select {
	case <-natsDone:
	case <-time.After(30 * time.Second):
		t.Fatal("nats sub on broker3 did not get its events")
	}
	if got := strings.Count(natsOut.String(), `"type":"document.added"`); got != quiet {
		t.Fatalf("nats sub printed %d events, want %d:\n%s", got, quiet, natsOut)
	}

	// Phase 2, under load: stop broker2, restart demo-app1. Every document
	// the API acknowledged must be in the stream exactly once.
	var stop atomic.Bool
	var wg sync.WaitGroup
	var loadIDs [2][]string
	var committed [2]atomic.Int64 // len(loadIDs[i]), readable while the load runs
	for i := range libs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; !stop.Load(); n++ {
				resp, err := http.Post(demoApps[i]+"/v1/libraries/"+libs[i]+"/documents", "application/json",
					strings.NewReader(fmt.Sprintf(`{"title":"load %d","text":"x"}`, n)))
				if err != nil {
					time.Sleep(100 * time.Millisecond) // the app is restarting
					continue
				}
				var doc struct{ ID string }
				if resp.StatusCode == http.StatusCreated && json.NewDecoder(resp.Body).Decode(&doc) == nil {
					loadIDs[i] = append(loadIDs[i], doc.ID)
					committed[i].Add(1)
				}
				resp.Body.Close()
			}
		}()
	}
	// Each disturbance happens while documents are being committed: wait
	// until the apps that are up have committed more since the last step.
	progress := func(apps ...int) {
		t.Helper()
		var from [2]int64
		for _, i := range apps {
			from[i] = committed[i].Load()
		}
		testnats.EventuallyEvery(t, time.Minute, 250*time.Millisecond, func() error {
			for _, i := range apps {
				if n := committed[i].Load() - from[i]; n < 100 {
					return fmt.Errorf("demo-app%d committed %d documents since the last step", i+1, n)
				}
			}
			return nil
		})
	}
	progress(0, 1)
	compose(t, "stop", "broker2")
	progress(0, 1) // with one broker down
	compose(t, "restart", "demo-app1")
	progress(0, 1) // demo-app1 is back and writing
	compose(t, "start", "broker2")
	progress(0, 1)
	stop.Store(true)
	wg.Wait()
	waitHealthy(t)

	nc, err := nats.Connect(strings.Join(brokers, ","))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range libs {
		want := append(append([]string{}, ids[i]...), loadIDs[i]...)
		if len(loadIDs[i]) == 0 {
			t.Fatalf("library %d: no document committed under load", i)
		}
		// demo-app1's outbox drains after its restart: poll until it has.
		testnats.EventuallyEvery(t, 60*time.Second, 250*time.Millisecond, func() error {
			docs, err := streamDocs(ctx, js, libs[i])
			if err != nil {
				return err
			}
			for _, id := range want {
				if docs[id] != 1 {
					return fmt.Errorf("library %d: document %s is in the stream %d times (%d committed, %d in stream)", i, id, docs[id], len(want), len(docs))
				}
			}
			if len(docs) != len(want) {
				return fmt.Errorf("library %d: stream holds %d documents, %d committed", i, len(docs), len(want))
			}
			return nil
		})
		t.Logf("library %d: %d documents committed under load, each in the stream once", i, len(loadIDs[i]))
	}
}

// natsSub runs `nats sub --count n --raw` against url; done closes when it exits.
func natsSub(t *testing.T, ctx context.Context, url, subject string, n int) (*strings.Builder, <-chan struct{}) {
	t.Helper()
	cmd := testnats.CLI(t, ctx, url, "sub", subject, "--count", fmt.Sprint(n), "--raw")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := &strings.Builder{}
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
		}
		_ = cmd.Wait()
		close(done)
	}()
	// The subscription must reach broker 3 before the first publish.
	testnats.EventuallyEvery(t, 20*time.Second, 250*time.Millisecond, func() error {
		resp, err := http.Get("http://127.0.0.1:8224/connz?subs=1")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(raw), subject) {
			return fmt.Errorf("no subscription to %s on broker3 yet", subject)
		}
		return nil
	})
	return out, done
}
