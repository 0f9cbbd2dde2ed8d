package event_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/arrwdb/arrwcdc/event"
)

func TestFill(t *testing.T) {
	var ev event.Event
	ev.Fill("app-1")
	if id, err := uuid.Parse(ev.ID); err != nil || id.Version() != 7 {
		t.Errorf("id %q: %v", ev.ID, err)
	}
	if ev.Source != "app-1" || ev.Timestamp.IsZero() || ev.Timestamp.Location() != time.UTC {
		t.Errorf("filled %+v", ev)
	}
	if ev.Timestamp != ev.Timestamp.Truncate(time.Microsecond) {
		t.Errorf("timestamp %v finer than the wire's microseconds", ev.Timestamp)
	}

	set := event.Event{ID: "mine", Source: "src", Timestamp: time.Date(2025, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))}
	set.Fill("other")
	if set.ID != "mine" || set.Source != "src" || set.Timestamp.Hour() != 2 || set.Timestamp.Location() != time.UTC {
		t.Errorf("Fill changed set fields: %+v", set)
	}
}

func TestValidateSourceAndDefault(t *testing.T) {
	for _, bad := range []string{"a\nb", strings.Repeat("x", 257), "\xff"} {
		if err := event.ValidateSource(bad); !errors.Is(err, event.ErrInvalid) {
			t.Errorf("ValidateSource(%q) = %v", bad, err)
		}
	}
	if err := event.ValidateSource(event.DefaultSource()); err != nil {
		t.Errorf("DefaultSource %q is not a valid source: %v", event.DefaultSource(), err)
	}
}
