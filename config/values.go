package config

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// The flag.Value types of the settings. Set errors do not repeat the value:
// [FieldError] adds it, together with the flag, env var or file key.

type stringValue string

func (v *stringValue) Set(s string) error { *v = stringValue(s); return nil }
func (v *stringValue) String() string     { return string(*v) }

// listValue is a comma-separated list; Set appends, dropping empty items.
// [boundValue] empties it before the first Set of each source, so
// --routes c after a file's routes: [a, b] gives [c].
type listValue []string

func (v *listValue) Set(s string) error {
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			*v = append(*v, item)
		}
	}
	return nil
}

func (v *listValue) String() string { return strings.Join(*v, ",") }

type durationValue time.Duration

func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("want a duration such as 90m or 24h")
	}
	*v = durationValue(d)
	return nil
}

func (v *durationValue) String() string { return formatDuration(time.Duration(*v)) }

// formatDuration is time.Duration.String without zero minutes and seconds:
// "168h", "2m", "1h30m".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

type intValue int

func (v *intValue) Set(s string) error {
	n, err := parseInt(s, strconv.IntSize)
	if err != nil {
		return err
	}
	*v = intValue(n)
	return nil
}

func (v *intValue) String() string { return strconv.Itoa(int(*v)) }

type int64Value int64

func (v *int64Value) Set(s string) error {
	n, err := parseInt(s, 64)
	if err != nil {
		return err
	}
	*v = int64Value(n)
	return nil
}

func (v *int64Value) String() string { return strconv.FormatInt(int64(*v), 10) }

func parseInt(s string, bits int) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, bits)
	if err != nil {
		return 0, errors.New("want an integer")
	}
	return n, nil
}

type float64Value float64

func (v *float64Value) Set(s string) error {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return errors.New("want a number")
	}
	*v = float64Value(f)
	return nil
}

func (v *float64Value) String() string { return strconv.FormatFloat(float64(*v), 'g', -1, 64) }

type boolValue bool

func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		return errors.New("want true or false")
	}
	*v = boolValue(b)
	return nil
}

func (v *boolValue) String() string   { return strconv.FormatBool(bool(*v)) }
func (v *boolValue) IsBoolFlag() bool { return true }

// seqValue is a stream sequence: 1 or more. 0 stays the zero value (no
// replay) and is refused as a value.
type seqValue uint64

func (v *seqValue) Set(s string) error {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return errors.New("want a stream sequence, 1 or more")
	}
	if n == 0 {
		return errors.New("want a stream sequence, 1 or more (--all replays everything)")
	}
	*v = seqValue(n)
	return nil
}

func (v *seqValue) String() string {
	if *v == 0 {
		return ""
	}
	return strconv.FormatUint(uint64(*v), 10)
}

// timeValue is an RFC 3339 time from 1970 on; one without a zone is read
// as UTC.
type timeValue time.Time

func (v *timeValue) Set(s string) error {
	s = strings.TrimSpace(s)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t, err = time.ParseInLocation("2006-01-02T15:04:05.999999999", s, time.UTC)
	}
	if err != nil {
		return errors.New("want an RFC 3339 time such as 2025-10-27T06:01:00Z")
	}
	if t.Year() < 1970 {
		return errors.New("want a time from 1970 on")
	}
	*v = timeValue(t)
	return nil
}

func (v *timeValue) String() string {
	if time.Time(*v).IsZero() {
		return ""
	}
	return time.Time(*v).Format(time.RFC3339Nano)
}
