package bridge

import (
	"strconv"
	"strings"
	"testing"
)

// ackPositionRef is ackPosition written the plain way, for the fuzz target.
func ackPositionRef(reply string) (seq, pending uint64, ok bool) {
	t := strings.Split(reply, ".")
	if len(t) < 2 || t[0] != "$JS" || t[1] != "ACK" {
		return 0, 0, false
	}
	var s, p string
	switch len(t) {
	case 9:
		s, p = t[5], t[8]
	case 11, 12:
		s, p = t[7], t[10]
	default:
		return 0, 0, false
	}
	num := func(x string) (uint64, bool) {
		v, err := strconv.ParseUint(x, 10, 64)
		return v, err == nil
	}
	var ok1, ok2 bool
	seq, ok1 = num(s)
	pending, ok2 = num(p)
	if !ok1 || !ok2 {
		return 0, 0, false
	}
	return seq, pending, true
}

func TestAckPosition(t *testing.T) {
	for _, tc := range []struct {
		reply        string
		seq, pending uint64
		ok           bool
	}{
		{"$JS.ACK.EVENTS.cons.1.42.7.1732579200000000000.99", 42, 99, true},
		{"$JS.ACK.hub.ACCHASH.EVENTS.cons.1.42.7.1732579200000000000.99", 42, 99, true},
		{"$JS.ACK.hub.ACCHASH.EVENTS.cons.1.42.7.1732579200000000000.99.r4nd0m", 42, 99, true},
		{"$JS.ACK.EVENTS.cons.2.18446744073709551615.7.0.0", 1<<64 - 1, 0, true},
		{"$JS.ACK.EVENTS.cons.2.18446744073709551616.7.0.0", 0, 0, false}, // overflows
		{"$JS.ACK.EVENTS.cons.1.42.7.1732579200000000000", 0, 0, false},   // 8 tokens
		{"$JS.ACK.a.b.EVENTS.cons.1.42.7.1.2.3.4", 0, 0, false},           // 13 tokens
		{"$JS.ACK.EVENTS.cons.1.-4.7.1.2", 0, 0, false},
		{"$JS.ACK.EVENTS.cons.1..7.1.2", 0, 0, false},
		{"$JS.NAK.EVENTS.cons.1.42.7.1.2", 0, 0, false},
		{"_INBOX.abc", 0, 0, false},
		{"", 0, 0, false},
	} {
		seq, pending, ok := ackPosition(tc.reply)
		if seq != tc.seq || pending != tc.pending || ok != tc.ok {
			t.Errorf("ackPosition(%q) = %d, %d, %v; want %d, %d, %v", tc.reply, seq, pending, ok, tc.seq, tc.pending, tc.ok)
		}
	}
}

func FuzzAckPosition(f *testing.F) {
	for _, s := range []string{
		"$JS.ACK.EVENTS.cons.1.42.7.1732579200000000000.99",
		"$JS.ACK.hub.ACCHASH.EVENTS.cons.1.42.7.1732579200000000000.99.r4nd0m",
		"$JS.ACK.hub.ACCHASH.EVENTS.cons.1.42.7.1.99",
		"$JS.ACK.EVENTS.cons.2.18446744073709551616.7.0.0",
		"$JS.ACK..........",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, reply string) {
		seq, pending, ok := ackPosition(reply)
		rseq, rpending, rok := ackPositionRef(reply)
		if seq != rseq || pending != rpending || ok != rok {
			t.Fatalf("ackPosition(%q) = %d, %d, %v; the plain way %d, %d, %v", reply, seq, pending, ok, rseq, rpending, rok)
		}
	})
}
