package outbox

import (
	"fmt"
	"slices"
	"testing"
)

func TestDeleteIDsStatements(t *testing.T) {
	type stmt struct {
		q    string
		args []any
	}
	collect := func(d Dialect, ids []int64) []stmt {
		var out []stmt
		for q, args := range d.deleteIDs("t", ids) {
			out = append(out, stmt{q, args})
		}
		return out
	}
	for name, tc := range map[string]struct {
		d    Dialect
		ids  []int64
		want []stmt
	}{
		"none":            {SQLite, nil, nil},
		"one":             {SQLite, []int64{7}, []stmt{{`DELETE FROM t WHERE id IN (?)`, []any{int64(7)}}}},
		"a batch":         {SQLite, []int64{3, 4, 5, 6}, []stmt{{`DELETE FROM t WHERE id BETWEEN ? AND ?`, []any{int64(3), int64(6)}}}},
		"gaps":            {SQLite, []int64{1, 2, 4, 6, 7, 8, 10}, []stmt{{`DELETE FROM t WHERE id BETWEEN ? AND ? OR id BETWEEN ? AND ? OR id IN (?,?)`, []any{int64(1), int64(2), int64(6), int64(8), int64(4), int64(10)}}}},
		"postgresql gaps": {PostgreSQL, []int64{1, 2, 4}, []stmt{{`DELETE FROM t WHERE id BETWEEN $1 AND $2 OR id IN ($3)`, []any{int64(1), int64(2), int64(4)}}}},
	} {
		if got := collect(tc.d, tc.ids); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: got %v, want %v", name, got, tc.want)
		}
	}

	// Every other id: singles only, split into statements of at most
	// deleteTerms placeholders that cover every id once.
	var ids []int64
	for i := range 2*deleteTerms + 5 {
		ids = append(ids, int64(2*i))
	}
	var covered []int64
	for _, s := range collect(SQLite, ids) {
		if len(s.args) > deleteTerms {
			t.Fatalf("%d placeholders", len(s.args))
		}
		for _, a := range s.args {
			covered = append(covered, a.(int64))
		}
	}
	if !slices.Equal(covered, ids) {
		t.Fatalf("statements cover %d ids, want %d", len(covered), len(ids))
	}
}
