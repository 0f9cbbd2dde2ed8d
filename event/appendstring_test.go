package event_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/arrwdb/arrwcdc/event"
)

// refAppendString is AppendString as it was before it read eight bytes at
// a time: one byte after the other. FuzzAppendString holds AppendString
// to it.
func refAppendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
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

// appendStringCases puts each kind of byte that needs a look at every
// position of an eight-byte word, and after it.
func appendStringCases() []string {
	var cases []string
	for _, special := range []string{`"`, `\`, "\n", "\x00", "\x1f", "\x7f", "\xff", "é", "\u2028", "\xe2\x82", " "} {
		for pos := range 18 {
			cases = append(cases, strings.Repeat("a", pos)+special+strings.Repeat("b", 17-pos))
		}
	}
	return append(cases, "", "0193f1d2-8c4e-7b3a-9d2f-2c6e5a7b8c9d", strings.Repeat("x", 64))
}

func TestAppendStringLong(t *testing.T) {
	for _, in := range appendStringCases() {
		checkAppendString(t, in)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, in := range appendStringCases() {
		f.Add(in)
	}
	f.Fuzz(checkAppendString)
}

func checkAppendString(t *testing.T, in string) {
	got := string(event.AppendString([]byte("x"), in))
	if want := string(refAppendString([]byte("x"), in)); got != want {
		t.Fatalf("AppendString(%q) = %q, want %q", in, got, want)
	}
}
