// Package checker is the gap-and-duplicate checker of the delivery tests:
// consumers record the events they got (stream sequence and id), the test
// records what was acknowledged to the publisher, and the checker says
// whether the two sets are equal: nothing missing, nothing twice, nothing
// that was never acknowledged.
//
//	c := checker.New()
//	ack, _ := pub.Publish(ctx, ev)
//	c.Ack(ack.Seq, ack.ID)
//	… handler: c.Record(d.Seq, d.ID)
//	c.Wait(t, 20*time.Second) // every acked event delivered at least once
//	c.Require(t)              // and exactly once, and nothing else
//
// An event is known by its id; an event without an id by its sequence. A
// delivery whose sequence is not 0 must carry the sequence the event was
// acknowledged with. A Checker is safe for concurrent use.
package checker

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// maxListed is how many entries of each kind an error message lists.
const maxListed = 5

// Entry is one event: its stream sequence (0 if unknown) and id.
type Entry struct {
	Seq uint64
	ID  string
	// Count is how many times it was delivered (in Duplicates), or 0.
	Count int
	// Note says what is wrong with an unexpected delivery.
	Note string
}

func (e Entry) String() string {
	s := fmt.Sprintf("seq %d id %q", e.Seq, e.ID)
	if e.Count > 0 {
		s += fmt.Sprintf(" ×%d", e.Count)
	}
	if e.Note != "" {
		s += " (" + e.Note + ")"
	}
	return s
}

// Checker compares deliveries against the acknowledged events.
type Checker struct {
	mu         sync.Mutex
	acked      map[string]uint64   // key -> acked seq (0 if unknown)
	ackedOrder []string            // keys in Ack order
	delivered  map[string][]uint64 // key -> seqs of its deliveries
	order      []string            // keys in first-delivery order
	deliveries int
	// outstanding counts acknowledged events not delivered yet.
	outstanding int
	changed     chan struct{} // closed and replaced on every Record
}

// New returns an empty Checker.
func New() *Checker {
	return &Checker{acked: map[string]uint64{}, delivered: map[string][]uint64{}, changed: make(chan struct{})}
}

func key(seq uint64, id string) string {
	if id != "" {
		return id
	}
	return fmt.Sprintf("seq:%d", seq)
}

// Ack adds an acknowledged event: it must be delivered exactly once.
// Acking the same event twice is the same as once.
func (c *Checker) Ack(seq uint64, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := key(seq, id)
	if _, ok := c.acked[k]; !ok {
		c.ackedOrder = append(c.ackedOrder, k)
		if _, got := c.delivered[k]; !got {
			c.outstanding++
		}
	}
	c.acked[k] = seq
}

// Record adds a delivery.
func (c *Checker) Record(seq uint64, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := key(seq, id)
	if _, ok := c.delivered[k]; !ok {
		c.order = append(c.order, k)
		if _, acked := c.acked[k]; acked {
			c.outstanding--
		}
	}
	c.delivered[k] = append(c.delivered[k], seq)
	c.deliveries++
	close(c.changed)
	c.changed = make(chan struct{})
}

// Deliveries returns how many deliveries were recorded.
func (c *Checker) Deliveries() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deliveries
}

// Distinct returns how many distinct events were delivered.
func (c *Checker) Distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.delivered)
}

// Acked returns how many distinct events were acknowledged.
func (c *Checker) Acked() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.acked)
}

// Seqs returns the sequences of the deliveries in the order of their
// first delivery (the first sequence of each event).
func (c *Checker) Seqs() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]uint64, 0, len(c.order))
	for _, k := range c.order {
		out = append(out, c.delivered[k][0])
	}
	return out
}

// Missing returns the acknowledged events never delivered, by sequence.
func (c *Checker) Missing() []Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Entry
	for _, k := range c.ackedOrder {
		if _, ok := c.delivered[k]; !ok {
			out = append(out, c.entry(k, c.acked[k]))
		}
	}
	return sortBySeq(out)
}

// Duplicates returns the events delivered more than once, with Count.
func (c *Checker) Duplicates() []Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Entry
	for _, k := range c.order {
		if seqs := c.delivered[k]; len(seqs) > 1 {
			e := c.entry(k, seqs[0])
			e.Count = len(seqs)
			if slices.ContainsFunc(seqs, func(s uint64) bool { return s != seqs[0] }) {
				e.Note = fmt.Sprintf("at seqs %v", seqs)
			}
			out = append(out, e)
		}
	}
	return sortBySeq(out)
}

// Unexpected returns deliveries of events that were not acknowledged, and
// of acknowledged events at another sequence than the acknowledged one.
func (c *Checker) Unexpected() []Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Entry
	for _, k := range c.order {
		seqs := c.delivered[k]
		ackedSeq, ok := c.acked[k]
		if !ok {
			e := c.entry(k, seqs[0])
			e.Note = "never acknowledged"
			out = append(out, e)
			continue
		}
		for _, s := range seqs {
			if s != 0 && ackedSeq != 0 && s != ackedSeq {
				e := c.entry(k, s)
				e.Note = fmt.Sprintf("acknowledged at seq %d", ackedSeq)
				out = append(out, e)
				break
			}
		}
	}
	return sortBySeq(out)
}

func (c *Checker) entry(k string, seq uint64) Entry {
	if strings.HasPrefix(k, "seq:") {
		return Entry{Seq: seq}
	}
	return Entry{Seq: seq, ID: k}
}

func sortBySeq(es []Entry) []Entry {
	slices.SortStableFunc(es, func(a, b Entry) int { return cmp.Compare(a.Seq, b.Seq) })
	return es
}

// Err returns nil if every acknowledged event was delivered exactly once
// and nothing else was, and otherwise an error that counts each kind of
// problem and lists the first few of each.
func (c *Checker) Err() error {
	missing, dups, unexpected := c.Missing(), c.Duplicates(), c.Unexpected()
	if len(missing)+len(dups)+len(unexpected) == 0 {
		return nil
	}
	c.mu.Lock()
	head := fmt.Sprintf("checker: %d acknowledged, %d delivered (%d deliveries)", len(c.acked), len(c.delivered), c.deliveries)
	c.mu.Unlock()
	var b strings.Builder
	b.WriteString(head)
	list := func(what string, es []Entry) {
		if len(es) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n  %d %s:", len(es), what)
		for _, e := range es[:min(len(es), maxListed)] {
			b.WriteString(" " + e.String() + ";")
		}
		if len(es) > maxListed {
			fmt.Fprintf(&b, " …")
		}
		if what == "missing" {
			b.WriteString(" gaps: " + gaps(es))
		}
	}
	list("missing", missing)
	list("duplicated", dups)
	list("unexpected", unexpected)
	return errors.New(b.String())
}

// gaps describes missing sequences as ranges: "5-9, 17".
func gaps(es []Entry) string {
	var parts []string
	for i := 0; i < len(es) && len(parts) < maxListed; {
		j := i
		for j+1 < len(es) && es[j+1].Seq == es[j].Seq+1 {
			j++
		}
		if i == j {
			parts = append(parts, fmt.Sprint(es[i].Seq))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", es[i].Seq, es[j].Seq))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}

// Require acknowledges acked, then fails t (Fatal) unless every
// acknowledged event was delivered exactly once and nothing else was.
func (c *Checker) Require(t testing.TB, acked ...Entry) {
	t.Helper()
	for _, e := range acked {
		c.Ack(e.Seq, e.ID)
	}
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
}

// Wait waits until every acknowledged event was delivered at least once,
// failing t (Fatal) with the checker's report if timeout passes first.
func (c *Checker) Wait(t testing.TB, timeout time.Duration) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		c.mu.Lock()
		changed, done := c.changed, c.outstanding == 0
		c.mu.Unlock()
		if done {
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			err := c.Err()
			if err == nil {
				err = errors.New("checker: not complete")
			}
			t.Fatalf("not every acknowledged event delivered within %v: %v", timeout, err)
		}
	}
}

// WaitDeliveries waits until at least n deliveries were recorded.
func (c *Checker) WaitDeliveries(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		c.mu.Lock()
		changed, got := c.changed, c.deliveries
		c.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			t.Fatalf("checker: %d deliveries within %v, want %d", got, timeout, n)
		}
	}
}
