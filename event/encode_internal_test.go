package event

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/arrwdb/arrwcdc/subjects"
)

// TestEncodedLen: Encode sizes its buffer exactly, plus encodeSpare, for
// events whose strings need no escapes, with and without the optional
// members; escapes only make it grow.
func TestEncodedLen(t *testing.T) {
	base := Event{Type: TypeDocumentAdded, LibraryID: "550e8400-e29b-41d4-a716-446655440000",
		Timestamp: time.Date(2025, 10, 27, 6, 1, 0, 0, time.UTC)}
	var evs []Event
	for _, id := range []string{"", "0193f1d2-8c4e-7b3a-9d2f-2c6e5a7b8c9d"} {
		for _, source := range []string{"", "app-1"} {
			for _, data := range []json.RawMessage{nil, json.RawMessage(`{}`), json.RawMessage(`{"k":[1,"v"]}`)} {
				ev := base
				ev.ID, ev.Source, ev.Data = id, source, data
				evs = append(evs, ev)
			}
		}
	}
	for _, ev := range evs {
		buf, err := Encode(&ev, 0)
		if err != nil {
			t.Fatal(err)
		}
		if n := encodedLen(&ev); n != len(buf) || cap(buf) != n+encodeSpare {
			t.Fatalf("encodedLen(%+v) = %d, encoded %d bytes in a buffer of %d", ev, n, len(buf), cap(buf))
		}
	}
	ev := base
	ev.Source = `"quoted" \ source`
	buf, err := Encode(&ev, 0)
	if err != nil || len(buf) <= encodedLen(&ev) {
		t.Fatalf("Encode(%+v) = %d bytes, %v; want more than %d", ev, len(buf), err, encodedLen(&ev))
	}
}

// TestBuiltinType: the types Validate takes as valid without looking at
// their tokens are exactly BuiltinTypes, each valid, and each is returned
// as itself.
func TestBuiltinType(t *testing.T) {
	for _, typ := range BuiltinTypes {
		if got := builtinType(strings.Clone(typ)); got != typ || subjects.ValidateType(typ) != nil {
			t.Fatalf("built-in type %q: builtinType %q, ValidateType %v", typ, got, subjects.ValidateType(typ))
		}
	}
	for _, typ := range []string{"", "document", "document.added.x", "Document.added", "workflow.completed"} {
		if got := builtinType(typ); got != "" {
			t.Fatalf("builtinType(%q) = %q, want \"\"", typ, got)
		}
	}
}

// TestFoldedNames: each member's folded name is its name as foldName
// folds it, and no two are the same, so that fieldOf may match an escaped
// name by its folded form alone.
func TestFoldedNames(t *testing.T) {
	seen := map[string]bool{}
	for f, name := range fieldNames {
		if got := foldName(name); got != foldedNames[f] || seen[got] {
			t.Fatalf("foldName(%q) = %q, foldedNames has %q (seen before: %v)", name, got, foldedNames[f], seen[got])
		}
		seen[foldedNames[f]] = true
		if got := fieldOf([]byte(`"\u00`+fmt.Sprintf("%02x", name[0])+name[1:]+`"`), false); got != f {
			t.Fatalf("fieldOf of %q escaped = %d, want %d", name, got, f)
		}
	}
}
