package outbox_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/internal/testnats"
	"github.com/arrwdb/arrwcdc/outbox"
	"github.com/arrwdb/arrwcdc/publisher"
)

// The publishing process of TestKill9MidOutageAndMidDrain is this test
// binary run again with these variables set.
const (
	helperEnv   = "ARRWCDC_OUTBOX_HELPER" // "1" in the child
	helperDB    = "ARRWCDC_OUTBOX_HELPER_DB"
	helperNATS  = "ARRWCDC_OUTBOX_HELPER_NATS"
	helperUntil = "ARRWCDC_OUTBOX_HELPER_UNTIL" // stop after this many changes, then drain; unset: write until killed
)

// TestHelperProcess is the publishing process of the kill -9 test, not a
// test of its own: without ARRWCDC_OUTBOX_HELPER=1 it does nothing.
//
// It is an application with its own SQLite database: each change is a
// docs row and its event, committed together through the outbox, while a
// relay in the same process publishes to the broker at $NATS. It prints
// "committed <n>" after each commit (n changes so far) and, when told to
// stop, "drained" once its outbox is empty.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		return
	}
	if err := helperMain(); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(3)
	}
}

func helperMain() error {
	ctx := context.Background()
	until := -1
	if s := os.Getenv(helperUntil); s != "" {
		var err error
		if until, err = strconv.Atoi(s); err != nil {
			return err
		}
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(zap.WarnLevel)
	cfg.OutputPaths = []string{"stderr"}
	log, err := cfg.Build()
	if err != nil {
		return err
	}

	db, err := outbox.OpenSQLite(os.Getenv(helperDB))
	if err != nil {
		return err
	}
	defer db.Close()
	ob, err := outbox.New(db, outbox.SQLite, outbox.WithSource("helper"), outbox.WithLogger(log))
	if err != nil {
		return err
	}
	if err := ob.Migrate(ctx); err != nil {
		return err
	}
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS docs (n BIGINT PRIMARY KEY, event_id TEXT NOT NULL)`); err != nil {
		return err
	}

	// The broker may be down when the process starts.
	nc, err := nats.Connect(os.Getenv(helperNATS), reconnecting()...)
	if err != nil {
		return err
	}
	defer nc.Close()
	pub, err := publisher.New(nc, publisher.WithDefaultTimeout(time.Second), publisher.WithLogger(log))
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = pub.Close(ctx)
	}()
	relay, err := outbox.NewRelay(ob, pub, outbox.WithBatchSize(50), outbox.WithBackoff(10*time.Millisecond, 200*time.Millisecond))
	if err != nil {
		return err
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- relay.Run(rctx) }()
	defer func() { stop(); <-done }()

	var next int
	if err := db.QueryRow(`SELECT COALESCE(MAX(n), -1) + 1 FROM docs`).Scan(&next); err != nil {
		return err
	}
	be := &backend{dialect: outbox.SQLite, db: db}
	for n := next; until < 0 || n < until; n++ {
		if err := changes(ctx, be, ob, n, 1); err != nil {
			return fmt.Errorf("change %d: %w", n, err)
		}
		fmt.Printf("committed %d\n", n+1)
	}
	deadline := time.Now().Add(2 * time.Minute)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		s, err := ob.Stats(ctx)
		if err != nil {
			return err
		}
		if s.Depth == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not drained: %+v", s)
		}
	}
	fmt.Println("drained")
	return nil
}

// helper is one publishing process.
type helper struct {
	cmd       *exec.Cmd
	stderr    bytes.Buffer // written by exec's goroutine; read after Wait
	committed atomic.Int64
	drained   chan struct{}
	eof       chan struct{} // stdout fully read
	waitOnce  sync.Once
	waitErr   error
}

// startHelper starts a publishing process on the SQLite file db; until < 0
// means "write until killed".
func startHelper(t *testing.T, db, natsURL string, until int) *helper {
	t.Helper()
	h := &helper{drained: make(chan struct{}), eof: make(chan struct{})}
	h.cmd = exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	h.cmd.Env = append(os.Environ(), helperEnv+"=1", helperDB+"="+db, helperNATS+"="+natsURL)
	if until >= 0 {
		h.cmd.Env = append(h.cmd.Env, helperUntil+"="+strconv.Itoa(until))
	}
	h.cmd.Stderr = &h.stderr
	out, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(h.eof)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if n, ok := strings.CutPrefix(line, "committed "); ok {
				if v, err := strconv.ParseInt(n, 10, 64); err == nil {
					h.committed.Store(v)
				}
			} else if line == "drained" {
				close(h.drained)
			}
		}
	}()
	t.Cleanup(func() { h.kill(t) })
	return h
}

// waitCommitted waits until the process reports n changes committed.
func (h *helper) waitCommitted(t *testing.T, n int64) {
	t.Helper()
	testnats.Eventually(t, time.Minute, func() error {
		if c := h.committed.Load(); c < n {
			if h.exited() {
				return errors.New("helper exited: " + h.stderr.String())
			}
			return fmt.Errorf("helper committed %d changes, waiting for %d", c, n)
		}
		return nil
	})
}

func (h *helper) exited() bool {
	select {
	case <-h.eof:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL: no deferred function, no flush, no goodbye.
func (h *helper) kill(t *testing.T) {
	t.Helper()
	_ = h.cmd.Process.Signal(syscall.SIGKILL)
	h.wait()
}

func (h *helper) wait() error {
	h.waitOnce.Do(func() {
		<-h.eof // all of stdout read before Wait closes it
		h.waitErr = h.cmd.Wait()
	})
	return h.waitErr
}

// TestKill9MidOutageAndMidDrain kills the publishing process with SIGKILL
// twice — while the broker is down and while the relay drains the backlog
// after the broker came back — and restarts it on the same SQLite file
// each time. Every change the processes committed is in the stream exactly
// once.
func TestKill9MidOutageAndMidDrain(t *testing.T) {
	ctx := t.Context()
	cfg := fixedBroker(t)
	b := testnats.Start(t, cfg)
	url := b.ClientURL()
	dbPath := filepath.Join(t.TempDir(), "app.db")

	// 1. Normal operation.
	p1 := startHelper(t, dbPath, url, -1)
	p1.waitCommitted(t, 300)
	js := testnats.JetStream(t, testnats.Conn(t, url))
	testnats.Eventually(t, time.Minute, func() error {
		if n, err := streamMsgs(ctx, js); err != nil || n < 100 {
			return fmt.Errorf("stream holds %d events (%v)", n, err)
		}
		return nil
	})

	// 2. The broker goes down; the process goes on committing, then is
	// killed in the middle of the outage.
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	p1.waitCommitted(t, p1.committed.Load()+500)
	p1.kill(t)
	t.Logf("killed during the outage after %d changes", p1.committed.Load())

	// 3. A new process on the same file, still during the outage.
	p2 := startHelper(t, dbPath, url, -1)
	p2.waitCommitted(t, p1.committed.Load()+500)

	// 4. The broker comes back; the process is killed as soon as the relay
	// is seen draining the backlog.
	testnats.Start(t, cfg) // same port and data directory: the same node to its clients
	js = testnats.JetStream(t, testnats.Conn(t, url))
	before, err := streamMsgs(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(time.Millisecond)
	deadline := time.Now().Add(time.Minute)
	for n := before; n == before; {
		<-tick.C
		if n, err = streamMsgs(ctx, js); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the relay did not resume: stream at %d", n)
		}
	}
	tick.Stop()
	p2.kill(t)
	db, err := outbox.OpenSQLite(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ob, err := outbox.New(db, outbox.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	left := depth(t, ob)
	stored, err := streamMsgs(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killed while draining after %d changes: stream %d (was %d at restart), %d rows left", p2.committed.Load(), stored, before, left)
	if left == 0 {
		t.Fatal("the backlog was drained before the kill: not a mid-drain kill")
	}

	// 5. Restart once more, commit a few more changes, drain and exit.
	until := p2.committed.Load() + 200
	p3 := startHelper(t, dbPath, url, int(until))
	select {
	case <-p3.drained:
	case <-time.After(2 * time.Minute):
		t.Fatalf("last process did not drain: %s", p3.stderr.String())
	}
	if err := p3.wait(); err != nil {
		t.Fatalf("last process: %v: %s", err, p3.stderr.String())
	}

	committed := committedIDs(t, db)
	if int64(len(committed)) != until {
		t.Fatalf("%d changes committed, want %d", len(committed), until)
	}
	checkExactlyOnce(t, committed, ids(streamEvents(t, js)))
	if d := depth(t, ob); d != 0 {
		t.Fatalf("outbox depth %d after the drain", d)
	}
}
