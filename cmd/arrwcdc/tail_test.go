package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/testnats"
	"github.com/arrwdb/arrwcdc/publisher"
)

// publishTail publishes one document.added event per library in libs,
// in order, and returns their acks.
func publishTail(t *testing.T, pub *publisher.Publisher, libs ...string) []publisher.Ack {
	t.Helper()
	var acks []publisher.Ack
	for i, lib := range libs {
		ack, err := pub.Publish(t.Context(), event.Event{Type: event.TypeDocumentAdded, LibraryID: lib,
			Data: json.RawMessage(fmt.Sprintf(`{"document_id":"d-%d"}`, i))})
		if err != nil {
			t.Fatal(err)
		}
		acks = append(acks, ack)
	}
	return acks
}

// waitLines waits until the command printed n lines and returns them.
func (r *running) waitLines(t *testing.T, n int) []string {
	t.Helper()
	var lines []string
	testnats.Eventually(t, 20*time.Second, func() error {
		lines = strings.Split(strings.TrimSuffix(r.stdout.String(), "\n"), "\n")
		if r.stdout.String() == "" {
			lines = nil
		}
		if len(lines) < n {
			return fmt.Errorf("%d lines, want %d: %q (stderr %q)", len(lines), n, r.stdout, r.stderr)
		}
		return nil
	})
	return lines
}

// jsonLine is what tail --json prints.
type jsonLine struct {
	ID        string          `json:"id"`
	Seq       uint64          `json:"seq"`
	Type      string          `json:"type"`
	LibraryID string          `json:"library_id"`
	Data      json.RawMessage `json:"data"`
}

func parseJSONLines(t *testing.T, lines []string) []jsonLine {
	t.Helper()
	var out []jsonLine
	for _, l := range lines {
		var j jsonLine
		if err := json.Unmarshal([]byte(l), &j); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		out = append(out, j)
	}
	return out
}

func newTailPublisher(t *testing.T, url string) *publisher.Publisher {
	t.Helper()
	pub, err := publisher.New(testnats.Conn(t, url))
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func TestTailSinceSeq(t *testing.T) {
	b := testnats.Broker(t)
	pub := newTailPublisher(t, b.ClientURL())
	acks := publishTail(t, pub, "lib-1", "lib-2", "lib-1", "lib-2", "lib-1", "lib-2")

	tail := start(t, "", "tail", "--nats-url", b.ClientURL(), "--json", "--since-seq", "4")
	tail.waitLines(t, 3)
	// Then live: the next one follows, with its seq.
	acks = append(acks, publishTail(t, pub, "lib-3")...)
	tail.waitLines(t, 4)
	if err := tail.stop(t); err != nil {
		t.Fatalf("tail: %v", err)
	}
	got := parseJSONLines(t, tail.waitLines(t, 4))
	if len(got) != 4 {
		t.Fatalf("printed %d lines:\n%s", len(got), tail.stdout)
	}
	for i, j := range got {
		want := acks[3+i]
		if j.Seq != want.Seq || j.ID != want.ID || j.Type != event.TypeDocumentAdded {
			t.Errorf("line %d: %+v, want seq %d id %s", i, j, want.Seq, want.ID)
		}
	}
	// "seq" comes right after "id", like the bridge's frames.
	if line := strings.SplitN(tail.stdout.String(), "\n", 2)[0]; !strings.HasPrefix(line, `{"id":"`+acks[3].ID+`","seq":4,"type":"document.added"`) {
		t.Errorf("line %s", line)
	}
}

func TestTailAllPretty(t *testing.T) {
	b := testnats.Broker(t)
	pub := newTailPublisher(t, b.ClientURL())
	acks := publishTail(t, pub, "lib-a", "lib-b", "lib-a", "lib-b")

	tail := start(t, "", "tail", "--nats-url", b.ClientURL(), "--all", "--library", "lib-b")
	tail.waitLines(t, 2)
	acks = append(acks, publishTail(t, pub, "lib-a", "lib-b")...)
	tail.waitLines(t, 3)
	if err := tail.stop(t); err != nil {
		t.Fatal(err)
	}
	lines := tail.waitLines(t, 3)
	if len(lines) != 3 {
		t.Fatalf("printed %d lines:\n%s", len(lines), tail.stdout)
	}
	seqRx := regexp.MustCompile(` seq=(\d+) `)
	var seqs []uint64
	for _, l := range lines {
		m := seqRx.FindStringSubmatch(l)
		if m == nil || !strings.Contains(l, "library=lib-b") {
			t.Fatalf("line %q", l)
		}
		n, _ := strconv.ParseUint(m[1], 10, 64)
		seqs = append(seqs, n)
	}
	if want := []uint64{acks[1].Seq, acks[3].Seq, acks[5].Seq}; !slices.Equal(seqs, want) {
		t.Fatalf("seqs %v, want %v", seqs, want)
	}
}

func TestTailSinceTime(t *testing.T) {
	b := testnats.Broker(t)
	pub := newTailPublisher(t, b.ClientURL())
	publishTail(t, pub, "lib-1", "lib-1", "lib-1")
	// Acknowledged means stored: the three are stored before since, the
	// next two after.
	since := time.Now()
	acks := publishTail(t, pub, "lib-1", "lib-2")

	tail := start(t, "", "tail", "--nats-url", b.ClientURL(), "--json", "--since-time", since.Format(time.RFC3339Nano))
	tail.waitLines(t, 2)
	if err := tail.stop(t); err != nil {
		t.Fatal(err)
	}
	got := parseJSONLines(t, tail.waitLines(t, 2))
	if len(got) != 2 || got[0].Seq != acks[0].Seq || got[1].Seq != acks[1].Seq || got[1].ID != acks[1].ID {
		t.Fatalf("printed %+v, want seqs %d, %d", got, acks[0].Seq, acks[1].Seq)
	}
}

func TestTailReplayBadValues(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--since-seq", "abc"}, `--since-seq "abc"`},
		{[]string{"--since-seq", "0"}, "--since-seq"},
		{[]string{"--since-seq=-3"}, "--since-seq"},
		{[]string{"--since-time", "yesterday"}, `--since-time "yesterday": want an RFC 3339 time`},
		{[]string{"--since-seq", "3", "--all"}, "all: cannot be combined with --since-seq"},
		{[]string{"--since-time", "2025-10-27T06:01:00Z", "--all"}, "all: cannot be combined with --since-time"},
		{[]string{"--since-seq", "3", "--since-time", "2025-10-27T06:01:00Z"}, "since-time"},
	} {
		args := append([]string{"tail", "--nats-url", "nats://127.0.0.1:1"}, tt.args...)
		if _, err := runOnce(t, "", args...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("tail %v: %v, want an error with %q", tt.args, err, tt.want)
		}
	}
}
