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
}

// TestValidJSON: validJSON agrees with json.Valid, depth limit included.
func TestValidJSON(t *testing.T) {
	for _, in := range validJSONCases {
		if got, want := validJSON([]byte(in)), json.Valid([]byte(in)); got != want {
			t.Errorf("validJSON(%.80q) = %v, json.Valid says %v", in, got, want)
		}
	}
}

func FuzzValidJSON(f *testing.F) {
	for _, in := range validJSONCases {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if got, want := validJSON(in), json.Valid(in); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", in, got, want)
		}
	})
}
