package bridge

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/subjects"
)

// streamParams are the query parameters a client stream (WebSocket or
// SSE) accepts; filter only on the pattern socket.
var streamParams = []string{"types", "exclude_source", "since_seq", "since_time", "on_slow", "token"}

// sincePoint is where a resuming client starts: after seq, or at time.
type sincePoint struct {
	seq    uint64    // "I have everything up to seq": replay from seq+1
	time   time.Time // if set: replay from the first event stored at or after it
	byTime bool
}

// socketOptions are a client's parsed query parameters.
type socketOptions struct {
	types      []typePattern
	typeNames  []string // the same, as given ("document.*")
	exclude    []string
	filter     string      // pattern socket only; "" if absent
	since      *sincePoint // nil: live only
	dropOldest bool
}

// parseSocketQuery checks q against the parameters a client stream
// accepts (pattern: the pattern socket, which also takes filter), with at
// most maxFilters entries of types and exclude_source together (<= 0: no
// limit).
func parseSocketQuery(q url.Values, pattern bool, maxFilters int) (socketOptions, error) {
	var o socketOptions
	allowed := streamParams
	if pattern {
		allowed = append([]string{"filter"}, streamParams...)
	}
	// Report unknown parameters in a stable order.
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			return o, fmt.Errorf("unknown query parameter %q (allowed: %s)", truncate(k), strings.Join(allowed, ", "))
		}
	}
	for _, v := range q["types"] {
		for t := range strings.SplitSeq(v, ",") {
			t = strings.TrimSpace(t)
			if t == "" {
				return o, errors.New("types: empty entry; want a comma-separated list such as document.added,document.deleted")
			}
			if err := subjects.ValidateTypePattern(t); err != nil {
				return o, fmt.Errorf("types: %w", err)
			}
			entity, action, _ := strings.Cut(t, ".")
			o.types = append(o.types, typePattern{entity, action})
			o.typeNames = append(o.typeNames, t)
		}
	}
	for _, v := range q["exclude_source"] {
		if v == "" {
			return o, errors.New("exclude_source: empty")
		}
		o.exclude = append(o.exclude, v)
	}
	if n := len(o.types) + len(o.exclude); maxFilters > 0 && n > maxFilters {
		return o, fmt.Errorf("too many filters: %d entries of types and exclude_source, at most %d", n, maxFilters)
	}
	seqs, times := q["since_seq"], q["since_time"]
	switch {
	case len(seqs) > 0 && len(times) > 0:
		return o, errors.New("give since_seq or since_time, not both")
	case len(seqs) > 1 || len(times) > 1:
		return o, errors.New("since_seq, since_time: give one value")
	case len(seqs) == 1:
		n, err := parseSeq(seqs[0])
		if err != nil {
			return o, fmt.Errorf("since_seq: %w", err)
		}
		o.since = &sincePoint{seq: n}
	case len(times) == 1:
		t, err := event.ParseTime(times[0])
		if err != nil {
			return o, fmt.Errorf("since_time: %q: want RFC 3339 such as 2025-10-27T06:01:00Z", truncate(times[0]))
		}
		if t.IsZero() || t.Before(time.Unix(0, 0)) {
			t = time.Unix(0, 0).UTC() // the whole stream
		}
		o.since = &sincePoint{time: t, byTime: true}
	}
	if vs := q["on_slow"]; len(vs) > 1 {
		return o, errors.New("on_slow: give one value")
	} else if len(vs) == 1 {
		switch vs[0] {
		case "disconnect":
		case "drop_oldest":
			o.dropOldest = true
		default:
			return o, fmt.Errorf("on_slow: %q: want disconnect or drop_oldest", truncate(vs[0]))
		}
	}
	if pattern {
		if fs := q["filter"]; len(fs) > 1 {
			return o, errors.New("filter: give one pattern")
		} else if len(fs) == 1 {
			if fs[0] == "" {
				return o, errors.New("filter: empty")
			}
			o.filter = fs[0]
		}
	}
	return o, nil
}

// parseSeq reads a stream sequence: a decimal number, 0 included.
func parseSeq(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: want a stream sequence (a whole number >= 0)", truncate(s))
	}
	return n, nil
}

// replayFilters are the stream subjects a resuming client of pattern
// reads: one per type when the types are given and no two of them overlap
// (JetStream refuses overlapping filters), else the pattern itself.
// Either way the client's filters are applied to what is read.
func replayFilters(prefix, pattern, library string, o socketOptions) []string {
	if library == "" || len(o.typeNames) == 0 {
		return []string{pattern}
	}
	for i, a := range o.types {
		for _, b := range o.types[i+1:] {
			if (a.entity == "*" || b.entity == "*" || a.entity == b.entity) &&
				(a.action == "*" || b.action == "*" || a.action == b.action) {
				return []string{pattern}
			}
		}
	}
	out, err := subjects.Filter{Prefix: prefix, LibraryID: library, Types: o.typeNames}.Subjects()
	if err != nil {
		return []string{pattern}
	}
	return out
}

func truncate(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "…"
}
