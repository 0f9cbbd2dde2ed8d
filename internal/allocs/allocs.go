// Package allocs holds hot paths to allocation budgets in tests: counts,
// not times, so that they do not depend on the machine's load and can
// run in make test.
package allocs

import "testing"

// Budget is the most allocations a call of Fn may make.
type Budget struct {
	Name string
	Max  float64
	Fn   func()
}

// Check runs each budget's Fn (testing.AllocsPerRun, 100 runs) and
// reports each one that allocates more than its Max.
func Check(t testing.TB, budgets ...Budget) {
	t.Helper()
	for _, b := range budgets {
		if got := testing.AllocsPerRun(100, b.Fn); got > b.Max {
			t.Errorf("%s: %.1f allocations a call, budget %.0f", b.Name, got, b.Max)
		}
	}
}
