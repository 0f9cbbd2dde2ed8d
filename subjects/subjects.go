package subjects

import (
	"errors"
	"fmt"
	"strings"
)

// DefaultPrefix is the prefix of every subject unless configured otherwise.
const DefaultPrefix = "events"

// LivePrefix is prepended by the EVENTS stream's RePublish to every stored
// subject: "live.events.library.<id>.<entity>.<action>".
const LivePrefix = "live"

// MaxLibraryIDLen is the longest library id accepted.
const MaxLibraryIDLen = 128

// maxTypeTokenLen is the longest entity or action accepted.
const maxTypeTokenLen = 64

// Sentinel errors. Every error of this package wraps exactly one of them.
var (
	ErrInvalidLibraryID = errors.New("invalid library id")
	ErrInvalidType      = errors.New("invalid event type")
	ErrInvalidPrefix    = errors.New("invalid subject prefix")
	ErrInvalidSubject   = errors.New("invalid subject")
	ErrInvalidPattern   = errors.New("invalid subject pattern")
)

// Subject is a parsed event subject.
type Subject struct {
	Prefix    string // "events" or "prod.events"
	LibraryID string
	Entity    string // "document"
	Action    string // "added"
}

// Type is the event type "<entity>.<action>".
func (s Subject) Type() string { return s.Entity + "." + s.Action }

// String builds the subject. It does not validate: use [Build] for input
// from outside, or call [Subject.Validate] first.
func (s Subject) String() string {
	return s.Prefix + ".library." + s.LibraryID + "." + s.Entity + "." + s.Action
}

// Validate reports the first invalid part of s.
func (s Subject) Validate() error {
	if err := ValidatePrefix(s.Prefix); err != nil {
		return err
	}
	if err := ValidateLibraryID(s.LibraryID); err != nil {
		return err
	}
	if !validTypeToken(s.Entity) || !validTypeToken(s.Action) {
		return fmt.Errorf("%w: %q", ErrInvalidType, s.Entity+"."+s.Action)
	}
	return nil
}

// Build returns the subject of an event of type typ in library libraryID
// under prefix. It allocates once: the returned string.
func Build(prefix, libraryID, typ string) (string, error) {
	if err := ValidatePrefix(prefix); err != nil {
		return "", err
	}
	if err := ValidateLibraryID(libraryID); err != nil {
		return "", err
	}
	if err := ValidateType(typ); err != nil {
		return "", err
	}
	return prefix + ".library." + libraryID + "." + typ, nil
}

// Parse splits an event subject into its parts. The prefix is every token
// before the last four ("library", id, entity, action).
// Errors wrap [ErrInvalidSubject].
func Parse(subject string) (Subject, error) {
	// Walk back over the last four dots without allocating a token slice.
	end := len(subject)
	var cuts [4]int // positions of the dots before action, entity, id, "library"
	for i := range cuts {
		j := strings.LastIndexByte(subject[:end], '.')
		if j < 0 {
			return Subject{}, fmt.Errorf("%w: %q: want <prefix>.library.<library_id>.<entity>.<action>", ErrInvalidSubject, subject)
		}
		cuts[i] = j
		end = j
	}
	s := Subject{
		Prefix:    subject[:cuts[3]],
		LibraryID: subject[cuts[2]+1 : cuts[1]],
		Entity:    subject[cuts[1]+1 : cuts[0]],
		Action:    subject[cuts[0]+1:],
	}
	if subject[cuts[3]+1:cuts[2]] != "library" {
		return Subject{}, fmt.Errorf("%w: %q: want <prefix>.library.<library_id>.<entity>.<action>", ErrInvalidSubject, subject)
	}
	if err := s.Validate(); err != nil {
		return Subject{}, fmt.Errorf("%w: %q: %w", ErrInvalidSubject, subject, err)
	}
	return s, nil
}

// ValidateLibraryID reports whether id is one token of [A-Za-z0-9_-]{1,128}.
// Errors wrap [ErrInvalidLibraryID] and quote id.
func ValidateLibraryID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidLibraryID)
	}
	if len(id) > MaxLibraryIDLen {
		return fmt.Errorf("%w: %q: longer than %d characters", ErrInvalidLibraryID, truncate(id), MaxLibraryIDLen)
	}
	for i := 0; i < len(id); i++ {
		if !idByte(id[i]) {
			return fmt.Errorf("%w: %q: character %q at %d is not one of [A-Za-z0-9_-]", ErrInvalidLibraryID, id, id[i], i)
		}
	}
	return nil
}

// ValidateType reports whether typ is "<entity>.<action>", each token
// [a-z][a-z0-9_-]{0,63}. Errors wrap [ErrInvalidType] and quote typ.
func ValidateType(typ string) error {
	entity, action, ok := strings.Cut(typ, ".")
	if !ok || !validTypeToken(entity) || !validTypeToken(action) {
		return fmt.Errorf("%w: %q: want <entity>.<action>, each [a-z][a-z0-9_-]{0,63}", ErrInvalidType, truncate(typ))
	}
	return nil
}

// ValidatePrefix reports whether prefix is one or more dot-separated tokens
// of [A-Za-z0-9_-]. Errors wrap [ErrInvalidPrefix].
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return fmt.Errorf("%w: empty", ErrInvalidPrefix)
	}
	if len(prefix) > 255 {
		return fmt.Errorf("%w: %q: longer than 255 characters", ErrInvalidPrefix, truncate(prefix))
	}
	tokenLen := 0
	for i := 0; i < len(prefix); i++ {
		c := prefix[i]
		switch {
		case c == '.':
			if tokenLen == 0 {
				return fmt.Errorf("%w: %q: empty token", ErrInvalidPrefix, prefix)
			}
			tokenLen = 0
		case idByte(c):
			tokenLen++
		default:
			return fmt.Errorf("%w: %q: character %q at %d is not one of [A-Za-z0-9_-]", ErrInvalidPrefix, prefix, c, i)
		}
	}
	if tokenLen == 0 {
		return fmt.Errorf("%w: %q: empty token", ErrInvalidPrefix, prefix)
	}
	return nil
}

// Live returns the live (republished) twin of subject or pattern.
func Live(subject string) string { return LivePrefix + "." + subject }

// FromLive strips the live prefix added by RePublish. It reports false if
// subject does not start with it.
func FromLive(subject string) (string, bool) {
	return strings.CutPrefix(subject, LivePrefix+".")
}

func idByte(c byte) bool { return idBytes[c] }

// idBytes marks the bytes of [A-Za-z0-9_-]: one load a byte where the
// ranges took a few compares (library ids are checked on every publish,
// and again on receipt).
var idBytes = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
	}
	return t
}()

func validTypeToken(t string) bool {
	if t == "" || len(t) > maxTypeTokenLen || t[0] < 'a' || t[0] > 'z' {
		return false
	}
	for i := 1; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// truncate keeps error messages short when the bad value is huge.
func truncate(s string) string {
	const limit = 160
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "…"
}
