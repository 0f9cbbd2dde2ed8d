package subjects_test

import (
	"testing"

	"github.com/arrwdb/arrwcdc/internal/allocs"
	"github.com/arrwdb/arrwcdc/subjects"
)

// TestAllocBudgets: Build returns a new string, its one allocation; Parse
// slices its input and Match compares, so neither allocates.
func TestAllocBudgets(t *testing.T) {
	subj := "events.library." + uuid + ".document.added"
	f := subjects.Filter{LibraryID: uuid, Types: []string{"document.added", "document.deleted"}}
	parsed, err := subjects.Parse(subj)
	if err != nil {
		t.Fatal(err)
	}
	allocs.Check(t,
		allocs.Budget{Name: "Build", Max: 1, Fn: func() {
			if _, err := subjects.Build("events", uuid, "document.added"); err != nil {
				t.Fatal(err)
			}
		}},
		allocs.Budget{Name: "Parse", Max: 0, Fn: func() {
			if _, err := subjects.Parse(subj); err != nil {
				t.Fatal(err)
			}
		}},
		allocs.Budget{Name: "Filter.Match", Max: 0, Fn: func() {
			if !f.Match(parsed) {
				t.Fatal("no match")
			}
		}},
	)
}
