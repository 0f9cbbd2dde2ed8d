package subjects_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/arrwdb/arrwcdc/subjects"
)

const uuid = "550e8400-e29b-41d4-a716-446655440000"

func TestBuildParseRoundTrip(t *testing.T) {
	cases := []struct{ prefix, lib, typ string }{
		{"events", uuid, "document.added"},
		{"prod.events", "lib_1", "library.created"},
		{"a.b.c", strings.Repeat("x", 128), "workflow.completed"},
		{"events", "L", "search.performed"},
		{"events", "42", "x-y.z_1"},
	}
	for _, c := range cases {
		subj, err := subjects.Build(c.prefix, c.lib, c.typ)
		if err != nil {
			t.Fatalf("Build(%q,%q,%q): %v", c.prefix, c.lib, c.typ, err)
		}
		s, err := subjects.Parse(subj)
		if err != nil {
			t.Fatalf("Parse(%q): %v", subj, err)
		}
		if s.Prefix != c.prefix || s.LibraryID != c.lib || s.Type() != c.typ {
			t.Errorf("Parse(%q) = %+v", subj, s)
		}
		if s.String() != subj {
			t.Errorf("String() = %q, want %q", s.String(), subj)
		}
	}
}

func TestBuildRejects(t *testing.T) {
	cases := []struct {
		name, prefix, lib, typ string
		want                   error
	}{
		{"dot in id", "events", "a.b", "document.added", subjects.ErrInvalidLibraryID},
		{"star id", "events", "*", "document.added", subjects.ErrInvalidLibraryID},
		{"gt id", "events", ">", "document.added", subjects.ErrInvalidLibraryID},
		{"space id", "events", "a b", "document.added", subjects.ErrInvalidLibraryID},
		{"tab id", "events", "a\tb", "document.added", subjects.ErrInvalidLibraryID},
		{"empty id", "events", "", "document.added", subjects.ErrInvalidLibraryID},
		{"129 chars", "events", strings.Repeat("a", 129), "document.added", subjects.ErrInvalidLibraryID},
		{"unicode id", "events", "bibliothèque", "document.added", subjects.ErrInvalidLibraryID},
		{"upper type", "events", "1", "Document.added", subjects.ErrInvalidType},
		{"three tokens", "events", "1", "document.added.now", subjects.ErrInvalidType},
		{"one token", "events", "1", "document", subjects.ErrInvalidType},
		{"wildcard type", "events", "1", "document.*", subjects.ErrInvalidType},
		{"digit first", "events", "1", "1doc.added", subjects.ErrInvalidType},
		{"long token", "events", "1", "d." + strings.Repeat("a", 65), subjects.ErrInvalidType},
		{"empty prefix", "", "1", "document.added", subjects.ErrInvalidPrefix},
		{"prefix dots", "events..x", "1", "document.added", subjects.ErrInvalidPrefix},
		{"prefix trailing dot", "events.", "1", "document.added", subjects.ErrInvalidPrefix},
		{"prefix wildcard", "events.*", "1", "document.added", subjects.ErrInvalidPrefix},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := subjects.Build(c.prefix, c.lib, c.typ)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

func TestErrorNamesBadValue(t *testing.T) {
	_, err := subjects.Build("events", "lib.evil", "document.added")
	if err == nil || !strings.Contains(err.Error(), `"lib.evil"`) {
		t.Fatalf("error %v does not name the bad id", err)
	}
	_, err = subjects.Build("events", "1", "Bad.Type")
	if err == nil || !strings.Contains(err.Error(), `"Bad.Type"`) {
		t.Fatalf("error %v does not name the bad type", err)
	}
}

func TestParseRejects(t *testing.T) {
	for _, in := range []string{
		"", "events", "events.library.1.document", "events.lib.1.document.added",
		"library.1.document.added", "events.library.1.document.added.",
		"events.library..document.added", "events.library.*.document.added",
		"events.library.1.Document.added", ".library.1.document.added",
		"events.library.1.document.>",
	} {
		if s, err := subjects.Parse(in); !errors.Is(err, subjects.ErrInvalidSubject) {
			t.Errorf("Parse(%q) = %+v, %v; want ErrInvalidSubject", in, s, err)
		}
	}
}

func TestFilterSubjects(t *testing.T) {
	cases := []struct {
		f    subjects.Filter
		want []string
	}{
		{subjects.Filter{}, []string{"events.library.*.>"}},
		{subjects.Filter{Prefix: "p.q", LibraryID: "7"}, []string{"p.q.library.7.>"}},
		{subjects.Filter{Types: []string{"document.added"}}, []string{"events.library.*.document.added"}},
		{subjects.Filter{Types: []string{"document.*"}}, []string{"events.library.*.document.*"}},
		{subjects.Filter{LibraryID: "7", Types: []string{"document.added", "document.deleted", "document.added"}},
			[]string{"events.library.7.document.added", "events.library.7.document.deleted"}},
	}
	for _, c := range cases {
		got, err := c.f.Subjects()
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%+v.Subjects() = %v, %v; want %v", c.f, got, err, c.want)
		}
	}
	if _, err := (subjects.Filter{LibraryID: "a.>"}).Subjects(); !errors.Is(err, subjects.ErrInvalidLibraryID) {
		t.Errorf("bad library id: err = %v", err)
	}
	if _, err := (subjects.Filter{Types: []string{">"}}).Subjects(); !errors.Is(err, subjects.ErrInvalidType) {
		t.Errorf("bad type: err = %v", err)
	}
}

func TestFilterMatchAgreesWithPatterns(t *testing.T) {
	filters := []subjects.Filter{
		{},
		{LibraryID: "a"},
		{Types: []string{"document.added"}},
		{Types: []string{"document.*"}},
		{Types: []string{"*.deleted"}},
		{LibraryID: "b", Types: []string{"library.created", "search.performed"}},
	}
	var subs []string
	for _, lib := range []string{"a", "b"} {
		for _, typ := range []string{"document.added", "document.deleted", "library.created", "library.deleted", "search.performed"} {
			s, _ := subjects.Build("events", lib, typ)
			subs = append(subs, s)
		}
	}
	subs = append(subs, "other.library.a.document.added")
	for _, f := range filters {
		pats, err := f.Subjects()
		if err != nil {
			t.Fatal(err)
		}
		for _, subj := range subs {
			want := slices.ContainsFunc(pats, func(p string) bool { return subjects.MatchPattern(p, subj) })
			s, err := subjects.Parse(subj)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Match(s); got != want {
				t.Errorf("%+v.Match(%s) = %v, patterns %v say %v", f, subj, got, pats, want)
			}
		}
	}
}

func TestMatchPattern(t *testing.T) {
	cases := []struct {
		pat, subj string
		want      bool
	}{
		{"events.>", "events.library.1.document.added", true},
		{"events.>", "events", false},
		{"events.library.*.document.added", "events.library.1.document.added", true},
		{"events.library.*.document.added", "events.library.1.document.deleted", false},
		{"events.library.*.document.*", "events.library.1.document.deleted", true},
		{"events.library.*.document.*", "events.library.1.document", false},
		{"events.library.1.>", "events.library.10.document.added", false},
		{"a.b", "a.b.c", false},
		{"a.b.c", "a.b", false},
	}
	for _, c := range cases {
		if got := subjects.MatchPattern(c.pat, c.subj); got != c.want {
			t.Errorf("MatchPattern(%q, %q) = %v", c.pat, c.subj, got)
		}
	}
}

func TestValidatePattern(t *testing.T) {
	good := []string{"events.>", "events.library.>", "events.library.*.>", "events.library.42.>",
		"events.library.*.document.added", "events.library.*.document.*", "events.*.*.*.*"}
	for _, p := range good {
		if err := subjects.ValidatePattern("events", p); err != nil {
			t.Errorf("ValidatePattern(%q) = %v", p, err)
		}
	}
	bad := []string{">", "*", "events", "events.", "other.>", "events.>.x", "events.library.4.2.x.y",
		"events.library.a b.>", "events.lib.>", "events.library.*.Document.added", "events.library.*.document",
		"events.library..>", "eventsx.>", "events.library.*.document.added.x"}
	for _, p := range bad {
		if err := subjects.ValidatePattern("events", p); !errors.Is(err, subjects.ErrInvalidPattern) {
			t.Errorf("ValidatePattern(%q) = %v, want ErrInvalidPattern", p, err)
		}
	}
}

func TestLive(t *testing.T) {
	live := subjects.Live("events.library.1.document.added")
	if live != "live.events.library.1.document.added" {
		t.Fatalf("Live = %q", live)
	}
	orig, ok := subjects.FromLive(live)
	if !ok || orig != "events.library.1.document.added" {
		t.Fatalf("FromLive = %q, %v", orig, ok)
	}
	if _, ok := subjects.FromLive("events.library.1.document.added"); ok {
		t.Fatal("FromLive accepted a non-live subject")
	}
}

func ExampleParse() {
	s, _ := subjects.Parse("events.library.42.document.added")
	fmt.Println(s.LibraryID, s.Entity, s.Action)
	// Output: 42 document added
}

func ExampleFilter_Subjects() {
	pats, _ := subjects.Filter{LibraryID: "42", Types: []string{"document.added", "document.deleted"}}.Subjects()
	fmt.Println(pats)
	// Output: [events.library.42.document.added events.library.42.document.deleted]
}

func BenchmarkBuild(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := subjects.Build("events", uuid, "document.added"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	subj := "events.library." + uuid + ".document.added"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := subjects.Parse(subj); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFilterMatch(b *testing.B) {
	f := subjects.Filter{LibraryID: uuid, Types: []string{"document.added", "document.deleted"}}
	s, _ := subjects.Parse("events.library." + uuid + ".document.deleted")
	b.ReportAllocs()
	for b.Loop() {
		if !f.Match(s) {
			b.Fatal("no match")
		}
	}
}

// TestLibraryIDBytes: every byte, one at a time, is a library id exactly
// when it is one of [A-Za-z0-9_-].
func TestLibraryIDBytes(t *testing.T) {
	for c := range 256 {
		b := byte(c)
		want := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '_' || b == '-'
		if got := subjects.ValidateLibraryID(string([]byte{b})) == nil; got != want {
			t.Errorf("ValidateLibraryID(%q) accepted: %v, want %v", b, got, want)
		}
	}
}
