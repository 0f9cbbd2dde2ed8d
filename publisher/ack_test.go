package publisher

import (
	"encoding/json"
	"testing"
)

func TestParsePubAck(t *testing.T) {
	cases := []struct {
		in       string
		seq      uint64
		dup, ok  bool
		fallback bool // parseAck still reads it, through encoding/json
	}{
		{in: `{"stream":"EVENTS","seq":42}`, seq: 42, ok: true},
		// nats-server v2.15's duplicate ack (server/stream.go and
		// jetstream_cluster.go write `,"duplicate": true}`) and its ack
		// with a domain, byte for byte.
		{in: `{"stream":"EVENTS","seq":42,"duplicate": true}`, seq: 42, dup: true, ok: true},
		{in: `{"stream":"EVENTS","domain":"hub","seq":7}`, seq: 7, ok: true},
		{in: `{"stream":"EVENTS","seq":42,"duplicate":true}`, seq: 42, dup: true, ok: true},
		{in: `{"stream":"EVENTS","seq":42,"duplicate":false}`, seq: 42, ok: true},
		{in: `{"seq":7,"stream":"E","domain":"hub","val":"3"}`, seq: 7, ok: true},
		{in: "{ \"stream\" : \"EVENTS\" ,\n\t\"seq\" :\r\n3 , \"duplicate\" : true }", seq: 3, dup: true, ok: true},
		{in: ` {"stream":"EVENTS","seq":1} `, seq: 1, ok: true},
		{in: `{"stream":"EVENTS","seq":18446744073709551615}`, seq: 18446744073709551615, ok: true},
		{in: `{"stream":"EVENTS","seq":18446744073709551616}`},                     // overflows
		{in: `{"stream":"EVENTS","seq":42,"batch":"b","count":2}`, fallback: true}, // unknown members
		{in: `{"stream":"EVENTS","seq":42,"duplicate": true,"batch":"b","count":2}`, fallback: true},
		{in: `{"stream":"EV\"X","seq":1}`, fallback: true}, // escapes
		{in: `{"stream":"EVENTS","seq":1.0}`},
		{in: `{"stream":"EVENTS","seq":1 2}`},
		{in: `{"stream" "EVENTS","seq":1}`},
		{in: `{"stream":"EVENTS","seq":1} x`},
		{in: `{"stream":"EVENTS","seq":1,"duplicate":truex}`},
		{in: `{"stream":"EVENTS","seq":1, }`},
		{in: `{ }`},
		{in: `{"stream":"","seq":1}`},
		{in: `{"seq":1}`},
		{in: `{"stream":"EVENTS"}`},
		{in: `{"stream":"EVENTS","seq":}`},
		{in: `{"stream":"EVENTS","seq":1,}`},
		{in: `{"stream":"EVENTS","seq":1,"duplicate":yes}`},
		{in: `{"stream":"EVENTS","seq":1`},
		{in: `{"error":{"code":503,"err_code":10039,"description":"x"}}`},
		{in: `{}`},
		{in: ``},
	}
	for _, c := range cases {
		seq, dup, ok := parsePubAck([]byte(c.in))
		if ok != c.ok || ok && (seq != c.seq || dup != c.dup) {
			t.Errorf("parsePubAck(%s) = %d, %v, %v; want %d, %v, %v", c.in, seq, dup, ok, c.seq, c.dup, c.ok)
		}
		if c.fallback {
			if _, _, err := parseAck([]byte(c.in)); err != nil {
				t.Errorf("parseAck(%s) = %v", c.in, err)
			}
		}
	}
}

// FuzzParsePubAck: whatever the fast parser accepts, encoding/json reads
// the same way.
func FuzzParsePubAck(f *testing.F) {
	f.Add([]byte(`{"stream":"EVENTS","seq":42,"duplicate": true}`)) // nats-server's bytes
	f.Add([]byte(`{"stream":"EVENTS","domain":"hub","seq":7}`))
	f.Add([]byte(`{"stream":"EVENTS","seq":42,"duplicate":true}`))
	f.Add([]byte("{ \"seq\" :\n1 ,\t\"stream\":\"E\" }"))
	f.Add([]byte(`{"seq":7,"stream":"E","domain":"hub","val":"3"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		seq, dup, ok := parsePubAck(in)
		if !ok {
			return
		}
		var want struct {
			Stream    string `json:"stream"`
			Seq       uint64 `json:"seq"`
			Duplicate bool   `json:"duplicate"`
		}
		if err := json.Unmarshal(in, &want); err != nil || want.Stream == "" || want.Seq != seq || want.Duplicate != dup {
			t.Fatalf("parsePubAck(%q) = %d, %v; encoding/json: %+v, %v", in, seq, dup, want, err)
		}
	})
}

// BenchmarkParseAck is the ack of every async publish.
func BenchmarkParseAck(b *testing.B) {
	in := []byte(`{"stream":"EVENTS","seq":1234567}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := parseAck(in); err != nil {
			b.Fatal(err)
		}
	}
}
