package event

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/bits"
	"time"
	"unicode"
	"unicode/utf8"
	"unsafe"
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
// Rather than reflect, it walks the top-level object once, checking the
// JSON as it goes (a hand-written, non-recursive validator for nested
// values); only strings holding escapes or invalid UTF-8, member names that
// do not match exactly, and timestamps not in the wire's own form go
// through encoding/json or time.Parse. Data is not checked again. The
// strings and Data of the event share one allocation (see [members.values]).
func Decode(data []byte, maxSize int) (Event, error) { return decode(data, maxSize, false) }

// DecodeShared is [Decode] for callers that own data for good, such as the
// payload of a received NATS message (nats.go copies each one): the
// event's Data and its strings refer to data instead of a copy, so that an
// event whose strings hold no escapes is read without allocating. data must
// not be modified afterwards while the event or any of its strings is in
// use; Data is capped, so an append to it copies.
func DecodeShared(data []byte, maxSize int) (Event, error) { return decode(data, maxSize, true) }

// decode is Decode, or DecodeShared when shared.
func decode(data []byte, maxSize int, shared bool) (Event, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	if len(data) > maxSize {
		return Event{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), maxSize)
	}
	if !isObject(data) {
		return Event{}, fmt.Errorf("%w: not a JSON object", ErrInvalid)
	}
	var m members
	if !m.read(data) {
		// Let encoding/json say what is wrong.
		var v any
		err := json.Unmarshal(data, &v)
		if err == nil { // cannot happen
			return Event{}, fmt.Errorf("%w: not valid JSON", ErrInvalid)
		}
		return Event{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if m.notString >= 0 {
		return Event{}, fmt.Errorf("%w: %s: not a string", ErrInvalid, fieldNames[m.notString])
	}

	typ, ts := m.raw(data, fieldType), m.raw(data, fieldTimestamp)
	switch {
	case typ == nil:
		return Event{}, fmt.Errorf("%w: type: missing", ErrInvalid)
	case m.raw(data, fieldLibraryID) == nil:
		return Event{}, fmt.Errorf("%w: library_id: missing", ErrInvalid)
	case ts == nil:
		return Event{}, fmt.Errorf("%w: timestamp: missing", ErrInvalid)
	}
	// typ's bytes are only compared: a built-in type is the constant.
	ev := Event{Type: builtinType(unsafe.String(&typ[1], len(typ)-2))}
	// What the walk established is not checked again: the JSON of data,
	// whether it is ASCII, a built-in type, the year of a wire timestamp.
	k := known{typ: ev.Type != "", dataJSON: true, dataASCII: m.dataASCII}
	if m.plain[fieldTimestamp] {
		ev.Timestamp, k.year = parseWireTime(ts[1 : len(ts)-1])
	}
	if !k.year {
		var err error
		if ev.Timestamp, err = ParseTime(unquote(ts)); err != nil {
			return Event{}, err
		}
	}
	ev.ID, ev.LibraryID, ev.Source, ev.Type, ev.Data = m.values(data, ev.Type, shared)
	if err := ev.validate(k); err != nil {
		return Event{}, err
	}
	return ev, nil
}

// members are the envelope's members as [members.read] found them, as
// offsets into the input: recording them writes no pointers (which would
// go through the garbage collector's write barrier while it marks).
type members struct {
	// The value of member f is data[start[f]:end[f]]; end[f] is 0 when
	// the member is missing or null (for the string members), or missing
	// (for data).
	start, end [numFields]int
	// plain[f]: the string value of f holds neither escapes nor bytes
	// above ASCII, so its value is the bytes between the quotes.
	plain [numFields]bool
	// notString is the first string member found with a value of another
	// kind, or -1.
	notString int
	// dataASCII: the value of data holds no byte above ASCII (every
	// string in it is plain); false says nothing.
	dataASCII bool
}

// raw returns the value of member f in data, or nil (see members.end).
func (m *members) raw(data []byte, f int) []byte {
	if m.end[f] == 0 {
		return nil
	}
	return data[m.start[f]:m.end[f]]
}

// read walks the object in data (isObject holds) and records its members.
// It reports false if data is not exactly one valid JSON value, with
// optional whitespace around it.
func (m *members) read(data []byte) bool {
	m.notString = -1
	i := skipSpace(data, 0) + 1 // past '{'
	i = skipSpace(data, i)
	if i < len(data) && data[i] == '}' {
		return skipSpace(data, i+1) == len(data)
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return false
		}
		keyEnd, keyPlain := scanString(data, i)
		if keyEnd < 0 {
			return false
		}
		f := fieldOf(data[i:keyEnd], keyPlain)
		i = skipSpace(data, keyEnd)
		if i >= len(data) || data[i] != ':' {
			return false
		}
		i = skipSpace(data, i+1)
		if i >= len(data) {
			return false
		}
		start, plain, ascii := i, false, true
		switch data[i] {
		case '"':
			i, plain = scanString(data, i)
			ascii = plain
		case '{', '[':
			i, ascii = endOfValidValue(data, i, 1) // inside the envelope
		default:
			i = endOfScalar(data, i) // ASCII only
		}
		if i < 0 {
			return false
		}
		if f >= 0 {
			switch c := data[start]; {
			case f == fieldData:
				m.start[f], m.end[f], m.dataASCII = start, i, ascii
			case c == 'n': // null: the pointer goes back to nil
				m.end[f] = 0
			case c != '"':
				if m.notString < 0 {
					m.notString = f
				}
			default:
				m.start[f], m.end[f], m.plain[f] = start, i, plain
			}
		}
		i = skipSpace(data, i)
		if i >= len(data) {
			return false
		}
		if data[i] == '}' {
			return skipSpace(data, i+1) == len(data)
		}
		if data[i] != ',' {
			return false
		}
		i = skipSpace(data, i+1)
	}
}

// values returns the event's id, library id, source, type (builtin if
// set: a built-in type, interned) and data as read from data.
//
// The plain strings and a copy of data share one allocation: data at its
// start, capped so that appending to it copies, then the strings' bytes,
// which nothing else refers to and so never change. Keeping any of them
// keeps the whole (the size of the message). When shared, they are not
// copied: data and the plain strings are read in place.
func (m *members) values(data []byte, builtin string, shared bool) (id, libraryID, source, typ string, d json.RawMessage) {
	dataRaw := m.raw(data, fieldData)
	if dataRaw != nil && dataRaw[0] == 'n' {
		dataRaw = nil
	}
	var buf []byte // nil: the strings go through unquote, or are shared
	if shared {
		if dataRaw != nil {
			d = json.RawMessage(dataRaw[:len(dataRaw):len(dataRaw)])
		}
	} else {
		n := len(dataRaw)
		for _, f := range [...]int{fieldID, fieldLibraryID, fieldSource, fieldType} {
			if m.end[f] != 0 && m.plain[f] && (f != fieldType || builtin == "") {
				n += m.end[f] - m.start[f] - 2
			}
		}
		if n > 0 {
			buf = make([]byte, n)
			k := copy(buf, dataRaw)
			if dataRaw != nil {
				d = json.RawMessage(buf[:k:k])
			}
			buf = buf[k:]
		}
	}
	id, buf = m.text(data, fieldID, buf, shared)
	libraryID, buf = m.text(data, fieldLibraryID, buf, shared)
	source, buf = m.text(data, fieldSource, buf, shared)
	typ = builtin
	if typ == "" {
		typ, _ = m.text(data, fieldType, buf, shared)
	}
	return id, libraryID, source, typ, d
}

// text returns the value of string member f in data ("" when missing or
// null) and what is left of buf. A plain value is read in place when
// shared, else copied to the start of buf, which has room for it unless
// buf is nil, and read there; others go through unquote.
func (m *members) text(data []byte, f int, buf []byte, shared bool) (string, []byte) {
	r := m.raw(data, f)
	if r == nil || len(r) == 2 {
		return "", buf
	}
	if m.plain[f] && shared {
		return unsafe.String(&r[1], len(r)-2), buf
	}
	if !m.plain[f] || buf == nil {
		return unquote(r), buf
	}
	n := copy(buf, r[1:len(r)-1])
	return unsafe.String(&buf[0], n), buf[n:]
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
		switch string(name) { // fieldNames, as a switch the compiler searches
		case "id":
			return fieldID
		case "type":
			return fieldType
		case "library_id":
			return fieldLibraryID
		case "timestamp":
			return fieldTimestamp
		case "source":
			return fieldSource
		case "data":
			return fieldData
		}
		// Only ASCII letters fold, to upper case.
		for f, n := range foldedNames {
			if equalUpperASCII(name, n) {
				return f
			}
		}
		return -1
	}
	// An exact match folds to its own member's name, and names fold
	// apart: the folded name alone decides.
	folded := foldName(unquote(quoted))
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

// unquote returns the value of a JSON string token (valid JSON). Tokens
// with escapes or bytes above ASCII that are not valid UTF-8 go through
// encoding/json, which reads invalid UTF-8 as U+FFFD.
func unquote(quoted []byte) string {
	body := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(body, '\\') < 0 && utf8.Valid(body) {
		return string(body)
	}
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil { // cannot happen: the input is valid
		return string(utf8.RuneError)
	}
	return s
}

// scanString returns the index just past the string opening at data[i],
// or -1 if it is not a valid JSON string, and whether it holds neither
// escapes nor bytes above ASCII. It reads eight bytes at a time up to the
// next one that needs a closer look.
func scanString(data []byte, i int) (end int, plain bool) {
	plain = true
	for j := i + 1; ; {
		// Skip to the next byte that needs a look (see lookAt).
		for j+8 <= len(data) {
			if mask := lookAt(binary.LittleEndian.Uint64(data[j:])); mask != 0 {
				j += bits.TrailingZeros64(mask) / 8
				break
			}
			j += 8
		}
		if j >= len(data) {
			return -1, false
		}
		switch c := data[j]; {
		case c == '"':
			return j + 1, plain
		case c == '\\':
			plain = false
			if j+1 >= len(data) {
				return -1, false
			}
			switch data[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+6 > len(data) {
					return -1, false
				}
				for _, h := range data[j+2 : j+6] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return -1, false
					}
				}
				j += 6
			default:
				return -1, false
			}
		case c < 0x20:
			return -1, false
		case c >= utf8.RuneSelf:
			plain = false
			j++
		default:
			j++
		}
	}
}

// parseWireTime reads the timestamp (unquoted) in the forms Encode and most
// RFC 3339 writers use, 2006-01-02T15:04:05Z with an optional fraction of
// 1 to 9 digits, exactly as [ParseTime] would; ok is false for anything
// else (ParseTime then decides), including out-of-range fields and the
// year 0000 (which Validate rejects), so that t is in the years 1-9999.
func parseWireTime(s []byte) (t time.Time, ok bool) {
	if len(s) < len("2006-01-02T15:04:05Z") || s[len(s)-1] != 'Z' ||
		s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	num := func(b []byte) int {
		n := 0
		for _, c := range b {
			if !isDigit(c) {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	year, month, day := num(s[0:4]), num(s[5:7]), num(s[8:10])
	hour, minute, sec := num(s[11:13]), num(s[14:16]), num(s[17:19])
	if year < 1 || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	nsec := 0
	if frac := s[19 : len(s)-1]; len(frac) > 0 {
		if len(frac) < 2 || len(frac) > 10 || frac[0] != '.' {
			return time.Time{}, false
		}
		if nsec = num(frac[1:]); nsec < 0 {
			return time.Time{}, false
		}
		for range 10 - len(frac) {
			nsec *= 10
		}
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC), true
}

// daysIn returns the number of days of month in year (proleptic Gregorian).
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
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
