package event

import (
	"fmt"
	"math/bits"
	"strings"
	"time"
	"unicode/utf8"
)

// TimeLayout is the encoded form of [Event.Timestamp]: RFC 3339, UTC,
// microseconds, as the original event bus wrote it plus the "Z".
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// zonelessLayout is the original event bus's form, read as UTC.
const zonelessLayout = "2006-01-02T15:04:05.999999999"

// Encode validates ev and returns its JSON. maxSize <= 0 means
// [DefaultMaxSize]. Errors wrap [ErrInvalid] or [ErrTooLarge]. The
// returned slice has 32 bytes of capacity to spare unless strings needed
// escapes.
func Encode(ev *Event, maxSize int) ([]byte, error) {
	if err := ev.Validate(); err != nil {
		return nil, err
	}
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	// Escapes only lengthen it: an event too large without them is
	// refused before its buffer is allocated.
	n := encodedLen(ev)
	if n > maxSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, maxSize)
	}
	buf := AppendJSON(make([]byte, 0, n+encodeSpare), ev)
	if len(buf) > maxSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(buf), maxSize)
	}
	return buf, nil
}

// encodeSpare is the room [Encode] leaves after the event in its buffer
// when no string needs escapes: room for a few escapes, or for a producer
// to write something short next to the event without allocating (the
// publisher's ce-time header value).
const encodeSpare = 32

// encodedLen is the length of AppendJSON's output for ev when no string
// needs escapes: the members' names and punctuation, and their values.
func encodedLen(ev *Event) int {
	n := len(`{"type":"","library_id":"","timestamp":"","data":}`) + len(TimeLayout) +
		len(ev.Type) + len(ev.LibraryID) + max(len(ev.Data), len("{}"))
	if ev.ID != "" {
		n += len(`"id":"",`) + len(ev.ID)
	}
	if ev.Source != "" {
		n += len(`,"source":""`) + len(ev.Source)
	}
	return n
}

// AppendJSON appends the JSON object of ev to dst without validating it.
// Fields are written in the documented order; an empty id or source is
// left out, and nil data is written as {}.
func AppendJSON(dst []byte, ev *Event) []byte {
	dst = append(dst, '{')
	if ev.ID != "" {
		dst = append(dst, `"id":`...)
		dst = AppendString(dst, ev.ID)
		dst = append(dst, ',')
	}
	dst = AppendFields(dst, ev)
	return append(dst, '}')
}

// AppendFields appends the members of ev other than id, without braces:
// "type", "library_id", "timestamp", "source" (when set) and "data". The
// bridge uses it to build its frames around the same bytes.
func AppendFields(dst []byte, ev *Event) []byte {
	dst = append(dst, `"type":`...)
	dst = AppendString(dst, ev.Type)
	dst = append(dst, `,"library_id":`...)
	dst = AppendString(dst, ev.LibraryID)
	dst = append(dst, `,"timestamp":"`...)
	dst = AppendTime(dst, ev.Timestamp)
	dst = append(dst, '"')
	if ev.Source != "" {
		dst = append(dst, `,"source":`...)
		dst = AppendString(dst, ev.Source)
	}
	dst = append(dst, `,"data":`...)
	if len(ev.Data) == 0 {
		return append(dst, "{}"...)
	}
	return append(dst, ev.Data...)
}

// AppendTime appends t in UTC as [TimeLayout] writes it, the form of the
// "timestamp" member and of the ce-time header. It writes the fixed
// layout two digits at a time, several times faster than
// [time.Time.AppendFormat], which it falls back to for years outside
// 0001-9999 (never valid on the bus).
func AppendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 1 || year > 9999 {
		return t.AppendFormat(dst, TimeLayout)
	}
	hour, minute, sec := t.Clock()
	micro := t.Nanosecond() / 1000
	var b [len(TimeLayout)]byte
	put2 := func(i, v int) { // 0 <= v < 100
		b[i], b[i+1] = digitPairs[2*v], digitPairs[2*v+1]
	}
	put2(0, year/100)
	put2(2, year%100)
	b[4] = '-'
	put2(5, int(month))
	b[7] = '-'
	put2(8, day)
	b[10] = 'T'
	put2(11, hour)
	b[13] = ':'
	put2(14, minute)
	b[16] = ':'
	put2(17, sec)
	b[19] = '.'
	put2(20, micro/10000)
	put2(22, micro/100%100)
	put2(24, micro%100)
	b[26] = 'Z'
	return append(dst, b[:]...)
}

// digitPairs holds 00 to 99, two bytes each.
const digitPairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// AppendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD.
func AppendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Skip eight bytes at a time up to the next one that may need
		// escaping (see lookAt).
		for i+8 <= len(s) {
			if mask := lookAt(load64(s, i)); mask != 0 {
				i += bits.TrailingZeros64(mask) / 8
				break
			}
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// load64 returns the eight bytes of s from i on as a little-endian word.
func load64(s string, i int) uint64 {
	_ = s[i+7]
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

// lookAt returns a mask of the bytes of the little-endian word w that a
// JSON string needs a closer look at: the high bit of a byte is set where
// it is 0x80 or above, below 0x20, '"' or '\\'. Borrows may also mark
// bytes above such a byte, never below one, so the lowest mark is a byte
// to look at, and a word without marks has none.
func lookAt(w uint64) uint64 {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	q, b := w^(ones*'"'), w^(ones*'\\')
	return (w | (w - ones*0x20) | (q - ones) | (b - ones)) & highs
}

// ParseTime reads an RFC 3339 time, or the zone-less form of the original
// event bus ("2025-10-27T06:01:00.000000") as UTC. The result is in UTC.
// Errors wrap [ErrInvalid].
func ParseTime(s string) (time.Time, error) {
	layout := time.RFC3339Nano
	if !hasZone(s) {
		layout = zonelessLayout
	}
	t, err := time.Parse(layout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: timestamp %q: want RFC 3339 such as 2025-10-27T06:01:00.000000Z", ErrInvalid, truncate(s))
	}
	return t.UTC(), nil
}

// ParseTimeBytes is [ParseTime] for bytes, such as a timestamp read out of
// a frame: the forms Encode writes are read without time.Parse and without
// allocating.
func ParseTimeBytes(b []byte) (time.Time, error) {
	if t, ok := parseWireTime(b); ok {
		return t, nil
	}
	return ParseTime(string(b))
}

// hasZone reports whether an RFC 3339-ish time ends in Z or ±hh:mm.
func hasZone(s string) bool {
	if strings.HasSuffix(s, "Z") || strings.HasSuffix(s, "z") {
		return true
	}
	return len(s) >= 6 && (s[len(s)-6] == '+' || s[len(s)-6] == '-') && s[len(s)-3] == ':'
}

// MarshalJSON implements [json.Marshaler] with the wire format.
func (ev Event) MarshalJSON() ([]byte, error) { return Encode(&ev, 0) }

// UnmarshalJSON implements [json.Unmarshaler] with [Decode]'s rules. As
// encoding/json expects, JSON null leaves ev unchanged.
func (ev *Event) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	d, err := Decode(data, 0)
	if err != nil {
		return err
	}
	*ev = d
	return nil
}

func truncate(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "…"
}
