package hist

import (
	"math"
	"math/bits"
	"time"
)

const (
	// Sub is the number of linear sub-buckets per power of two; values
	// below Sub nanoseconds are exact.
	Sub     = 32
	subBits = 5 // log2(Sub)
	groups  = 64 - subBits
	buckets = Sub + groups*Sub
)

// Hist counts durations. The zero value is an empty histogram.
type Hist struct {
	counts   [buckets]uint64
	n        uint64
	sum      float64 // ns; float so that long runs cannot overflow
	min, max int64   // ns; valid when n > 0
}

// index is the bucket of v ns (v >= 0).
func index(v uint64) int {
	if v < Sub {
		return int(v)
	}
	g := bits.Len64(v) - 1 - subBits // >= 0
	return Sub + g*Sub + int((v>>uint(g))&(Sub-1))
}

// bounds returns the lowest value of bucket i and its width, in ns.
func bounds(i int) (lo, width uint64) {
	if i < Sub {
		return uint64(i), 1
	}
	g := uint((i - Sub) / Sub)
	m := uint64((i - Sub) % Sub)
	return (Sub + m) << g, 1 << g
}

// Record adds one duration; a negative one (clocks that stepped back)
// counts as 0.
func (h *Hist) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[index(uint64(v))]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// Merge adds every value of o to h.
func (h *Hist) Merge(o *Hist) {
	if o == nil || o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Reset empties h.
func (h *Hist) Reset() { *h = Hist{} }

// Count is the number of recorded values.
func (h *Hist) Count() uint64 { return h.n }

// Min is the smallest recorded value, exactly; 0 when empty.
func (h *Hist) Min() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.min)
}

// Max is the largest recorded value, exactly; 0 when empty.
func (h *Hist) Max() time.Duration { return time.Duration(h.max) }

// Mean is the average of the recorded values; 0 when empty.
func (h *Hist) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(math.Round(h.sum / float64(h.n)))
}

// Quantile returns the q-quantile (0 < q <= 1; q outside is clamped): the
// middle of the bucket that holds the ceil(q·n)-th smallest value, kept
// within [Min, Max]. Quantile(1) is Max; an empty histogram gives 0.
func (h *Hist) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q >= 1 || math.IsNaN(q) {
		return time.Duration(h.max)
	}
	rank := max(uint64(math.Ceil(q*float64(h.n))), 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen < rank {
			continue
		}
		lo, w := bounds(i)
		v := int64(lo + (w-1)/2)
		return time.Duration(min(max(v, h.min), h.max))
	}
	return time.Duration(h.max)
}
