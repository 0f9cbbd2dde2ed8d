package allocs

import "testing"

// sink keeps the allocation of overBudget from being optimised away.
var sink []byte

// recorder is a testing.TB that records errors instead of failing.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, format)
}

func TestCheck(t *testing.T) {
	r := &recorder{TB: t}
	Check(r,
		Budget{"free", 0, func() {}},
		Budget{"overBudget", 0, func() { sink = make([]byte, 64) }},
		Budget{"withinBudget", 1, func() { sink = make([]byte, 64) }},
	)
	if len(r.errs) != 1 {
		t.Fatalf("%d budgets reported over, want 1 (overBudget): %q", len(r.errs), r.errs)
	}
}
