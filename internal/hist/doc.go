// Package hist is a small log-linear histogram of durations, in the manner
// of HdrHistogram: buckets are powers of two split into [Sub] linear
// sub-buckets, so any recorded value is known to within 1/[Sub] of itself
// (a quantile is reported at its bucket's middle, within about 1.6%), from
// 1 ns to centuries, in a fixed 15 KiB array and with no allocation per
// value.
//
// A [Hist] is not safe for concurrent use: give each goroutine its own and
// [Hist.Merge] them at the end, which is exact (merging adds counts).
package hist
