package checker_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/arrwdb/arrwcdc/internal/checker"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeT records Fatal instead of stopping the test.
type fakeT struct {
	testing.TB
	mu     sync.Mutex
	failed string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatal(args ...any) {
	f.mu.Lock()
	f.failed = fmt.Sprint(args...)
	f.mu.Unlock()
	panic(f)
}
func (f *fakeT) Fatalf(format string, args ...any) { f.Fatal(fmt.Sprintf(format, args...)) }

// fails runs fn with a fakeT and returns its Fatal message ("" if none).
func fails(fn func(t testing.TB)) (msg string) {
	f := &fakeT{}
	defer func() {
		if r := recover(); r != nil && r != f {
			panic(r)
		}
		msg = f.failed
	}()
	fn(f)
	return ""
}

func id(seq uint64) string { return fmt.Sprintf("ev-%d", seq) }

func TestExactlyOnce(t *testing.T) {
	c := checker.New()
	for s := uint64(1); s <= 100; s++ {
		c.Ack(s, id(s))
	}
	var wg sync.WaitGroup
	for w := range 4 { // deliveries from several goroutines, in any order
		wg.Go(func() {
			for s := uint64(100 - w); s >= 1; s -= 4 {
				c.Record(s, id(s))
				if s <= 4 {
					break
				}
			}
		})
	}
	wg.Wait()
	if m, d, u := c.Missing(), c.Duplicates(), c.Unexpected(); len(m)+len(d)+len(u) != 0 {
		t.Fatalf("missing %v, dups %v, unexpected %v", m, d, u)
	}
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	c.Require(t)
	c.Wait(t, time.Second)
	if c.Deliveries() != 100 || c.Distinct() != 100 || c.Acked() != 100 {
		t.Fatalf("deliveries %d distinct %d acked %d", c.Deliveries(), c.Distinct(), c.Acked())
	}
}

func TestProblems(t *testing.T) {
	c := checker.New()
	for s := uint64(1); s <= 20; s++ {
		c.Ack(s, id(s))
	}
	for s := uint64(1); s <= 20; s++ {
		switch {
		case s >= 5 && s <= 9, s == 17: // gaps
		case s == 3 || s == 12:
			c.Record(s, id(s))
			c.Record(s, id(s)) // redelivered
		default:
			c.Record(s, id(s))
		}
	}
	c.Record(21, id(21))  // never acknowledged
	c.Record(40, id(2))   // acknowledged at 2, delivered at 40 too
	c.Record(0, id(1000)) // core NATS delivery: no seq, unknown id

	missing := c.Missing()
	if got := seqs(missing); got != "5 6 7 8 9 17" {
		t.Errorf("missing %s", got)
	}
	dups := c.Duplicates()
	if got := seqs(dups); got != "2 3 12" || dups[1].Count != 2 || !strings.Contains(dups[0].Note, "[2 40]") {
		t.Errorf("duplicates %v", dups)
	}
	unexpected := c.Unexpected()
	if got := seqs(unexpected); got != "0 21 40" {
		t.Errorf("unexpected %v", unexpected)
	}

	err := c.Err()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"20 acknowledged, 16 delivered (19 deliveries)",
		"6 missing:", `seq 5 id "ev-5";`, "…", "gaps: 5-9, 17",
		"3 duplicated:", `seq 3 id "ev-3" ×2;`,
		"3 unexpected:", `seq 21 id "ev-21" (never acknowledged)`, `seq 40 id "ev-2" (acknowledged at seq 2)`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if msg := fails(func(ft testing.TB) { c.Require(ft) }); !strings.Contains(msg, "gaps: 5-9, 17") {
		t.Errorf("Require: %q", msg)
	}
}

func TestRequireAcksAndNoIDs(t *testing.T) {
	c := checker.New()
	c.Record(7, "")
	c.Record(8, "")
	// Events without ids are known by their sequence.
	c.Require(t, checker.Entry{Seq: 7}, checker.Entry{Seq: 8})
	if msg := fails(func(ft testing.TB) { c.Require(ft, checker.Entry{Seq: 9}) }); !strings.Contains(msg, "1 missing: seq 9") {
		t.Errorf("Require: %q", msg)
	}
	// A core NATS delivery (seq 0) matches an acknowledged id.
	c2 := checker.New()
	c2.Record(0, "a")
	c2.Require(t, checker.Entry{Seq: 3, ID: "a"})
}

func TestWait(t *testing.T) {
	c := checker.New()
	for s := uint64(1); s <= 50; s++ {
		c.Ack(s, id(s))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for s := uint64(1); s <= 50; s++ {
			c.Record(s, id(s))
		}
	}()
	c.Wait(t, 10*time.Second)
	c.WaitDeliveries(t, 50, 10*time.Second)
	<-done
	if got := len(c.Seqs()); got != 50 {
		t.Fatalf("Seqs: %d", got)
	}

	c.Ack(51, id(51))
	if msg := fails(func(ft testing.TB) { c.Wait(ft, 20*time.Millisecond) }); !strings.Contains(msg, "gaps: 51") {
		t.Errorf("Wait: %q", msg)
	}
	if msg := fails(func(ft testing.TB) { c.WaitDeliveries(ft, 60, 20*time.Millisecond) }); !strings.Contains(msg, "50 deliveries") {
		t.Errorf("WaitDeliveries: %q", msg)
	}
}

func TestAckAfterDelivery(t *testing.T) {
	// The handler may see an event before the publisher's ack arrives.
	c := checker.New()
	c.Record(1, "x")
	c.Ack(1, "x")
	c.Ack(1, "x") // twice is once
	c.Wait(t, time.Second)
	c.Require(t)
}

func seqs(es []checker.Entry) string {
	var parts []string
	for _, e := range es {
		parts = append(parts, fmt.Sprint(e.Seq))
	}
	return strings.Join(parts, " ")
}
