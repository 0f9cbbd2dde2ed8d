package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"

	"github.com/arrwdb/arrwcdc/subjects"
)

// centrifugoAPIKey is the HTTP API key of the bench's Centrifugo.
const centrifugoAPIKey = "arrwcdc-bench"

// runWSCentrifugo runs the load of runWS against Centrifugo (the second
// peer of issue 7): a centrifugo process on 127.0.0.1 with anonymous
// subscribe, fed by a forwarder that takes each event from the same live
// subject the bridge uses and publishes it, in batches of what has
// arrived, through Centrifugo's HTTP API (/api/batch); the clients speak
// Centrifugo's JSON protocol over WebSocket. The forwarder hop is part of
// what is measured: it is how events reach Centrifugo from NATS.
func (r *runner) runWSCentrifugo(ctx context.Context, res *Result) error {
	path, err := r.centrifugoPath()
	if err != nil {
		return err
	}
	base, _, err := r.startCentrifugo(ctx, path, false)
	if err != nil {
		return err
	}
	res.Server += ", centrifugo " + base
	libs := r.libraries()
	stopFwd, err := r.forwardToCentrifugo(ctx, base, libs)
	if err != nil {
		return err
	}
	defer stopFwd()
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/connection/websocket"
	return r.fanOut(ctx, res, libs, func(ctx context.Context, cs *clientSet, rc *receiver) error {
		return cs.dialCentrifugo(ctx, wsURL, libs[rc.lib], rc)
	}, "push received − event timestamp")
}

// centrifugoPath finds the centrifugo binary of [Config.Centrifugo], as
// an absolute path.
func (r *runner) centrifugoPath() (string, error) {
	bin := r.cfg.Centrifugo
	if bin == "" {
		bin = "centrifugo"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return "", fmt.Errorf("bench: %s needs the centrifugo binary (make bench-peers builds it into .tools/bin): %w", r.cfg.Scenario, err)
	}
	// Absolute: centrifugo runs in a directory of its own.
	if path, err = filepath.Abs(path); err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	return path, nil
}

// startCentrifugo runs centrifugo on a free port of 127.0.0.1 until the run
// closes, and returns its http:// base URL once it answers, and its
// process id. With pprof, its debug endpoints (/debug/pprof/) are on.
func (r *runner) startCentrifugo(ctx context.Context, bin string, pprof bool) (base string, pid int, err error) {
	dir, err := tempDir(r)
	if err != nil {
		return "", 0, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", 0, fmt.Errorf("bench: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	conf := map[string]any{
		"http_server": map[string]any{"address": "127.0.0.1", "port": port},
		"log":         map[string]any{"level": "error"},
		"client": map[string]any{
			"allow_anonymous_connect_without_token": true,
			"allowed_origins":                       []string{"*"},
		},
		"channel":     map[string]any{"without_namespace": map[string]any{"allow_subscribe_for_anonymous": true, "allow_subscribe_for_client": true}},
		"http_api":    map[string]any{"key": centrifugoAPIKey},
		"usage_stats": map[string]any{"disabled": true},
		"health":      map[string]any{"enabled": true},
	}
	if pprof {
		conf["debug"] = map[string]any{"enabled": true}
	}
	b, _ := json.Marshal(conf)
	cfgPath := filepath.Join(dir, "centrifugo.json")
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		return "", 0, fmt.Errorf("bench: %w", err)
	}
	cmd := exec.Command(bin, "--config", cfgPath)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", 0, fmt.Errorf("bench: centrifugo: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	r.onClose(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	base = fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/health")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base, cmd.Process.Pid, nil
			}
		}
		select {
		case <-exited:
			return "", 0, fmt.Errorf("bench: centrifugo exited: %s", strings.TrimSpace(out.String()))
		case <-ctx.Done():
			return "", 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return "", 0, errors.New("bench: centrifugo did not answer /health within 20 s")
		}
	}
}

// forwardToCentrifugo subscribes to the live subjects of libs and publishes
// every event to the channel named after its library, in order, batching
// whatever arrived while the previous batch was in flight.
func (r *runner) forwardToCentrifugo(ctx context.Context, base string, libs []string) (stop func(), err error) {
	type item struct {
		channel string
		data    []byte
	}
	ch := make(chan item, 1<<16)
	var subs []*nats.Subscription
	for _, lib := range libs {
		subj, err := subjects.Library(r.cfg.Prefix, lib)
		if err != nil {
			return nil, err
		}
		s, err := r.nc.Subscribe(subjects.Live(subj), func(m *nats.Msg) { ch <- item{lib, m.Data} })
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		_ = s.SetPendingLimits(-1, -1)
		subs = append(subs, s)
	}
	if err := r.nc.Flush(); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 30 * time.Second}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var body bytes.Buffer
		for {
			var first item
			select {
			case first = <-ch:
			case <-done:
				return
			}
			body.Reset()
			body.WriteString(`{"commands":[`)
			add := func(it item) {
				body.WriteString(`{"publish":{"channel":`)
				b, _ := json.Marshal(it.channel)
				body.Write(b)
				body.WriteString(`,"data":`)
				body.Write(it.data)
				body.WriteString(`}}`)
			}
			add(first)
		more:
			for n := 1; n < 1000; n++ {
				select {
				case it := <-ch:
					body.WriteByte(',')
					add(it)
				default:
					break more
				}
			}
			body.WriteString(`]}`)
			req, _ := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost, base+"/api/batch", bytes.NewReader(body.Bytes()))
			req.Header.Set("X-API-Key", centrifugoAPIKey)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				r.log.Warn("centrifugo publish failed: " + err.Error())
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
	})
	return func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
		close(done)
		wg.Wait()
		client.CloseIdleConnections()
	}, nil
}

// dialCentrifugo connects one client with Centrifugo's JSON protocol,
// subscribes it to channel and reads its pushes into rc until cs.close.
func (cs *clientSet) dialCentrifugo(ctx context.Context, url, channel string, rc *receiver) error {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(dctx, url, nil)
	if err != nil {
		return err
	}
	c.SetReadLimit(1 << 21)
	if err := centrifugoSubscribe(dctx, c, channel); err != nil {
		c.CloseNow()
		return err
	}
	cs.read(c, rc, func(now time.Time, msg []byte) {
		centrifugoPushes(c, msg, func(line []byte) { rc.event(now, line, 0) })
	})
	return nil
}

// centrifugoSubscribe sends Centrifugo's connect and subscribe commands
// for channel over c and reads its replies until the subscribe reply
// (pushes cannot come before it).
func centrifugoSubscribe(ctx context.Context, c *websocket.Conn, channel string) error {
	sub, _ := json.Marshal(map[string]any{"id": 2, "subscribe": map[string]string{"channel": channel}})
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"id":1,"connect":{}}`+"\n"+string(sub))); err != nil {
		return err
	}
	for {
		_, msg, err := c.Read(ctx)
		if err != nil {
			return fmt.Errorf("centrifugo subscribe: %w", err)
		}
		for line := range bytes.Lines(msg) {
			line = bytes.TrimSpace(line)
			if bytes.Contains(line, []byte(`"error"`)) {
				return fmt.Errorf("centrifugo: %s", line)
			}
			if bytes.HasPrefix(line, []byte(`{"id":2`)) {
				return nil
			}
		}
	}
}

// centrifugoPushes calls pub with each publication push in msg, one of
// Centrifugo's frames (several replies may share one, one a line), and
// answers its ping (an empty object) with an empty object over c.
func centrifugoPushes(c *websocket.Conn, msg []byte, pub func(line []byte)) {
	for line := range bytes.Lines(msg) {
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 2 && line[0] == '{' && line[1] == '}':
			_ = c.Write(context.Background(), websocket.MessageText, []byte("{}"))
		case bytes.HasPrefix(line, []byte(`{"push"`)) && bytes.Contains(line, []byte(`"pub":`)):
			pub(line)
		}
	}
}
