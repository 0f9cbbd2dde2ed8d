package event_test

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/allocs"
)

func TestAppendTimeMatchesFormat(t *testing.T) {
	times := []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2025, 10, 27, 6, 1, 0, 0, time.UTC),
		time.Date(2025, 10, 27, 6, 1, 0, 1500, time.FixedZone("x", -3600)),
		time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC),      // year 0: the fallback
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),    // year 10000: the fallback
		time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC),       // negative year: the fallback
		time.Date(2024, 2, 29, 12, 0, 0, 999, time.UTC), // under a microsecond
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		times = append(times, time.Unix(r.Int64N(253402300799), r.Int64N(1e9)).In(time.FixedZone("y", r.IntN(86400)-43200)))
	}
	for _, tm := range times {
		want := tm.UTC().Format(event.TimeLayout)
		if got := string(event.AppendTime([]byte("x"), tm)); got != "x"+want {
			t.Fatalf("AppendTime(%v) = %q, want %q", tm, got[1:], want)
		}
	}
}

func TestNewIDIsV7AndIncreasing(t *testing.T) {
	const goroutines, each = 4, 2000
	ids := make([][]string, goroutines)
	var wg sync.WaitGroup
	for g := range ids {
		wg.Go(func() {
			for range each {
				ids[g] = append(ids[g], event.NewID())
			}
		})
	}
	wg.Wait()
	seen := make(map[string]bool, goroutines*each)
	// The embedded time is the clock's (or just above the ID before it):
	// not a minute behind, not a second ahead.
	before, after := time.Now().Add(-time.Minute).UnixMilli(), time.Now().Add(time.Second).UnixMilli()
	for _, list := range ids {
		for i, id := range list {
			u, err := uuid.Parse(id)
			if err != nil || u.Version() != 7 || u.Variant() != uuid.RFC4122 || len(id) != 36 {
				t.Fatalf("id %q: version %v, variant %v, %v", id, u.Version(), u.Variant(), err)
			}
			if sec, nsec := u.Time().UnixTime(); sec*1000+nsec/1e6 < before || sec*1000+nsec/1e6 > after {
				t.Fatalf("id %q carries time %v", id, time.Unix(sec, nsec))
			}
			if seen[id] {
				t.Fatalf("NewID repeated %s", id)
			}
			seen[id] = true
			if i > 0 && id <= list[i-1] {
				t.Fatalf("NewID %s after %s in one goroutine is not increasing", id, list[i-1])
			}
		}
	}
}

func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = event.NewID()
	}
}

func BenchmarkAppendTime(b *testing.B) {
	tm := event.Now()
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = event.AppendTime(buf[:0], tm)
	}
}

// TestIDAndTimeAllocBudgets: NewID allocates uuid's 16-byte array (it
// escapes into the io.Reader the random bits are read through) and the
// string, with or without -race; AppendTime nothing.
func TestIDAndTimeAllocBudgets(t *testing.T) {
	tm := event.Now()
	buf := make([]byte, 0, 64)
	allocs.Check(t,
		allocs.Budget{Name: "NewID", Max: 2, Fn: func() { _ = event.NewID() }},
		allocs.Budget{Name: "AppendTime", Max: 0, Fn: func() { buf = event.AppendTime(buf[:0], tm) }},
	)
}
