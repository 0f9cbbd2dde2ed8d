package bridge

import (
	"strconv"
	"strings"
)

// ackPosition reads the stream sequence and the number of messages still
// pending from the reply subject of a message a JetStream consumer
// delivered: "$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.
// <consumer seq>.<timestamp>.<pending>" (9 tokens), or the form with
// "<domain>.<account hash>" after "$JS.ACK." and an optional random token
// at the end (11 or 12 tokens; ADR-15). These are the same tokens
// jetstream.Msg.Metadata reads, without the strings, the time and the
// struct it builds for every message: a replay needs the two numbers only.
func ackPosition(reply string) (seq, pending uint64, ok bool) {
	rest, found := strings.CutPrefix(reply, "$JS.ACK.")
	if !found {
		return 0, 0, false
	}
	// Token indexes below count "$JS" and "ACK" as 0 and 1.
	seqAt, pendingAt := 5, 8
	switch n := strings.Count(rest, ".") + 3; {
	case n == 9:
	case n == 11 || n == 12:
		seqAt, pendingAt = 7, 10
	default:
		return 0, 0, false
	}
	tok := 2
	for tok <= pendingAt {
		field, after, _ := strings.Cut(rest, ".")
		if tok == seqAt || tok == pendingAt {
			v, err := strconv.ParseUint(field, 10, 64) // no allocation unless it fails
			if err != nil {
				return 0, 0, false
			}
			if tok == seqAt {
				seq = v
			} else {
				pending = v
			}
		}
		rest = after
		tok++
	}
	return seq, pending, true
}
