package event

import (
	"encoding/json"
	"strings"
	"testing"
)

var validJSONCases = []string{
	``, ` `, `{}`, `[]`, `{"a":1}`, `{"a":1,}`, `[1,]`, `{"a" 1}`, `{1:1}`, `{"a":}`, `[,]`, `{,}`,
	`0`, `-0`, `01`, `-`, `1.`, `.5`, `1.5e`, `1e+`, `1E-7`, `-12.50e+03`, `1x`, `+1`,
	`true`, `tru`, `truex`, `false`, `null`, `nul`, `NaN`,
	`""`, `"\u00e9\ud83d\ude00"`, `"\u00g0"`, `"\u12"`, `"\x"`, `"\/\b\f\n\r\t\"\\"`, "\"a\x01\"", "\"\xff\xfe\"", "\"\x7f\"",
	`"abc`, `"abc\"`, `[1 2]`, `{"a":1}}`, `{"a":1}{}`, `[}`, `{]`, `[[[]]]`, ` [ 1 , { "x" : [ ] } ] `,
	"\t{\r\n}\n", "\v{}", "{}\x00",
	strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth),
	strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1),
	strings.Repeat(`{"a":`, maxDepth) + "1" + strings.Repeat("}", maxDepth),
	strings.Repeat(`{"a":`, maxDepth+1) + "1" + strings.Repeat("}", maxDepth+1),
	strings.Repeat("[", 100000),
	// Strings long enough to be read eight bytes at a time, with a byte
	// to look at in every position of a word.
	`"0123456\"89abcdef"`, `"01234567\"9abcdef"`, `"012345678\"abcdef"`, `"0123456789abcdef"`, `"0123456789abcdef`,
	"\"0123456\x1f89abcdef\"", "\"01234567\x0089abcdef\"", "\"0123456789abcde\x7f\"", "\"0123456789abcd\xc3\xa9\"",
	`"0123456\u00e9abcdef"`, `"01234567\u00gabcdef"`, `"0123456\q89abcdef"`, `["0123456789abcdef","x"]`, `{"0123456789":"0123456789"}`,
	"\"0123456789abcdef\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\"", `"01234567"`, `"0123456"`, `"012345678"`,
}

// TestValidJSON: validJSON agrees with json.Valid, depth limit included,
// and calls ASCII only what is.
func TestValidJSON(t *testing.T) {
	for _, in := range validJSONCases {
		checkValidJSON(t, []byte(in))
	}
	// ASCII, also where the strings of a value are: keys, nested values.
	for _, in := range []string{`{"a":["b",{"c":"d"}],"e":1}`, `"0123456789abcdef"`, `[1,true,null]`} {
		if ok, ascii := validJSON([]byte(in)); !ok || !ascii {
			t.Errorf("validJSON(%q) = %v, %v, want true, true", in, ok, ascii)
		}
	}
}

func checkValidJSON(t *testing.T, in []byte) {
	t.Helper()
	ok, ascii := validJSON(in)
	if want := json.Valid(in); ok != want {
		t.Fatalf("validJSON(%.80q) = %v, json.Valid says %v", in, ok, want)
	}
	if ok && ascii && !isASCII(in) {
		t.Fatalf("validJSON(%.80q) says ASCII", in)
	}
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

func FuzzValidJSON(f *testing.F) {
	for _, in := range validJSONCases {
		f.Add([]byte(in))
	}
	f.Fuzz(checkValidJSON)
}
