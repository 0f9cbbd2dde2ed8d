package subjects

import (
	"fmt"
	"strings"
)

// All returns the pattern of every event under prefix: "events.>".
func All(prefix string) string { return prefix + ".>" }

// Library returns the pattern of every event of one library:
// "events.library.<id>.>".
func Library(prefix, libraryID string) (string, error) {
	if err := ValidateLibraryID(libraryID); err != nil {
		return "", err
	}
	return prefix + ".library." + libraryID + ".>", nil
}

// Filter selects events by library and type. The zero value (with a Prefix)
// selects everything.
type Filter struct {
	// Prefix of the subjects; "" means [DefaultPrefix].
	Prefix string
	// LibraryID restricts to one library; "" means every library.
	LibraryID string
	// Types restricts to these event types; empty means every type. An entry
	// is a type ("document.added") or a type pattern where the entity or the
	// action is "*" ("document.*" is a family, "*.deleted" one action of
	// every entity).
	Types []string
}

func (f Filter) prefix() string {
	if f.Prefix == "" {
		return DefaultPrefix
	}
	return f.Prefix
}

// Validate reports the first invalid field of f.
func (f Filter) Validate() error {
	if err := ValidatePrefix(f.prefix()); err != nil {
		return err
	}
	if f.LibraryID != "" {
		if err := ValidateLibraryID(f.LibraryID); err != nil {
			return err
		}
	}
	for _, t := range f.Types {
		if err := ValidateTypePattern(t); err != nil {
			return err
		}
	}
	return nil
}

// Subjects returns the NATS subject patterns that together select exactly
// what f selects: one per type, or one for all types. Duplicate types
// collapse into one pattern.
func (f Filter) Subjects() ([]string, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	lib := f.LibraryID
	if lib == "" {
		lib = "*"
	}
	base := f.prefix() + ".library." + lib + "."
	if len(f.Types) == 0 {
		return []string{base + ">"}, nil
	}
	out := make([]string, 0, len(f.Types))
	seen := make(map[string]bool, len(f.Types))
	for _, t := range f.Types {
		if seen[t] {
			continue
		}
		seen[t] = true
		out = append(out, base+t)
	}
	return out, nil
}

// Match reports whether the parsed subject s is selected by f. It assumes f
// is valid.
func (f Filter) Match(s Subject) bool {
	if s.Prefix != f.prefix() {
		return false
	}
	if f.LibraryID != "" && f.LibraryID != s.LibraryID {
		return false
	}
	if len(f.Types) == 0 {
		return true
	}
	for _, t := range f.Types {
		entity, action, _ := strings.Cut(t, ".")
		if (entity == "*" || entity == s.Entity) && (action == "*" || action == s.Action) {
			return true
		}
	}
	return false
}

// ValidateTypePattern accepts an event type or one whose entity or action
// is "*". Errors wrap [ErrInvalidType].
func ValidateTypePattern(p string) error {
	entity, action, ok := strings.Cut(p, ".")
	if !ok || !(entity == "*" || validTypeToken(entity)) || !(action == "*" || validTypeToken(action)) {
		return fmt.Errorf("%w: %q: want <entity>.<action>, each [a-z][a-z0-9_-]{0,63} or *", ErrInvalidType, truncate(p))
	}
	return nil
}

// ValidatePattern checks a NATS subject pattern given by a client (a
// WebSocket ?filter=, a tail --subject): it must start with prefix and then
// follow the event grammar, where any token may be "*" and the last may be
// ">". So "events.>", "events.library.*.document.added" and
// "events.library.42.>" are accepted; "events.library.4.2.x.y", ">",
// "events.*.x" and "events.library.a b.>" are not. Errors wrap
// [ErrInvalidPattern].
func ValidatePattern(prefix, pattern string) error {
	rest, ok := strings.CutPrefix(pattern, prefix+".")
	if !ok {
		return fmt.Errorf("%w: %q: must start with %q", ErrInvalidPattern, truncate(pattern), prefix+".")
	}
	tokens := strings.Split(rest, ".")
	if len(tokens) > 4 {
		return fmt.Errorf("%w: %q: too many tokens after the prefix", ErrInvalidPattern, truncate(pattern))
	}
	for i, tok := range tokens {
		if tok == ">" {
			if i != len(tokens)-1 {
				return fmt.Errorf("%w: %q: '>' must be the last token", ErrInvalidPattern, truncate(pattern))
			}
			return nil
		}
		if tok == "*" {
			continue
		}
		var valid bool
		switch i {
		case 0:
			valid = tok == "library"
		case 1:
			valid = ValidateLibraryID(tok) == nil
		default:
			valid = validTypeToken(tok)
		}
		if !valid {
			return fmt.Errorf("%w: %q: bad token %q", ErrInvalidPattern, truncate(pattern), truncate(tok))
		}
	}
	if len(tokens) != 4 {
		return fmt.Errorf("%w: %q: want <prefix>.library.<library_id>.<entity>.<action> with * or a final >", ErrInvalidPattern, truncate(pattern))
	}
	return nil
}

// MatchPattern reports whether subject matches the NATS pattern (with "*"
// for one token and a final ">" for one or more). Neither is validated.
func MatchPattern(pattern, subject string) bool {
	for {
		pt, prest, pmore := strings.Cut(pattern, ".")
		if pt == ">" {
			return subject != ""
		}
		st, srest, smore := strings.Cut(subject, ".")
		if pt != "*" && pt != st {
			return false
		}
		if !pmore || !smore {
			return pmore == smore
		}
		pattern, subject = prest, srest
	}
}
