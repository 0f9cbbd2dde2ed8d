package subscriber

import (
	"errors"
	"fmt"
	"strings"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/subjects"
)

// ErrInvalidFilter is wrapped by the error [Subscribe] returns for a bad
// [Filter]. Errors about a library id, type or pattern also wrap the
// sentinel of package subjects ([subjects.ErrInvalidLibraryID],
// [subjects.ErrInvalidType], [subjects.ErrInvalidPattern]).
var ErrInvalidFilter = errors.New("subscriber: invalid filter")

// Filter selects the events a subscription handles. The zero Filter selects
// every event under the prefix. LibraryID and Types select on the server
// (they become NATS subjects); Subject replaces both with one raw pattern;
// Match then looks at the decoded event.
type Filter struct {
	// LibraryID restricts to one library; "" means every library.
	LibraryID string
	// Types restricts to these event types; empty means every type. An
	// entry is a type ("document.added") or a pattern whose entity or
	// action is "*" ("document.*", "*.deleted"). Each entry is one NATS
	// subscription.
	Types []string
	// Subject is a NATS subject pattern under the prefix, such as
	// "events.library.*.document.*" or "events.>", checked by
	// [subjects.ValidatePattern]. It cannot be combined with LibraryID or
	// Types.
	Subject string
	// Match, if set, is called with every valid event that the subjects
	// selected; the handler sees it only if Match returns true. It runs on
	// the worker goroutines (see [Concurrency]); a panic in it counts as a
	// failed event.
	Match func(event.Event) bool
}

// patterns returns the NATS subject patterns of f under prefix.
func (f Filter) patterns(prefix string) ([]string, error) {
	if f.Subject != "" {
		if f.LibraryID != "" || len(f.Types) > 0 {
			return nil, fmt.Errorf("%w: Subject %q cannot be combined with LibraryID or Types", ErrInvalidFilter, f.Subject)
		}
		if err := subjects.ValidatePattern(prefix, f.Subject); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidFilter, err)
		}
		return []string{f.Subject}, nil
	}
	pats, err := subjects.Filter{Prefix: prefix, LibraryID: f.LibraryID, Types: f.Types}.Subjects()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidFilter, err)
	}
	return pats, nil
}

// anyOverlap reports whether some subject matches two of pats, so one
// message would arrive on two NATS subscriptions.
func anyOverlap(pats []string) bool {
	for i := range pats {
		for j := range i {
			if overlap(pats[i], pats[j]) {
				return true
			}
		}
	}
	return false
}

// overlap reports whether some subject matches both patterns a and b
// ("*" one token, a final ">" one or more).
func overlap(a, b string) bool {
	for {
		at, arest, amore := strings.Cut(a, ".")
		bt, brest, bmore := strings.Cut(b, ".")
		if at == ">" || bt == ">" {
			return true
		}
		if at != bt && at != "*" && bt != "*" {
			return false
		}
		if !amore || !bmore {
			return amore == bmore
		}
		a, b = arest, brest
	}
}
