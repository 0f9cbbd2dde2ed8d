package bridge

import (
	"math"
	"math/bits"
	"sync/atomic"
)

// Latency histogram: log-linear buckets over microseconds with 8 linear
// sub-buckets per power of two, so a bucket's width is at most 1/8 of its
// lower bound and a reported percentile is within about 6% of the truth.
// Values below 8 µs are exact; the last bucket holds everything from about
// 25 days up. Histograms of different bridges merge by adding counts.
const (
	histSub     = 8  // linear sub-buckets per power of two
	histGroups  = 42 // powers of two above the exact range
	histBuckets = histSub + histGroups*histSub
)

// hist is a concurrent latency histogram: record is a few atomic adds.
type hist struct {
	counts [histBuckets]atomic.Uint64
	count  atomic.Uint64
	sumUS  atomic.Uint64
	maxUS  atomic.Uint64
}

func histIndex(us uint64) int {
	if us < histSub {
		return int(us)
	}
	exp := bits.Len64(us) - 1 // >= 3
	g := exp - 3
	if g >= histGroups {
		return histBuckets - 1
	}
	return histSub + g*histSub + int((us>>uint(g))&(histSub-1))
}

// histBounds returns the lower bound and the width of bucket i, in µs.
func histBounds(i int) (lo, width uint64) {
	if i < histSub {
		return uint64(i), 1
	}
	g := uint((i - histSub) / histSub)
	m := uint64((i - histSub) % histSub)
	return (histSub + m) << g, 1 << g
}

// histBatch sums values into a hist with a few atomic adds for a whole
// batch instead of a few for each value: the frames one write sends
// mostly fall into one or two buckets. Use one per batch and goroutine;
// call flush at the end.
type histBatch struct {
	h          *hist
	idx        [4]int
	n          [4]uint64
	k          int // buckets in use
	count, sum uint64
	max        uint64
}

func (b *histBatch) record(us uint64) {
	i := histIndex(us)
	b.count++
	b.sum += us
	b.max = max(b.max, us)
	for j := range b.k {
		if b.idx[j] == i {
			b.n[j]++
			return
		}
	}
	if b.k == len(b.idx) {
		b.flushBuckets()
	}
	b.idx[b.k], b.n[b.k] = i, 1
	b.k++
}

func (b *histBatch) flushBuckets() {
	for j := range b.k {
		b.h.counts[b.idx[j]].Add(b.n[j])
	}
	b.k = 0
}

// flush adds what was recorded to the hist.
func (b *histBatch) flush() {
	if b.count == 0 {
		return
	}
	b.flushBuckets()
	b.h.count.Add(b.count)
	b.h.sumUS.Add(b.sum)
	b.h.raiseMax(b.max)
	*b = histBatch{h: b.h}
}

func (h *hist) record(us uint64) {
	h.counts[histIndex(us)].Add(1)
	h.count.Add(1)
	h.sumUS.Add(us)
	h.raiseMax(us)
}

// raiseMax makes maxUS at least us.
func (h *hist) raiseMax(us uint64) {
	for {
		m := h.maxUS.Load()
		if us <= m || h.maxUS.CompareAndSwap(m, us) {
			return
		}
	}
}

// histSnapshot is a plain copy of a hist, for JSON (Buckets is sparse:
// [index, count] pairs in index order) and merging.
type histSnapshot struct {
	Buckets [][2]uint64 `json:"buckets,omitempty"`
	Count   uint64      `json:"count"`
	SumUS   uint64      `json:"sum_us"`
	MaxUS   uint64      `json:"max_us"`
}

func (h *hist) snapshot() histSnapshot {
	var s histSnapshot
	for i := range h.counts {
		if n := h.counts[i].Load(); n > 0 {
			s.Buckets = append(s.Buckets, [2]uint64{uint64(i), n})
		}
	}
	s.Count, s.SumUS, s.MaxUS = h.count.Load(), h.sumUS.Load(), h.maxUS.Load()
	return s
}

// merge adds o into s. Bucket indexes out of range (from a newer bridge)
// go to the last bucket.
func (s *histSnapshot) merge(o histSnapshot) {
	if len(o.Buckets) == 0 && o.Count == 0 {
		return
	}
	var dense [histBuckets]uint64
	for _, b := range s.Buckets {
		dense[min(b[0], histBuckets-1)] += b[1]
	}
	for _, b := range o.Buckets {
		dense[min(b[0], histBuckets-1)] += b[1]
	}
	s.Buckets = s.Buckets[:0]
	for i, n := range dense {
		if n > 0 {
			s.Buckets = append(s.Buckets, [2]uint64{uint64(i), n})
		}
	}
	s.Count += o.Count
	s.SumUS += o.SumUS
	s.MaxUS = max(s.MaxUS, o.MaxUS)
}

// quantileUS returns the q-quantile (0 < q <= 1) in µs: the middle of the
// bucket holding the ceil(q*n)-th value, never above the maximum.
func (s *histSnapshot) quantileUS(q float64) float64 {
	var n uint64
	for _, b := range s.Buckets {
		n += b[1]
	}
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	var seen uint64
	for _, b := range s.Buckets {
		seen += b[1]
		if seen >= rank {
			lo, w := histBounds(int(min(b[0], histBuckets-1)))
			v := float64(lo) + float64(w-1)/2
			return math.Min(v, float64(s.MaxUS))
		}
	}
	return float64(s.MaxUS)
}

// cumulativeBelow returns how many values are < limitUS, exactly when
// limitUS is a power of two of at least histSub (a bucket boundary).
func (s *histSnapshot) cumulativeBelow(limitUS uint64) uint64 {
	var n uint64
	for _, b := range s.Buckets {
		lo, _ := histBounds(int(min(b[0], histBuckets-1)))
		if lo >= limitUS {
			break
		}
		n += b[1]
	}
	return n
}

// Latency is a latency summary in milliseconds.
type Latency struct {
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
	Avg   float64 `json:"avg"`
	Count uint64  `json:"count"`
}

func (s *histSnapshot) latency() Latency {
	l := Latency{
		P50:   ms(s.quantileUS(0.50)),
		P90:   ms(s.quantileUS(0.90)),
		P99:   ms(s.quantileUS(0.99)),
		Max:   ms(float64(s.MaxUS)),
		Count: s.Count,
	}
	if s.Count > 0 {
		l.Avg = ms(float64(s.SumUS) / float64(s.Count))
	}
	return l
}

// ms converts µs to ms rounded to the µs.
func ms(us float64) float64 { return math.Round(us) / 1000 }
