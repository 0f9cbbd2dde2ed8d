package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/arrwdb/arrwcdc/subjects"
)

// Built-in event types.
const (
	TypeLibraryCreated  = "library.created"
	TypeLibraryDeleted  = "library.deleted"
	TypeDocumentAdded   = "document.added"
	TypeDocumentDeleted = "document.deleted"
	TypeSearchPerformed = "search.performed"
)

// builtinType returns the built-in type typ equals, as its constant (so
// that Decode keeps no bytes of its input for it), or "" when typ is not
// a built-in type. A built-in type is valid: Validate takes it after this
// one switch instead of validating its tokens.
func builtinType(typ string) string {
	switch typ {
	case TypeLibraryCreated:
		return TypeLibraryCreated
	case TypeLibraryDeleted:
		return TypeLibraryDeleted
	case TypeDocumentAdded:
		return TypeDocumentAdded
	case TypeDocumentDeleted:
		return TypeDocumentDeleted
	case TypeSearchPerformed:
		return TypeSearchPerformed
	}
	return ""
}

// BuiltinTypes lists the built-in types in a stable order.
var BuiltinTypes = []string{TypeLibraryCreated, TypeLibraryDeleted, TypeDocumentAdded, TypeDocumentDeleted, TypeSearchPerformed}

// DefaultMaxSize is the largest encoded event accepted unless configured
// otherwise: 1 MiB.
const DefaultMaxSize = 1 << 20

// maxTextLen bounds id and source, which travel in NATS headers.
const maxTextLen = 256

var (
	// ErrInvalid is wrapped by every validation and decoding error.
	ErrInvalid = errors.New("invalid event")
	// ErrTooLarge is returned when an encoded event exceeds the size limit.
	ErrTooLarge = errors.New("event too large")
)

// Event is one change event.
type Event struct {
	// ID is a UUIDv7 set by the publisher when empty. It is also the
	// Nats-Msg-Id header, so JetStream drops duplicates.
	ID string
	// Type is "<entity>.<action>", a built-in or a custom type.
	Type string
	// LibraryID is the library the change belongs to.
	LibraryID string
	// Timestamp is when the change happened; encoded as RFC 3339 UTC with
	// microseconds.
	Timestamp time.Time
	// Source names the producing instance ("app-1"); may be empty.
	Source string
	// Data is the type's payload: a JSON object. Nil encodes as {}.
	Data json.RawMessage
}

// New returns an event of type typ with a fresh id and the current time,
// its data encoded from data (nil for {}).
func New(typ, libraryID string, data any) (Event, error) {
	ev := Event{ID: NewID(), Type: typ, LibraryID: libraryID, Timestamp: Now()}
	if data != nil {
		raw, err := json.Marshal(data)
		if err != nil {
			return Event{}, fmt.Errorf("%w: data: %w", ErrInvalid, err)
		}
		ev.Data = raw
	}
	return ev, ev.Validate()
}

// NewID returns a new UUIDv7 (time-ordered) string from
// github.com/google/uuid: 48 bits of Unix milliseconds, then 12 bits of
// sub-millisecond time that the library keeps increasing within the
// process (RFC 9562 §6.2, method 3), so that the IDs of one process
// strictly increase, then random bits. Should the random source fail, it
// returns a random (version 4) UUID instead.
func NewID() string {
	id, err := uuid.NewV7()
	if err != nil { // only if the random source fails
		return uuid.NewString()
	}
	return id.String()
}

// Validate reports the first problem that makes ev unfit for the bus. An
// empty ID is allowed (the publisher fills it). Errors wrap [ErrInvalid].
func (ev *Event) Validate() error { return ev.validate(known{}) }

// known is what a caller of validate has established about the event
// already, such as Decode while it read it, so that validate does not
// check it again.
type known struct {
	// typ: Type is valid (a built-in type).
	typ bool
	// year: a non-zero Timestamp is in the years 1 to 9999 (UTC).
	year bool
	// dataJSON: Data is one valid JSON value.
	dataJSON bool
	// dataASCII: Data holds no byte above ASCII, so it is valid UTF-8.
	dataASCII bool
}

// validate is [Event.Validate] without the checks k says are done.
func (ev *Event) validate(k known) error {
	if !k.typ && builtinType(ev.Type) == "" {
		if err := subjects.ValidateType(ev.Type); err != nil {
			return fmt.Errorf("%w: type: %w", ErrInvalid, err)
		}
	}
	if err := subjects.ValidateLibraryID(ev.LibraryID); err != nil {
		return fmt.Errorf("%w: library_id: %w", ErrInvalid, err)
	}
	if ev.Timestamp.IsZero() {
		return fmt.Errorf("%w: timestamp: missing", ErrInvalid)
	}
	if !k.year {
		if y := ev.Timestamp.UTC().Year(); y < 1 || y > 9999 { // the wire form is UTC
			return fmt.Errorf("%w: timestamp: year %d out of range", ErrInvalid, y)
		}
	}
	if err := validText("id", ev.ID); err != nil {
		return err
	}
	if err := validText("source", ev.Source); err != nil {
		return err
	}
	if len(ev.Data) == 0 {
		return nil
	}
	ascii := k.dataASCII
	if !isObject(ev.Data) {
		return errDataNotObject
	}
	if !k.dataJSON {
		var ok bool
		if ok, ascii = validJSON(ev.Data); !ok {
			return errDataNotObject
		}
	}
	// validJSON, like json.Valid, does not check UTF-8; frames built from
	// Data go to browsers as WebSocket text, which must be UTF-8. Data
	// whose strings are all plain is ASCII.
	if !ascii && !utf8.Valid(ev.Data) {
		return fmt.Errorf("%w: data: not valid UTF-8", ErrInvalid)
	}
	return nil
}

var errDataNotObject = fmt.Errorf("%w: data: must be a JSON object", ErrInvalid)

// CheckSubject reports whether ev may travel on subject: the subject must
// parse and name the event's own library and type. Errors wrap [ErrInvalid].
func (ev *Event) CheckSubject(subject string) error {
	s, err := subjects.Parse(subject)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return ev.CheckParsedSubject(s, subject)
}

// CheckParsedSubject is [Event.CheckSubject] for a subject already parsed
// as s, for callers that parsed it to route the message.
func (ev *Event) CheckParsedSubject(s subjects.Subject, subject string) error {
	if s.LibraryID != ev.LibraryID {
		return fmt.Errorf("%w: library_id %q disagrees with subject %q", ErrInvalid, ev.LibraryID, subject)
	}
	if entity, action, _ := strings.Cut(ev.Type, "."); entity != s.Entity || action != s.Action {
		return fmt.Errorf("%w: type %q disagrees with subject %q", ErrInvalid, ev.Type, subject)
	}
	return nil
}

// Subject returns the subject ev is published on under prefix.
func (ev *Event) Subject(prefix string) (string, error) {
	return subjects.Build(prefix, ev.LibraryID, ev.Type)
}

// DataAs decodes ev.Data into v (a pointer to [LibraryCreated], … or any
// struct of a custom type).
func (ev *Event) DataAs(v any) error {
	data := ev.Data
	if len(data) == 0 {
		data = emptyObject
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: data of %s: %w", ErrInvalid, ev.Type, err)
	}
	return nil
}

// validText accepts UTF-8 without control characters, short enough for a
// NATS header.
func validText(field, s string) error {
	if len(s) > maxTextLen {
		return fmt.Errorf("%w: %s: longer than %d bytes", ErrInvalid, field, maxTextLen)
	}
	// Printable ASCII, as ids and sources are, passes in one pass; a byte
	// of anything else takes the checks below, in their order.
	i := 0
	for i < len(s) && s[i] >= 0x20 && s[i] < 0x7f {
		i++
	}
	if i == len(s) {
		return nil
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s: not valid UTF-8", ErrInvalid, field)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: %s: %q holds a control character", ErrInvalid, field, s)
		}
	}
	return nil
}

var emptyObject = json.RawMessage("{}")

// isObject reports whether raw opens an object: its first byte after
// whitespace is '{' (for valid JSON, whether it is an object).
func isObject(raw []byte) bool {
	i := skipSpace(raw, 0)
	return i < len(raw) && raw[i] == '{'
}

// Now returns the current time in UTC at the wire format's precision
// (microseconds), so an event equals its decoded copy.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// Fill sets what a producer fills in before sending: an empty ID becomes a
// new UUIDv7, an empty Source becomes source, and a zero Timestamp becomes
// [Now]; the timestamp is then in UTC. The publisher and the outbox both
// use it, so an event is completed the same way whichever path it takes.
func (ev *Event) Fill(source string) {
	if ev.ID == "" {
		ev.ID = NewID()
	}
	if ev.Source == "" {
		ev.Source = source
	}
	if ev.Timestamp.IsZero() {
		ev.Timestamp = Now()
	}
	ev.Timestamp = ev.Timestamp.UTC()
}

// ValidateSource reports whether s is acceptable as [Event.Source]. Errors
// wrap [ErrInvalid].
func ValidateSource(s string) error { return validText("source", s) }

// DefaultSource is the source producers use unless configured: the host
// name, or "" when it is unknown or not a valid source.
func DefaultSource() string {
	h, err := os.Hostname()
	if err != nil || ValidateSource(h) != nil {
		return ""
	}
	return h
}
