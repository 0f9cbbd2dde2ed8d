package event

import (
	"encoding/json"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Decode parses and validates one encoded event. maxSize <= 0 means
// [DefaultMaxSize]. Missing or null data reads as nil (encoded as {}). It
// never panics; errors wrap [ErrInvalid] or [ErrTooLarge].
//
// Decode reads the envelope exactly as encoding/json would into a struct
// of *string fields and a json.RawMessage: the input must be one valid
// JSON object, nested at most 10000 deep (as json.Valid); member names match
// exactly or, failing that, case-insensitively the way encoding/json folds
// them; unknown members are skipped; a repeated member's last value wins,
// and null resets it; strings are un-escaped, invalid UTF-8 in them read as
// U+FFFD. Data is a copy of the raw value, so the input may be reused.
//
// Rather than reflect, it checks the input once with a hand-written,
// non-recursive validator (validJSON) and then walks the top-level object;
// only strings holding escapes or invalid UTF-8, and member names that do
// not match exactly, go through encoding/json. Data is not checked again.
func Decode(data []byte, maxSize int) (Event, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	if len(data) > maxSize {
		return Event{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), maxSize)
	}
	if !isObject(data) {
		return Event{}, fmt.Errorf("%w: not a JSON object", ErrInvalid)
	}
	if !validJSON(data) {
		// Let encoding/json say what is wrong.
		var v any
		err := json.Unmarshal(data, &v)
		if err == nil { // cannot happen
			return Event{}, fmt.Errorf("%w: not valid JSON", ErrInvalid)
		}
		return Event{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}

	// Members as found; raw[f] is the value's bytes, nil when the member is
	// missing or null (for the string members), or missing (for data).
	var raw [numFields][]byte
	i := skipSpace(data, 0) + 1 // past '{'
	i = skipSpace(data, i)
	if data[i] != '}' {
		for {
			keyEnd, keyPlain := endOfString(data, i)
			f := fieldOf(data[i:keyEnd], keyPlain)
			i = skipSpace(data, keyEnd) + 1 // past ':'
			i = skipSpace(data, i)
			valEnd := endOfValue(data, i)
			if f >= 0 {
				val := data[i:valEnd]
				switch {
				case f == fieldData:
					raw[f] = val
				case val[0] == 'n': // null: the pointer goes back to nil
					raw[f] = nil
				case val[0] != '"':
					return Event{}, fmt.Errorf("%w: %s: not a string", ErrInvalid, fieldNames[f])
				default:
					raw[f] = val
				}
			}
			i = skipSpace(data, valEnd)
			if data[i] == '}' {
				break
			}
			i = skipSpace(data, i+1) // past ','
		}
	}

	switch {
	case raw[fieldType] == nil:
		return Event{}, fmt.Errorf("%w: type: missing", ErrInvalid)
	case raw[fieldLibraryID] == nil:
		return Event{}, fmt.Errorf("%w: library_id: missing", ErrInvalid)
	case raw[fieldTimestamp] == nil:
		return Event{}, fmt.Errorf("%w: timestamp: missing", ErrInvalid)
	}
	ts, err := ParseTime(unquote(raw[fieldTimestamp]))
	if err != nil {
		return Event{}, err
	}
	ev := Event{
		Type:      internType(raw[fieldType]),
		LibraryID: unquote(raw[fieldLibraryID]),
		Timestamp: ts,
	}
	if r := raw[fieldID]; r != nil {
		ev.ID = unquote(r)
	}
	if r := raw[fieldSource]; r != nil {
		ev.Source = unquote(r)
	}
	if r := raw[fieldData]; r != nil && r[0] != 'n' {
		ev.Data = append(json.RawMessage(nil), r...)
	}
	if err := ev.validate(true); err != nil {
		return Event{}, err
	}
	return ev, nil
}

// The envelope's members, as indexes into Decode's table.
const (
	fieldID = iota
	fieldType
	fieldLibraryID
	fieldTimestamp
	fieldSource
	fieldData
	numFields
)

var fieldNames = [numFields]string{"id", "type", "library_id", "timestamp", "source", "data"}

// foldedNames are fieldNames as encoding/json folds them.
var foldedNames = [numFields]string{"ID", "TYPE", "LIBRARY_ID", "TIMESTAMP", "SOURCE", "DATA"}

// fieldOf returns the member a quoted name stands for, or -1. plain says
// the name holds neither escapes nor bytes above ASCII.
func fieldOf(quoted []byte, plain bool) int {
	if plain {
		name := quoted[1 : len(quoted)-1]
		for f, n := range fieldNames {
			if string(name) == n {
				return f
			}
		}
		// Only ASCII letters fold, to upper case.
		for f, n := range foldedNames {
			if equalUpperASCII(name, n) {
				return f
			}
		}
		return -1
	}
	name := unquote(quoted)
	for f, n := range fieldNames {
		if name == n {
			return f
		}
	}
	folded := foldName(name)
	for f, n := range foldedNames {
		if folded == n {
			return f
		}
	}
	return -1
}

// equalUpperASCII reports whether name, its ASCII letters upper-cased, is
// upper (itself upper case ASCII).
func equalUpperASCII(name []byte, upper string) bool {
	if len(name) != len(upper) {
		return false
	}
	for i, c := range name {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}

// foldName folds s as encoding/json does to match member names to fields:
// ASCII letters to upper case, any other rune to the smallest rune of its
// simple case-folding orbit (so "ſ" matches "S", the Kelvin sign "K").
func foldName(s string) string {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r < utf8.RuneSelf {
			c := byte(r)
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			continue
		}
		for {
			r2 := unicode.SimpleFold(r)
			if r2 <= r {
				r = r2
				break
			}
			r = r2
		}
		out = utf8.AppendRune(out, r)
	}
	return string(out)
}

// internType returns the quoted type as a string, without allocating for
// the built-in types.
func internType(quoted []byte) string {
	if len(quoted) >= 2 {
		switch string(quoted[1 : len(quoted)-1]) {
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
	}
	return unquote(quoted)
}

// unquote returns the value of a JSON string token (valid JSON). Tokens
// with escapes or bytes above ASCII that are not valid UTF-8 go through
// encoding/json, which reads invalid UTF-8 as U+FFFD.
func unquote(quoted []byte) string {
	body := quoted[1 : len(quoted)-1]
	plain := true
	for _, c := range body {
		if c == '\\' || c >= utf8.RuneSelf {
			plain = false
			break
		}
	}
	if plain || (utf8.Valid(body) && !hasBackslash(body)) {
		return string(body)
	}
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil { // cannot happen: the input is valid
		return string(utf8.RuneError)
	}
	return s
}

func hasBackslash(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// endOfString returns the index just past the string token opening at
// data[i] (valid JSON), and whether it holds neither escapes nor bytes
// above ASCII.
func endOfString(data []byte, i int) (end int, plain bool) {
	plain = true
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			return j + 1, plain
		case c == '\\':
			plain = false
			j++ // the escaped byte; \uXXXX's hex digits need no care
		case c >= utf8.RuneSelf:
			plain = false
		}
	}
	return len(data), plain // cannot happen: the input is valid
}

// endOfValue returns the index just past the value starting at data[i]
// (valid JSON, so nesting is bounded and brackets balance). It does not
// recurse.
func endOfValue(data []byte, i int) int {
	switch data[i] {
	case '"':
		end, _ := endOfString(data, i)
		return end
	case '{', '[':
		depth := 0
		for j := i; j < len(data); {
			switch data[j] {
			case '"':
				j, _ = endOfString(data, j)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
			j++
		}
		return len(data) // cannot happen
	default: // number, true, false, null
		j := i
		for j < len(data) {
			switch data[j] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return j
			}
			j++
		}
		return j
	}
}
