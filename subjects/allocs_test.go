package subjects_test

import (
	"testing"

	"github.com/arrwdb/arrwcdc/subjects"
)

// TestAllocBudgets holds the hot paths to their allocation budgets
// (counts, not times: they do not vary with the machine's load). Build
// returns a new string, its one allocation; Parse slices its input and
// Match compares, so neither allocates.
func TestAllocBudgets(t *testing.T) {
	subj := "events.library." + uuid + ".document.added"
	f := subjects.Filter{LibraryID: uuid, Types: []string{"document.added", "document.deleted"}}
	parsed, err := subjects.Parse(subj)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		budget float64
		fn     func()
	}{
		{"Build", 1, func() {
			if _, err := subjects.Build("events", uuid, "document.added"); err != nil {
				t.Fatal(err)
			}
		}},
		{"Parse", 0, func() {
			if _, err := subjects.Parse(subj); err != nil {
				t.Fatal(err)
			}
		}},
		{"Filter.Match", 0, func() {
			if !f.Match(parsed) {
				t.Fatal("no match")
			}
		}},
	} {
		if got := testing.AllocsPerRun(100, c.fn); got > c.budget {
			t.Errorf("%s: %.1f allocations a call, budget %.0f", c.name, got, c.budget)
		}
	}
}
