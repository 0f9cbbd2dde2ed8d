package subjects_test

import (
	"strings"
	"testing"

	"github.com/arrwdb/arrwcdc/subjects"
)

// FuzzParse: Parse never panics, and whatever it accepts builds back to the
// same string and only holds valid parts.
func FuzzParse(f *testing.F) {
	f.Add("events.library.42.document.added")
	f.Add("prod.events.library." + uuid + ".library.created")
	f.Add("events.library.a.b.c.d")
	f.Add("events.library.*.document.added")
	f.Add("....")
	f.Fuzz(func(t *testing.T, in string) {
		s, err := subjects.Parse(in)
		if err != nil {
			return
		}
		if s.String() != in {
			t.Fatalf("round trip %q -> %q", in, s)
		}
		if strings.ContainsAny(s.LibraryID, ".*> \t\r\n") {
			t.Fatalf("accepted library id %q", s.LibraryID)
		}
		again, err := subjects.Build(s.Prefix, s.LibraryID, s.Type())
		if err != nil || again != in {
			t.Fatalf("Build(Parse(%q)) = %q, %v", in, again, err)
		}
	})
}

// FuzzValidatePattern: an accepted pattern never escapes the prefix.
func FuzzValidatePattern(f *testing.F) {
	f.Add("events.>")
	f.Add("events.library.*.document.added")
	f.Add(">")
	f.Add("events.library.4.2.>")
	f.Fuzz(func(t *testing.T, p string) {
		if err := subjects.ValidatePattern("events", p); err != nil {
			return
		}
		if !strings.HasPrefix(p, "events.") || strings.ContainsAny(p, " \t\r\n") {
			t.Fatalf("accepted %q", p)
		}
		if subjects.MatchPattern(p, "other.library.1.document.added") {
			t.Fatalf("%q matches outside the prefix", p)
		}
	})
}
