package hist

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestBuckets(t *testing.T) {
	// Every bucket starts where the previous one ends, and index maps each
	// bound back to its bucket.
	var next uint64
	for i := range buckets {
		lo, w := bounds(i)
		if lo != next {
			t.Fatalf("bucket %d starts at %d, want %d", i, lo, next)
		}
		if got := index(lo); got != i {
			t.Fatalf("index(%d) = %d, want %d", lo, got, i)
		}
		if got := index(lo + w - 1); got != i {
			t.Fatalf("index(%d) = %d, want %d", lo+w-1, got, i)
		}
		if lo >= Sub && float64(w)/float64(lo) > 1.0/Sub {
			t.Fatalf("bucket %d: width %d too wide for %d", i, w, lo)
		}
		next = lo + w
	}
	if got := index(math.MaxInt64); got >= buckets {
		t.Fatalf("index(MaxInt64) = %d", got)
	}
}

func TestEmpty(t *testing.T) {
	var h Hist
	if h.Count() != 0 || h.Quantile(0.5) != 0 || h.Max() != 0 || h.Min() != 0 || h.Mean() != 0 {
		t.Fatalf("empty histogram: %d %v %v %v %v", h.Count(), h.Quantile(0.5), h.Max(), h.Min(), h.Mean())
	}
}

func TestExactSmallValues(t *testing.T) {
	var h Hist
	for v := range 10 {
		h.Record(time.Duration(v + 1)) // 1..10 ns
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.1, 1}, {0.5, 5}, {0.9, 9}, {0.99, 10}, {1, 10}, {0, 1}} {
		if got := h.Quantile(tc.q); got != tc.want {
			t.Errorf("Quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if h.Min() != 1 || h.Max() != 10 || h.Count() != 10 {
		t.Errorf("min %v max %v count %d", h.Min(), h.Max(), h.Count())
	}
	if h.Mean() != 6 { // 5.5 rounds to 6
		t.Errorf("mean %v", h.Mean())
	}
}

// TestQuantilesWithinError compares with the exact percentiles of a sorted
// sample spanning µs to seconds.
func TestQuantilesWithinError(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Hist
	vals := make([]time.Duration, 100_000)
	for i := range vals {
		vals[i] = time.Duration(math.Exp(r.Float64()*math.Log(1e9))) * time.Nanosecond
		h.Record(vals[i])
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := vals[int(math.Ceil(q*float64(len(vals))))-1]
		got := h.Quantile(q)
		if rel := math.Abs(float64(got-exact)) / float64(exact); rel > 1.0/Sub {
			t.Errorf("p%v = %v, exact %v (%.2f%% off)", q*100, got, exact, rel*100)
		}
	}
	if h.Max() != vals[len(vals)-1] || h.Min() != vals[0] {
		t.Errorf("max %v min %v, want %v %v", h.Max(), h.Min(), vals[len(vals)-1], vals[0])
	}
}

func TestMergeEqualsOne(t *testing.T) {
	var a, b, all Hist
	for i := range 1000 {
		d := time.Duration(i*i) * time.Microsecond
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var m Hist
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(nil)
	m.Merge(&Hist{})
	if m != all {
		t.Fatalf("merged histogram differs: count %d/%d p99 %v/%v", m.Count(), all.Count(), m.Quantile(.99), all.Quantile(.99))
	}
	m.Reset()
	if m.Count() != 0 {
		t.Fatal("Reset kept values")
	}
}

func TestNegativeIsZero(t *testing.T) {
	var h Hist
	h.Record(-time.Second)
	if h.Max() != 0 || h.Min() != 0 || h.Quantile(0.5) != 0 {
		t.Fatalf("negative value: %v %v", h.Max(), h.Quantile(0.5))
	}
}

func BenchmarkRecord(b *testing.B) {
	var h Hist
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Record(time.Duration(i&0xfffff) * time.Microsecond)
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
